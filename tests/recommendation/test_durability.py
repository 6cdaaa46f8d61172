"""Durability: kill -9 mid-stream, restart, and end in exactly the state folded from the whole log.

Every servable family restarts from its saved artifacts and a snapshot with the same answers
(in-process, cheap); the kill itself is tested on the served family, RecVAE. There the service
runs as a subprocess against a broker of this test alone. Interactions (with
duplicated event ids among them), garment registrations and user deletions are produced
while the service consumes; it is killed with SIGKILL once it has written a snapshot, started
again, fed more events, and stopped with SIGTERM. Its final snapshot must equal a from-scratch
fold over every event produced: nothing lost, nothing applied twice.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import grpc
import pytest

from tryon.services.recommendation.catalogue import synthetic_catalogue
from tryon.services.recommendation.history import InteractionKind, fold_interactions
from tryon.services.recommendation.recommender import ModelArtifacts, Recommender, read_snapshot, write_snapshot
from tryon.services.recommendation.recvae import RecVAEConfig
from tryon.services.recommendation.simulator import ShopperSimulator
from tryon.services.recommendation.train import train_artifacts
from tryon.shared.events import EventPublisher, new_event_id
from tryon.shared.outbox import Outbox
from tryon.shared.healthcheck import wait_until_serving
from tryon.shared.proto import events_pb2
from tryon.shared.proto import recommendation_service_pb2 as pb
from tryon.shared.proto import recommendation_service_pb2_grpc as pb_grpc
from tryon.shared.topics import INTERACTIONS

pytestmark = pytest.mark.integration

CATALOGUE = synthetic_catalogue(150, latent_dim=16, seed=5)
LATE_GARMENTS = [f"late-{i}" for i in range(4)]
USERS = [f"shopper-{i}" for i in range(30)]
DELETED = USERS[:4]


class ServiceUnderTest:
    """The service as a child process with its own log file."""

    def __init__(self, data_dir, bootstrap, log_path):
        env = os.environ | {
            "TRYON_RECOMMENDATION_DATA_DIR": str(data_dir),
            "TRYON_RECOMMENDATION_PORT": "0",
            "TRYON_RECOMMENDATION_SNAPSHOT_INTERVAL_SECONDS": "0.2",
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "OMP_NUM_THREADS": "1",
        }
        self.log = open(log_path, "ab")
        start = log_path.stat().st_size if log_path.exists() else 0
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tryon.services.recommendation"], env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.address = self._bound_address(log_path, start)
        wait_until_serving(self.address, deadline_s=90)
        self.channel = grpc.insecure_channel(self.address)
        self.stub = pb_grpc.RecommendationServiceStub(self.channel)

    def _bound_address(self, log_path, start, timeout=60.0):
        """The address the service logs once it listens (it binds port 0)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(log_path, "rb") as handle:
                handle.seek(start)
                for line in handle.read().decode("utf-8", errors="replace").splitlines():
                    if '"listening"' in line:
                        return json.loads(line)["address"]
            assert self.process.poll() is None, "the service exited before listening"
            time.sleep(0.1)
        raise AssertionError("the service did not log its address")

    def history_size(self, user_id):
        return self.stub.RecommendGarments(pb.RecommendGarmentsRequest(user_id=user_id, k=1)).history_size

    def finish(self, sig):
        self.channel.close()
        self.process.send_signal(sig)
        code = self.process.wait(timeout=30)
        self.log.close()
        return code


def interaction(rng, user_id, garments):
    return events_pb2.InteractionRecorded(
        event_id=new_event_id(), user_id=user_id, garment_id=rng.choice(garments), type=rng.randint(1, 5)
    )


