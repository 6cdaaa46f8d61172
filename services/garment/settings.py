"""GarmentService configuration, read once from ``TRYON_GARMENT_*`` environment variables."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tryon.shared.settings import ServerSettings

PREFIX = "TRYON_GARMENT_"


@dataclass(frozen=True, kw_only=True)
class GarmentSettings(ServerSettings):
    """Where GarmentService keeps its data, where it finds BodyService and how it trains its default models."""

    data_dir: Path = Path("var/garment")
    """Folder of the catalogue (catalogue.sqlite3), its pictures (images/) and the models (models/)."""
    fashion_mnist_dir: Path | None = None
    """Folder of the Fashion-MNIST .gz files; unset uses TRYON_FASHION_MNIST_DIR or /usr/share/datasets/fashion-mnist."""
    body_service_address: str | None = None
    """host:port of BodyService for RenderTryOn; unset makes RenderTryOn answer FAILED_PRECONDITION."""
    body_service_timeout_seconds: float = field(default=10.0, metadata={"minimum": 0.1, "maximum": 300.0})
    """Deadline of each call to BodyService."""
    body_service_auth_token: str | None = None
    """Bearer token sent to BodyService when it requires one."""
    train_epochs: int | None = field(
        default=None, metadata={"minimum": 1, "maximum": 1000, "formerly": "TRAINING_EPOCHS"}
    )
    """Epochs of every model when no models are found under data_dir/models; unset keeps each model's
    default (classifier 4, VAE 8, GAN 5: about 10 minutes on one core for all 60,000 images)."""
    train_images: int = field(default=0, metadata={"minimum": 0, "maximum": 60000, "formerly": "TRAINING_IMAGES"})
    """Fashion-MNIST training images used for the default models; 0 means all 60,000."""
    train_seed: int = field(default=0, metadata={"minimum": 0, "formerly": "TRAINING_SEED"})
    """Seed of the default models' training."""
    train_on_start: bool = False
    """Train when no models are found under data_dir even if the shipped weights (services/garment/weights,
    trained with the same settings by ``make weights``) could be copied there instead."""
    torch_threads: int = field(default=2, metadata={"minimum": 1, "maximum": 256})
    """Threads torch uses inside one operation; the convolutional models train 1.6x faster on two."""
