"""The garment models behind GarmentService: conditional VAE, conditional GAN and classifier, numpy in and out.

Images are float32 arrays [n, 28, 28] in [0, 1], the garment bright on black as in
Fashion-MNIST; labels are category labels 0-9 (see ``categories``). ``GarmentModels.train``
fits all three models; ``save``/``load`` keep them as state_dicts plus a JSON config.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from tryon.services.garment.categories import NUM_CATEGORIES
from tryon.services.garment.classifier import ClassifierConfig, GarmentClassifier
from tryon.services.garment.gan import ConditionalGenerator, GANConfig, ProjectionDiscriminator
from tryon.services.garment.trainer import (
    TrainingHistory,
    one_hot,
    train_classifier,
    train_gan,
    train_vae,
)
from tryon.services.garment.vae import IMAGE_SIZE, ConditionalVAE, VAEConfig
from tryon.shared.contract import check_label
from tryon.shared.errors import InvalidArgument
from tryon.shared.files import atomic_write

Generator = Literal["vae", "gan"]
GENERATORS: tuple[str, ...] = ("vae", "gan")
MAX_GENERATE = 1024
"""Most images one ``generate`` call returns."""
MAX_INTERPOLATION_STEPS = 64
"""Most images one ``interpolate`` call returns."""
MAX_SEED = 2**63 - 1
_INFERENCE_BATCH = 512
_CONFIG_FILE = "config.json"
_HISTORY_FILE = "history.json"
_WEIGHT_FILES = {"vae": "vae.pt", "gan": "gan_generator.pt", "classifier": "classifier.pt"}


@dataclass(frozen=True)
class GarmentModelsConfig:
    """Hyperparameters of the three garment models (each dataclass documents its fields)."""

    vae: VAEConfig = field(default_factory=VAEConfig)
    gan: GANConfig = field(default_factory=GANConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)

    def to_dict(self) -> dict:
        """Return a JSON-ready dictionary."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GarmentModelsConfig:
        """Rebuild a config from ``to_dict`` output; unknown keys are an error."""
        part_types = {"gan": GANConfig, "classifier": ClassifierConfig}
        unknown = set(data) - {part.name for part in fields(cls)}
        if unknown:
            raise ValueError(f"unknown garment model config sections: {', '.join(sorted(unknown))}")
        parts = {name: part_type(**data.get(name, {})) for name, part_type in part_types.items()}
        return cls(vae=VAEConfig.from_dict(data.get("vae", {})), **parts)


def default_device() -> str:
    """Return "cuda" when a GPU is usable, else "cpu"."""
    return "cuda" if torch.cuda.is_available() else "cpu"


