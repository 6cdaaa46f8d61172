"""Start-up resources are released newest first, once, and never leak when shutdown comes first; a Kafka that
does not answer at start is named with the setting to fix."""

from __future__ import annotations

import pytest
from kafka.errors import KafkaTimeoutError

from tryon.shared import lifecycle
from tryon.shared.broker import BrokerError
from tryon.shared.lifecycle import Resources, ShutdownStarted
from tryon.shared.topics import USERS


def test_resources_are_released_newest_first_and_only_once():
    released = []
    resources = Resources()
    broker = resources.adopt("broker", lambda: released.append("broker"))
    producer = resources.adopt("producer", lambda: released.append("producer"))
    resources.adopt("consumer", lambda: released.append("consumer"))

    resources.close()
    resources.close()

    assert (broker, producer) == ("broker", "producer")
    assert released == ["consumer", "producer", "broker"]
    assert resources.closed


def test_a_resource_acquired_after_shutdown_began_is_released_at_once():
    released = []
    resources = Resources()
    resources.close()

    with pytest.raises(ShutdownStarted):
        resources.adopt("late producer", lambda: released.append("late producer"))

    assert released == ["late producer"]


def test_one_failing_release_does_not_keep_the_others():
    released = []
    resources = Resources()
    resources.adopt("broker", lambda: released.append("broker"))

    def fail() -> None:
        raise OSError("socket already closed")

    resources.adopt("producer", fail)
    resources.close()

    assert released == ["broker"]


def test_a_configured_broker_that_does_not_answer_is_named_with_the_setting_to_fix(monkeypatch):
    def unreachable(bootstrap_servers, topics):
        raise KafkaTimeoutError(f"Unable to bootstrap from {bootstrap_servers}")

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9")
    monkeypatch.setattr(lifecycle, "ensure_topics", unreachable)
    with pytest.raises(BrokerError) as caught:
        lifecycle.connect_kafka(Resources(), iter([USERS]))
    message = str(caught.value)
    assert "Kafka at 127.0.0.1:9 (KAFKA_BOOTSTRAP_SERVERS)" in message
    assert f"topics {USERS}" in message and "Unable to bootstrap" in message
    assert "start the broker, or correct KAFKA_BOOTSTRAP_SERVERS" in message