def wait_for(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met within the timeout")


def snapshot_interaction_offset(path):
    snapshot = read_snapshot(path)
    if snapshot is None:
        return 0
    return sum(offset for key, offset in snapshot[1].items() if key.startswith(INTERACTIONS + ":"))


def test_every_family_restarts_from_its_saved_artifacts_and_snapshot_with_the_same_answers(tmp_path, family_config):
    simulator = ShopperSimulator(CATALOGUE, seed=2)
    interactions = simulator.interactions_table(simulator.make_shoppers(60), 10)
    train_artifacts(interactions, CATALOGUE, family_config, progress=False).save(tmp_path / "artifacts")
    before = Recommender(ModelArtifacts.load(tmp_path / "artifacts"))
    rng = random.Random(1)
    for user_id in USERS[:10]:
        for _ in range(8):
            before.apply_interaction(user_id, rng.choice(CATALOGUE.garment_ids), InteractionKind(rng.randint(1, 5)))
    write_snapshot(tmp_path / "snapshot.json", before.state(), {f"{INTERACTIONS}:0": 80})
    state, offsets = read_snapshot(tmp_path / "snapshot.json")
    after = Recommender(ModelArtifacts.load(tmp_path / "artifacts"))
    after.restore(state)
    assert offsets == {f"{INTERACTIONS}:0": 80}
    assert type(after.model) is type(before.model)
    for user_id in USERS[:10]:
        answer = after.recommend(user_id, 10)
        assert not answer.cold_start and answer == before.recommend(user_id, 10)
    for user_id in USERS[:3]:
        assert after.outfits(user_id, 3) == before.outfits(user_id, 3)
    assert after.similar(CATALOGUE.garment_ids[0], 5) == before.similar(CATALOGUE.garment_ids[0], 5)


def test_kill_minus_nine_then_restart_ends_in_the_folded_state(tmp_path, fresh_kafka_bootstrap):
    simulator = ShopperSimulator(CATALOGUE, seed=2)
    train_artifacts(
        simulator.interactions_table(simulator.make_shoppers(60), 10),
        CATALOGUE,
        RecVAEConfig(hidden_dim=16, encoder_layers=2, latent_dim=4, epochs=1),
        progress=False,
    ).save(tmp_path / "artifacts")
    snapshot_path = tmp_path / "snapshot.json"
    rng = random.Random(0)
    produced: list[events_pb2.InteractionRecorded] = []
    producer = EventPublisher(
        # Its own outbox file: the service's is data_dir/outbox.sqlite, and two publishers on one file
        # would each send and remove the other's records.
        fresh_kafka_bootstrap, "durability-test", Outbox(tmp_path / "test-producer" / "outbox.sqlite"), ack_wait_s=0
    ).start()

    def publish(event):
        producer.publish([(event, event.user_id)])
        produced.append(event)

    def flush():
        assert producer.wait_until_sent(timeout=30), "the test's events were not sent within 30 s"

    service = ServiceUnderTest(tmp_path, fresh_kafka_bootstrap, tmp_path / "service.log")
    # Garments first, and only used once a snapshot holds them: topics are not ordered among themselves.
    for garment_id in LATE_GARMENTS:
        registered = events_pb2.GarmentRegistered(
            event_id=new_event_id(), garment_id=garment_id, name=garment_id, category=2,
            content_latent=list(CATALOGUE.latents[0]),
        )
        producer.publish([(registered, garment_id)])
    flush()
    wait_for(lambda: read_snapshot(snapshot_path) is not None
             and len(read_snapshot(snapshot_path)[0]["registered"]) == len(LATE_GARMENTS))
    garments = CATALOGUE.garment_ids + LATE_GARMENTS

    phase_one = 1500

    def produce_phase_one():
        for number in range(phase_one):
            event = interaction(rng, rng.choice(USERS), garments)
            publish(event)
            if number % 20 == 0:
                publish(event)  # the same event_id again: must be applied once
            if number % 50 == 0:
                flush()
                time.sleep(0.02)
        flush()

    producing = threading.Thread(target=produce_phase_one)
    producing.start()
    wait_for(lambda: snapshot_interaction_offset(snapshot_path) > 200, timeout=60)
    assert service.finish(signal.SIGKILL) == -signal.SIGKILL
    offset_at_kill = snapshot_interaction_offset(snapshot_path)
    producing.join()
    assert 0 < offset_at_kill < len(produced), "the kill must land mid-stream"

    service = ServiceUnderTest(tmp_path, fresh_kafka_bootstrap, tmp_path / "service.log")
    # Delete users only once all their interactions are applied (the users topic is not ordered with them).
    applied_before_delete = {u: len({e.event_id for e in produced if e.user_id == u}) for u in DELETED}
    wait_for(lambda: all(service.history_size(u) == applied_before_delete[u] for u in DELETED))
    for user_id in DELETED:
        service.stub.DeleteUser(pb.DeleteUserRequest(user_id=user_id))
    for _ in range(300):
        publish(interaction(rng, rng.choice(USERS[len(DELETED):]), garments))
    flush()
    producer.close()

    unique = list({e.event_id: e for e in produced}.values())
    expected = fold_interactions(((e.user_id, e.garment_id, InteractionKind(e.type)) for e in unique), deleted_users=DELETED)
    counts = {u: sum(1 for e in unique if e.user_id == u) for u in USERS}
    wait_for(lambda: all(service.history_size(u) == (0 if u in DELETED else counts[u]) for u in USERS))
    assert service.finish(signal.SIGTERM) == 0

    state, _ = read_snapshot(snapshot_path)
    final = {user_id: entry["weights"] for user_id, entry in state["histories"].items()}
    assert final.keys() == expected.keys()
    for user_id, weights in expected.items():
        assert final[user_id] == pytest.approx(weights), user_id
    assert {g["garment_id"] for g in state["registered"]} == set(LATE_GARMENTS)
    log = (tmp_path / "service.log").read_text(encoding="utf-8", errors="replace")
    assert "state snapshot restored" in log
