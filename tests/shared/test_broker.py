"""The embedded broker starts on a free loopback port, answers Kafka, creates topics and stops."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from tryon.shared import broker as broker_module
from tryon.shared.broker import BrokerError, EmbeddedBroker, ensure_topics, resolve_bootstrap
from tryon.shared.topics import BODIES, INTERACTIONS, dlq_topic

pytestmark = pytest.mark.integration


def _accepts_connections(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=0.5).close()
        return True
    except OSError:
        return False


def _topic_partitions(bootstrap_servers: str) -> dict[str, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
    try:
        described = admin.describe_topics(admin.list_topics())
        return {topic["topic"] if "topic" in topic else topic["name"]: len(topic["partitions"]) for topic in described}
    finally:
        admin.close()


def test_broker_starts_on_a_loopback_port_logs_to_its_file_and_stops(tmp_path: Path) -> None:
    log_path = tmp_path / "broker.log"
    with EmbeddedBroker(log_path=log_path) as broker:
        address = broker.bootstrap_servers
        assert address.startswith("127.0.0.1:")
        assert broker.running
        assert _accepts_connections(address)
        assert "listening on" in log_path.read_text()
    assert not broker.running
    assert not _accepts_connections(address)
    with pytest.raises(BrokerError, match="not running"):
        broker.bootstrap_servers


def test_two_brokers_get_different_ports(tmp_path: Path) -> None:
    with EmbeddedBroker(log_path=tmp_path / "a.log") as first, EmbeddedBroker(log_path=tmp_path / "b.log") as second:
        assert first.bootstrap_servers != second.bootstrap_servers


def test_a_taken_port_is_retried_on_another(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with EmbeddedBroker(log_path=tmp_path / "first.log") as first:
        taken = int(first.bootstrap_servers.rpartition(":")[2])
        offered = iter([taken])
        real_free_port = broker_module.free_loopback_port
        monkeypatch.setattr(broker_module, "free_loopback_port", lambda: next(offered, None) or real_free_port())
        with EmbeddedBroker(log_path=tmp_path / "second.log") as second:
            assert second.bootstrap_servers != first.bootstrap_servers
            assert _accepts_connections(second.bootstrap_servers)


def test_stop_kills_a_broker_that_ignores_sigterm(tmp_path: Path) -> None:
    stubborn = subprocess.Popen(["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"])
    started = time.monotonic()
    broker_module._terminate(stubborn, grace=0.3)
    assert stubborn.returncode is not None
    assert time.monotonic() - started < 5


def test_ensure_topics_creates_missing_topics_with_their_dead_letter_topics(fresh_kafka_bootstrap: str) -> None:
    ensure_topics(fresh_kafka_bootstrap, [INTERACTIONS, BODIES], partitions=3)
    created = _topic_partitions(fresh_kafka_bootstrap)
    assert created[INTERACTIONS] == 3
    assert created[BODIES] == 3
    assert created[dlq_topic(INTERACTIONS)] == 1
    assert created[dlq_topic(BODIES)] == 1

    ensure_topics(fresh_kafka_bootstrap, [INTERACTIONS], partitions=5)
    assert _topic_partitions(fresh_kafka_bootstrap)[INTERACTIONS] == 3


def test_resolve_bootstrap_prefers_the_configured_cluster() -> None:
    address, started = resolve_bootstrap({"KAFKA_BOOTSTRAP_SERVERS": "kafka-0.example:9092"})
    assert (address, started) == ("kafka-0.example:9092", None)


def test_resolve_bootstrap_starts_an_embedded_broker_when_none_is_configured() -> None:
    address, started = resolve_bootstrap({})
    try:
        assert started is not None
        assert address == started.bootstrap_servers
        assert _accepts_connections(address)
        temporary_log = started.log_path
        assert temporary_log.exists()
    finally:
        started.stop()
    assert not temporary_log.exists()