class GarmentModels:
    """The trained VAE, GAN generator and classifier, with numpy entry points for the service."""

    def __init__(
        self,
        config: GarmentModelsConfig,
        vae: ConditionalVAE,
        generator: ConditionalGenerator,
        classifier: GarmentClassifier,
        histories: dict[str, TrainingHistory] | None = None,
    ) -> None:
        self.config = config
        self.vae = vae.cpu().eval()
        self.generator = generator.cpu().eval()
        self.classifier = classifier.cpu().eval()
        self.histories = histories or {}

    @property
    def latent_dim(self) -> int:
        """Size of the VAE content latent returned by ``encode`` and ``generate(..., "vae")``."""
        return self.config.vae.latent_dim

    @property
    def noise_dim(self) -> int:
        """Size of the GAN noise returned by ``generate(..., "gan")``."""
        return self.config.gan.noise_dim

    @classmethod
    def untrained(cls, config: GarmentModelsConfig | None = None, seed: int = 0) -> GarmentModels:
        """Return freshly initialised models (for speed measurements and tests of plumbing)."""
        config = config or GarmentModelsConfig()
        torch.manual_seed(seed)
        return cls(config, ConditionalVAE(config.vae), ConditionalGenerator(config.gan), GarmentClassifier(config.classifier))

    @classmethod
    def train(
        cls,
        images: np.ndarray,
        labels: np.ndarray,
        config: GarmentModelsConfig | None = None,
        *,
        vae_epochs: int | None = None,
        gan_epochs: int | None = None,
        classifier_epochs: int | None = None,
        seed: int = 0,
        progress: bool = True,
        device: str | None = None,
    ) -> GarmentModels:
        """Train the VAE, the GAN and the classifier on images [N, 28, 28] and labels [N].

        Epoch arguments override the config's; ``device`` defaults to a GPU when one is usable.
        """
        config = config or GarmentModelsConfig()
        device = device or default_device()
        image_tensor = torch.from_numpy(_as_unit_images(images, "images")).unsqueeze(1)
        label_tensor = torch.from_numpy(_as_labels(labels, image_tensor.shape[0], "labels"))
        torch.manual_seed(seed)
        vae = ConditionalVAE(config.vae)
        generator = ConditionalGenerator(config.gan)
        discriminator = ProjectionDiscriminator(config.gan)
        classifier = GarmentClassifier(config.classifier)
        histories = {
            "classifier": train_classifier(
                classifier, image_tensor, label_tensor, classifier_epochs, seed, progress, device
            ),
            "vae": train_vae(vae, image_tensor, label_tensor, vae_epochs, seed, progress, device),
        }
        averaged_generator, histories["gan"] = train_gan(
            generator, discriminator, image_tensor, label_tensor, gan_epochs, seed, progress, device
        )
        return cls(config, vae, averaged_generator, classifier, histories)

    def save(self, directory: Path | str) -> Path:
        """Write the state_dicts, the JSON config and the training histories into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        modules = {"vae": self.vae, "gan": self.generator, "classifier": self.classifier}
        for name, module in modules.items():
            state = {key: value.detach().cpu() for key, value in module.state_dict().items()}
            atomic_write(directory / _WEIGHT_FILES[name], lambda path, state=state: torch.save(state, path))
        histories = {name: history.to_dict() for name, history in self.histories.items()}
        atomic_write(directory / _HISTORY_FILE, json.dumps(histories))
        # The config goes last: its presence marks a complete set of files.
        atomic_write(directory / _CONFIG_FILE, json.dumps(self.config.to_dict(), indent=2))
        return directory

    @classmethod
    def load(cls, directory: Path | str) -> GarmentModels:
        """Load models written by ``save`` (weights only, onto the CPU)."""
        directory = Path(directory)
        config_path = directory / _CONFIG_FILE
        if not config_path.is_file():
            raise FileNotFoundError(
                f"no garment models in {directory}: {_CONFIG_FILE} is missing; train them with "
                "GarmentModels.train(...).save(directory) or python -m tryon.services.garment.quality"
            )
        config = GarmentModelsConfig.from_dict(json.loads(config_path.read_text()))
        models = {
            "vae": ConditionalVAE(config.vae),
            "gan": ConditionalGenerator(config.gan),
            "classifier": GarmentClassifier(config.classifier),
        }
        for name, module in models.items():
            state = torch.load(directory / _WEIGHT_FILES[name], map_location="cpu", weights_only=True)
            module.load_state_dict(state)
        history_path = directory / _HISTORY_FILE
        histories = {}
        if history_path.is_file():
            histories = {
                name: TrainingHistory.from_dict(data) for name, data in json.loads(history_path.read_text()).items()
            }
        return cls(config, models["vae"], models["gan"], models["classifier"], histories)

    @torch.no_grad()
    def generate(self, label: int, count: int, seed: int, generator: Generator = "vae") -> tuple[np.ndarray, np.ndarray]:
        """Generate ``count`` garments of category ``label``; return (images [n, 28, 28], latents [n, d]).

        The latent is the VAE's z or the GAN's noise; the same arguments give the same images.
        """
        label = check_label(label, "label")
        if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or not 1 <= count <= MAX_GENERATE:
            raise InvalidArgument(f"count must be an integer in [1, {MAX_GENERATE}]; got {count!r}")
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
            raise InvalidArgument(f"seed must be an integer in [0, {MAX_SEED}]; got {seed!r}")
        if generator not in GENERATORS:
            raise InvalidArgument(f"generator must be one of {', '.join(GENERATORS)}; got {generator!r}")
        source = torch.Generator().manual_seed(int(seed))
        label_vectors = one_hot(torch.full((int(count),), label, dtype=torch.int64))
        model = self.vae if generator == "vae" else self.generator
        images, latents = model.sample(label_vectors, generator=source)
        return _to_numpy_images(images), latents.numpy().astype(np.float32)

    @torch.no_grad()
    def encode(self, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Return the VAE posterior means (content latents) [n, latent_dim] of images [n, 28, 28]."""
        image_tensor = torch.from_numpy(_as_unit_images(images, "images")).unsqueeze(1)
        label_vectors = one_hot(torch.from_numpy(_as_labels(labels, image_tensor.shape[0], "labels")))
        means = [
            self.vae.encode(image_tensor[start : start + _INFERENCE_BATCH], label_vectors[start : start + _INFERENCE_BATCH])[0]
            for start in range(0, image_tensor.shape[0], _INFERENCE_BATCH)
        ]
        return torch.cat(means).numpy().astype(np.float32)

    @torch.no_grad()
    def decode(self, latents: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Return the VAE mean images [n, 28, 28] of content latents [n, latent_dim] and labels [n]."""
        latent_tensor = torch.from_numpy(self._as_latents(latents, "latents"))
        label_vectors = one_hot(torch.from_numpy(_as_labels(labels, latent_tensor.shape[0], "labels")))
        return self._decode_vectors(latent_tensor, label_vectors)

    @torch.no_grad()
    def predict(self, images: np.ndarray) -> np.ndarray:
        """Return the classifier's labels [n] (int64) for images [n, 28, 28]."""
        return self.predict_proba(images).argmax(axis=1).astype(np.int64)

    @torch.no_grad()
    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Return the classifier's class probabilities [n, 10] for images [n, 28, 28]."""
        image_tensor = torch.from_numpy(_as_unit_images(images, "images")).unsqueeze(1)
        logits = [
            self.classifier(image_tensor[start : start + _INFERENCE_BATCH])
            for start in range(0, image_tensor.shape[0], _INFERENCE_BATCH)
        ]
        return torch.softmax(torch.cat(logits), dim=1).numpy()

    @torch.no_grad()
    def features(self, images: np.ndarray) -> np.ndarray:
        """Return the classifier's penultimate activations [n, feature_dim] (the Frechet-distance space)."""
        image_tensor = torch.from_numpy(_as_unit_images(images, "images")).unsqueeze(1)
        chunks = [
            self.classifier.features(image_tensor[start : start + _INFERENCE_BATCH])
            for start in range(0, image_tensor.shape[0], _INFERENCE_BATCH)
        ]
        return torch.cat(chunks).numpy().astype(np.float64)

    @torch.no_grad()
    def interpolate(
        self, latent_a: np.ndarray, label_a: int, latent_b: np.ndarray, label_b: int, steps: int
    ) -> np.ndarray:
        """Decode ``steps`` VAE latents evenly spaced from a to b, mixing the two labels likewise; [steps, 28, 28]."""
        if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or not 2 <= steps <= MAX_INTERPOLATION_STEPS:
            raise InvalidArgument(f"steps must be an integer in [2, {MAX_INTERPOLATION_STEPS}]; got {steps!r}")
        start = torch.from_numpy(self._as_latents(np.asarray(latent_a)[None], "latent_a"))
        end = torch.from_numpy(self._as_latents(np.asarray(latent_b)[None], "latent_b"))
        start_label = one_hot(torch.tensor([check_label(label_a, "label_a")]))
        end_label = one_hot(torch.tensor([check_label(label_b, "label_b")]))
        weights = torch.linspace(0.0, 1.0, int(steps)).unsqueeze(1)
        latents = (1.0 - weights) * start + weights * end
        label_vectors = (1.0 - weights) * start_label + weights * end_label
        return self._decode_vectors(latents, label_vectors)

    def _decode_vectors(self, latents: torch.Tensor, label_vectors: torch.Tensor) -> np.ndarray:
        chunks = [
            self.vae.decode(latents[start : start + _INFERENCE_BATCH], label_vectors[start : start + _INFERENCE_BATCH])
            for start in range(0, latents.shape[0], _INFERENCE_BATCH)
        ]
        return _to_numpy_images(torch.cat(chunks))

    def _as_latents(self, latents: np.ndarray, name: str) -> np.ndarray:
        array = np.asarray(latents)
        if array.ndim != 2 or array.shape[1] != self.latent_dim or array.shape[0] == 0:
            raise InvalidArgument(
                f"{name} must have shape [n >= 1, {self.latent_dim}]; got {list(array.shape)}"
            )
        if not np.issubdtype(array.dtype, np.number) or not np.all(np.isfinite(array)):
            raise InvalidArgument(f"{name} must hold finite numbers")
        return array.astype(np.float32)


def _as_unit_images(images: np.ndarray, name: str) -> np.ndarray:
    """Return images as float32 [n, 28, 28] in [0, 1]; uint8 images are scaled from [0, 255]."""
    array = np.asarray(images)
    if array.ndim != 3 or array.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or array.shape[0] == 0:
        raise InvalidArgument(f"{name} must have shape [n >= 1, 28, 28]; got {list(array.shape)}")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise InvalidArgument(f"{name} must be numeric; got dtype {array.dtype}")
    array = array.astype(np.float32)
    if not np.all(np.isfinite(array)) or array.min() < 0.0 or array.max() > 1.0:
        raise InvalidArgument(f"{name} must hold finite pixel values in [0, 1] (or uint8 in [0, 255])")
    return np.ascontiguousarray(array)


def _as_labels(labels: np.ndarray, count: int, name: str) -> np.ndarray:
    array = np.asarray(labels)
    if array.shape != (count,):
        raise InvalidArgument(f"{name} must have shape [{count}] (one per image); got {list(array.shape)}")
    if not np.issubdtype(array.dtype, np.integer) or (count and (array.min() < 0 or array.max() >= NUM_CATEGORIES)):
        raise InvalidArgument(f"{name} must be integers in [0, {NUM_CATEGORIES - 1}]")
    return array.astype(np.int64)


def _to_numpy_images(images: torch.Tensor) -> np.ndarray:
    return images.squeeze(1).clamp(0.0, 1.0).numpy().astype(np.float32)
