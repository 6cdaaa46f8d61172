"""RecommendationService settings, read from ``TRYON_RECOMMENDATION_*`` environment variables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tryon.shared.settings import ServerSettings

PREFIX = "TRYON_RECOMMENDATION_"


@dataclass(frozen=True, kw_only=True)
class RecommendationSettings(ServerSettings):
    """What RecommendationService needs beyond any gRPC server (``TRYON_RECOMMENDATION_<FIELD>``)."""

    data_dir: Path = Path("var/recommendation")
    """Folder of the trained artifacts (``artifacts/``) and the state snapshot (``snapshot.json``)."""
    index_factory: str = "Flat"
    """FAISS factory string of the index trained when none is found: "Flat", "IVF{n},Flat",
    "IVF{n},SQfp16" or "HNSW32"."""
    nprobe: int | None = field(default=None, metadata={"minimum": 1, "maximum": 65536})
    """IVF lists searched per query; unset keeps the value saved with the index (64 unless tuned)."""
    ef_search: int | None = field(default=None, metadata={"minimum": 1, "maximum": 65536})
    """HNSW search breadth; unset keeps the value saved with the index (128 unless tuned)."""
    faiss_threads: int = field(default=1, metadata={"minimum": 1, "maximum": 256})
    """OpenMP threads of one FAISS search (see ``index.set_search_threads``): one, because each call
    searches one query and gRPC already runs calls in parallel."""
    snapshot_interval_seconds: float = field(default=5.0, metadata={"minimum": 0.0, "maximum": 86400.0})
    """Least time between two state snapshots; 0 snapshots after every consumed batch."""
    consumer_group: str = "tryon-recommendation"
    """Kafka consumer group id; offsets are committed under it (with ``replica_id`` appended when set)."""
    replica_id: str = ""
    """Name of this replica (a StatefulSet pod's name, for instance). Every replica reads every
    partition into its own state and snapshot; its offsets are committed under
    ``<consumer_group>.<replica_id>``, so replicas' commits, which only show each one's lag, stay apart."""
    fetch_max_wait_ms: int = field(default=20, metadata={"minimum": 1, "maximum": 10_000})
    """Longest a Kafka fetch waits for new records: the floor of event-to-answer freshness when idle."""
    catch_up_timeout_seconds: float = field(default=120.0, metadata={"minimum": 0.0, "maximum": 86400.0})
    """How long start-up waits for the consumer to reach the end of the topics before SERVING anyway."""
    demo_garments: int = field(default=2000, metadata={"minimum": 20, "maximum": 1_000_000})
    """Garments of the simulated catalogue trained on when no artifacts are found."""
    demo_shoppers: int = field(default=1000, metadata={"minimum": 10, "maximum": 1_000_000})
    """Simulated shoppers of that training."""
    train_epochs: int = field(default=60, metadata={"minimum": 1, "maximum": 10_000})
    """Most epochs of that training (the served family's, ``train.SERVING_CONFIG``; the best validation
    epoch is kept)."""
    train_seed: int = field(default=0, metadata={"minimum": 0})
    """Seed of the simulated catalogue, the shoppers and the training."""
    train_on_start: bool = False
    """Train when no artifacts are found under data_dir even if the shipped ones
    (services/recommendation/weights, trained with the same settings by ``make weights``) could be
    copied there instead."""

    @property
    def artifacts_dir(self) -> Path:
        """Folder of the model, the catalogue and the FAISS indexes."""
        return self.data_dir / "artifacts"

    @property
    def replica_group(self) -> str:
        """The consumer group this replica commits its offsets under."""
        return f"{self.consumer_group}.{self.replica_id}" if self.replica_id else self.consumer_group

    @property
    def snapshot_path(self) -> Path:
        """File of the last state snapshot with its consumer positions."""
        return self.data_dir / "snapshot.json"
