"""Fixtures of the tests that run the services as processes."""

from __future__ import annotations

import pytest

from tryon.services.weights import shipped_weights_problems


@pytest.fixture(scope="session")
def shipped_weights() -> None:
    """Every service starts from its shipped weights (seconds) rather than training (minutes).

    The services run with their default training settings, the ones ``make weights`` trained the
    shipped weights with; quality is not tested here. Fails at once, naming the cause, when a
    service would train instead.
    """
    problems = shipped_weights_problems()
    assert not problems, "a service would train at start instead of copying its shipped weights: " + "; ".join(problems)
