"""Start-up resources are released newest first, once, and never leak when shutdown comes first."""

from __future__ import annotations

import pytest

from tryon.shared.lifecycle import Resources, ShutdownStarted


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
