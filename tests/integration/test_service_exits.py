"""A SIGTERMed service exits 0 within its grace period, every time, even while its consumer is busy.

RecommendationService runs as a process (``python -m tryon.services.recommendation``) on an
embedded broker of this test, over small artifacts trained here once. A thread streams
InteractionRecorded events the whole time, so each start replays a backlog and the consumer
is applying events when the signal comes. The service is started and SIGTERMed twenty times.
The grace is short on purpose: with the interpreter's teardown, exits took 0.8 to 2.0 s here
(0.06 to 0.22 s without it), and a launcher kills what outlives its grace.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tryon.services.recommendation.catalogue import synthetic_catalogue
from tryon.services.recommendation.simulator import ShopperSimulator
from tryon.services.recommendation.train import SERVING_CONFIG, train_artifacts
from tryon.shared.broker import free_loopback_port
from tryon.shared.events import EventPublisher, new_event_id, timestamp_now
from tryon.shared.outbox import Outbox
from tryon.shared.proto import common_pb2, events_pb2

pytestmark = pytest.mark.integration

ROUNDS = 20
GRACE_SECONDS = 1.5
CONSUMER_ASSIGNED = b"assigned"


def _train_small_artifacts(artifacts_dir: Path) -> list[str]:
    """Artifacts over 100 simulated garments, saved where the service looks; returns the garment ids."""
    catalogue = synthetic_catalogue(100, 16, seed=0)
    simulator = ShopperSimulator(catalogue, seed=0)
    interactions = simulator.interactions_table(simulator.make_shoppers(40))
    artifacts = train_artifacts(interactions, catalogue, replace(SERVING_CONFIG, epochs=1), progress=False)
    artifacts.save(artifacts_dir)
    return list(catalogue.garment_ids)


class EventStream:
    """Publishes views of known garments by 50 shoppers, a batch every few milliseconds, until stopped."""

    def __init__(self, bootstrap_servers: str, garment_ids: list[str], outbox_path: Path) -> None:
        self._publisher = EventPublisher(bootstrap_servers, "exit-test-stream", Outbox(outbox_path), ack_wait_s=0)
        self._garment_ids = garment_ids
        self._stop = threading.Event()
        self.published = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> EventStream:
        self._publisher.start()
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._publisher.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = []
            for _ in range(20):
                user_id = f"shopper-{self.published % 50}"
                batch.append((
                    events_pb2.InteractionRecorded(
                        event_id=new_event_id(),
                        occurred_at=timestamp_now(),
                        user_id=user_id,
                        garment_id=self._garment_ids[self.published % len(self._garment_ids)],
                        type=common_pb2.INTERACTION_TYPE_VIEW,
                    ),
                    user_id,
                ))
                self.published += 1
            self._publisher.publish(batch)
            self._publisher.wait_until_sent(timeout=10)
            self._stop.wait(0.01)


def _start(data_dir: Path, bootstrap_servers: str, log_path: Path) -> subprocess.Popen:
    environ = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
        "TRYON_RECOMMENDATION_DATA_DIR": str(data_dir),
        "TRYON_RECOMMENDATION_PORT": str(free_loopback_port()),
        "TRYON_RECOMMENDATION_GRACE_SECONDS": str(GRACE_SECONDS),
        "TRYON_RECOMMENDATION_SNAPSHOT_INTERVAL_SECONDS": "0.2",
        "TRYON_RECOMMENDATION_LOG_FLUSH_SECONDS": "0",
    }
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "tryon.services.recommendation"],
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def _wait_until_consuming(process: subprocess.Popen, log_path: Path, timeout: float = 60.0) -> None:
    """Wait until the service's consumer holds its partitions (it applies the backlog from then on)."""
    deadline = time.monotonic() + timeout
    while CONSUMER_ASSIGNED not in log_path.read_bytes():
        assert process.poll() is None, f"the service exited with {process.returncode}:\n{log_path.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"the consumer did not start:\n{log_path.read_text()[-3000:]}"
        time.sleep(0.02)


def test_sigterm_exits_zero_within_the_grace_every_time_while_consuming(tmp_path, fresh_kafka_bootstrap):
    data_dir = tmp_path / "recommendation"
    garment_ids = _train_small_artifacts(data_dir / "artifacts")
    exits = []
    with EventStream(fresh_kafka_bootstrap, garment_ids, tmp_path / "stream-outbox.sqlite") as stream:
        for round_number in range(ROUNDS):
            log_path = tmp_path / f"round-{round_number}.log"
            process = _start(data_dir, fresh_kafka_bootstrap, log_path)
            _wait_until_consuming(process, log_path)
            # A moment of applying events, different each round, so the signal lands anywhere in a batch.
            time.sleep(0.05 * (round_number % 5))
            published_before = stream.published
            process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            try:
                status = process.wait(timeout=GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                pytest.fail(f"round {round_number}: still running {GRACE_SECONDS} s after SIGTERM:\n"
                            f"{log_path.read_text()[-3000:]}")
            exits.append((status, time.monotonic() - signalled))
            assert status == 0, f"round {round_number}: exit status {status}:\n{log_path.read_text()[-3000:]}"
            assert b"final state snapshot written" in log_path.read_bytes()
        assert stream.published > published_before, "the event stream stalled, so the consumer was not busy"

    assert len(exits) == ROUNDS
    assert all(status == 0 and seconds < GRACE_SECONDS for status, seconds in exits)
