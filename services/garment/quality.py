"""Measure the garment models on Fashion-MNIST and write the quality table and pictures.

Usage: ``python -m tryon.services.garment.quality --out var/garment-quality``

Trains the models on the 60k training images (or loads them from ``--models-dir``), then:
the classifier's test accuracy; for each generator, 1,000 images per class and their
conditional accuracy (the classifier agrees with the requested class) and Frechet distance
to the 10k test images in the classifier's penultimate feature space, next to the distance
of 10k training images (the floor a perfect generator would reach); the VAE's reconstruction
error on the test set. Writes ``quality.md``, ``quality.json``, training curves and sample grids;
with ``--results docs/results.md`` also the tables and the sample grids into that document's
``evaluate_garment`` section.

``--only vae`` (or ``gan``) trains and measures that generator alone, taking the other models
from ``--models-dir``; ``--vae FIELD=VALUE`` changes a field of its ``VAEConfig``, so variants are
compared with the same classifier: ``--models-dir services/garment/weights/models --only vae
--vae prior=class --vae-epochs 2``. Models loaded (without ``--only``) take only ``--vae
sampling_temperature=T``, which training does not use.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from scipy import linalg

from tryon.services.garment.categories import CATEGORIES, NUM_CATEGORIES
from tryon.services.garment.dataset import load_fashion_mnist, to_unit_float
from tryon.services.garment.garment_models import GarmentModels, GarmentModelsConfig, default_device
from tryon.services.garment.gan import ConditionalGenerator, GANConfig, ProjectionDiscriminator
from tryon.services.garment.trainer import plot_history, plot_image_grid, train_gan, train_vae
from tryon.services.garment.vae import ConditionalVAE, VAEConfig
from tryon.shared.results import add_results_option, command_line, record

_CURVES = {
    "classifier": ["loss", "accuracy"],
    "vae": ["loss", "reconstruction", "kl", "bce_per_pixel", "mse_per_pixel", "class_loss", "sample_class_loss"],
    "gan": ["discriminator_loss", "generator_loss", "hinge", "real_score", "fake_score", "real_class_loss", "fake_class_loss"],
}
_INTERPOLATION_PAIRS = [(1, 3), (0, 6), (2, 4), (5, 7), (7, 9), (8, 3)]


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (Heusel et al. 2017)."""
    mean_a, mean_b = features_a.mean(axis=0), features_b.mean(axis=0)
    covariance_a = np.cov(features_a, rowvar=False)
    covariance_b = np.cov(features_b, rowvar=False)
    root = linalg.sqrtm(covariance_a @ covariance_b)
    if not np.all(np.isfinite(root)):
        # Near-singular covariances: regularise both, as the reference FID implementation does.
        offset = np.eye(covariance_a.shape[0]) * 1e-6
        root = linalg.sqrtm((covariance_a + offset) @ (covariance_b + offset))
    root = np.real(root)
    return float(np.sum((mean_a - mean_b) ** 2) + np.trace(covariance_a + covariance_b - 2.0 * root))


def generate_per_class(models: GarmentModels, generator: str, per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``per_class`` images of every class; return (images, requested labels)."""
    images, labels = [], []
    for label in range(NUM_CATEGORIES):
        for start in range(0, per_class, 1000):
            count = min(1000, per_class - start)
            batch, _ = models.generate(label, count, seed=seed + 1000 * label + start, generator=generator)
            images.append(batch)
            labels.append(np.full(count, label, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def reconstruction_errors(models: GarmentModels, images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, float, float]:
    """Reconstruct images through the VAE posterior mean; return (reconstructions, BCE per pixel, MSE per pixel)."""
    reconstructions = models.decode(models.encode(images, labels), labels)
    clipped = np.clip(reconstructions, 1e-7, 1 - 1e-7).astype(np.float64)
    targets = images.astype(np.float64)
    bce = -np.mean(targets * np.log(clipped) + (1 - targets) * np.log(1 - clipped))
    mse = np.mean((reconstructions.astype(np.float64) - targets) ** 2)
    return reconstructions, float(bce), float(mse)


def _accuracy_by_class(predicted: np.ndarray, requested: np.ndarray) -> list[float]:
    return [float(np.mean(predicted[requested == label] == label)) for label in range(NUM_CATEGORIES)]


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def evaluate(
    models: GarmentModels, out: Path, per_class: int, seed: int, generators: tuple[str, ...] = ("vae", "gan")
) -> dict:
    """Measure ``models``' ``generators`` on the Fashion-MNIST test split, write pictures under ``out``; return the figures."""
    train_images, train_labels = load_fashion_mnist("train")
    test_images, test_labels = load_fashion_mnist("test")
    test = to_unit_float(test_images)
    rng = np.random.default_rng(seed)
    train_subset = rng.choice(train_images.shape[0], size=min(10_000, train_images.shape[0]), replace=False)
    train = to_unit_float(train_images[train_subset])
    train_subset_labels = train_labels[train_subset]

    test_features = models.features(test)
    sources: dict[str, tuple[np.ndarray, np.ndarray]] = {"train images (floor)": (train, train_subset_labels)}
    timings = {}
    for generator in generators:
        started = time.perf_counter()
        sources[f"{generator.upper()} samples"] = generate_per_class(models, generator, per_class, seed)
        timings[generator] = time.perf_counter() - started
    reconstructions = None
    if "vae" in generators:
        reconstructions, bce, mse = reconstruction_errors(models, test, test_labels)
        sources["VAE test reconstructions"] = (reconstructions, test_labels)
        figures["vae_reconstruction"] = {"bce_per_pixel": bce, "mse_per_pixel": mse}

    test_accuracy = float(np.mean(models.predict(test) == test_labels))
    rows = []
    figures: dict = {"classifier_test_accuracy": test_accuracy, "sources": {}, "generation_seconds": timings}
    by_class = {"test images": _accuracy_by_class(models.predict(test), test_labels)}
    rows.append(["test images (reference)", str(test.shape[0]), f"{test_accuracy:.3f}", "0 (itself)"])
    for name, (images, requested) in sources.items():
        predicted = models.predict(images)
        accuracy = float(np.mean(predicted == requested))
        distance = frechet_distance(models.features(images), test_features)
        by_class[name] = _accuracy_by_class(predicted, requested)
        figures["sources"][name] = {"count": int(images.shape[0]), "conditional_accuracy": accuracy, "frechet_distance": distance}
        rows.append([name, str(images.shape[0]), f"{accuracy:.3f}", f"{distance:.2f}"])
    figures["accuracy_by_class"] = by_class

    _draw_pictures(models, generators, test, test_labels, reconstructions, out, seed)
    figures["tables"] = {
        "quality": _markdown_table(
            ["images", "count", "classifier agrees with class", "Frechet distance to 10k test images"], rows
        ),
        "by_class": _markdown_table(
            ["class", *by_class],
            [[CATEGORIES[label], *(f"{values[label]:.3f}" for values in by_class.values())] for label in range(NUM_CATEGORIES)],
        ),
    }
    if reconstructions is not None:
        figures["tables"]["reconstruction"] = _markdown_table(
            ["VAE reconstruction of the 10k test images", "value"],
            [["BCE per pixel (nats)", f"{bce:.4f}"], ["MSE per pixel", f"{mse:.5f}"]],
        )
    return figures


def _draw_pictures(models, generators, test, test_labels, reconstructions, out: Path, seed: int) -> None:
    titles = list(CATEGORIES)
    for generator in generators:
        grid = np.stack([models.generate(label, 10, seed=seed + label, generator=generator)[0] for label in range(NUM_CATEGORIES)])
        plot_image_grid(grid, out / f"samples_{generator}.png", titles, f"{generator.upper()} samples, one row per class")
    if reconstructions is None:
        return
    first_of_class = [np.flatnonzero(test_labels == label)[:5] for label in range(NUM_CATEGORIES)]
    pairs = np.stack(
        [np.concatenate([test[indices], reconstructions[indices]]) for indices in first_of_class]
    )
    plot_image_grid(pairs, out / "reconstructions_vae.png", titles, "test images (left 5) and VAE reconstructions (right 5)")
    strips = []
    for label_a, label_b in _INTERPOLATION_PAIRS:
        index_a = np.flatnonzero(test_labels == label_a)[0]
        index_b = np.flatnonzero(test_labels == label_b)[0]
        latents = models.encode(test[[index_a, index_b]], np.array([label_a, label_b]))
        strips.append(models.interpolate(latents[0], label_a, latents[1], label_b, 10))
    plot_image_grid(
        np.stack(strips),
        out / "interpolations_vae.png",
        [f"{CATEGORIES[a]}->{CATEGORIES[b]}" for a, b in _INTERPOLATION_PAIRS],
        "VAE interpolation between encoded test garments",
    )


def config_with(base, changes: list[str], option: str):
    """The config dataclass ``base`` with ``FIELD=VALUE`` changes (given by ``option``), each value read as its field's type."""
    values = {}
    for change in changes:
        name, _, text = change.partition("=")
        if not hasattr(base, name) or not text:
            raise SystemExit(f"{option} takes FIELD=VALUE with a {type(base).__name__} field; got {change!r}")
        values[name] = type(getattr(base, name))(text)
    return replace(base, **values)


def with_vae_sampling(models: GarmentModels, changes: list[str]) -> GarmentModels:
    """``models`` whose VAE samples with the ``--vae`` changes, which may touch only fields training does not use."""
    config = config_with(models.config.vae, changes, "--vae")
    changed = {name for name, value in asdict(config).items() if value != getattr(models.config.vae, name)}
    if changed - {"sampling_temperature"}:
        raise SystemExit(f"loaded models take only --vae sampling_temperature=T; retrain (--retrain) to change {', '.join(sorted(changed))}")
    models.vae.config = config
    models.config = replace(models.config, vae=config)
    return models


def retrain_one(models: GarmentModels, generator: str, images: np.ndarray, labels: np.ndarray, args) -> GarmentModels:
    """``models`` with ``generator`` trained afresh (with the ``--vae`` or ``--gan`` changes); the other models are kept.

    It trains on the device ``GarmentModels.train`` picks (a GPU when one is usable).
    """
    device = default_device()
    image_tensor = torch.from_numpy(images).unsqueeze(1)
    label_tensor = torch.from_numpy(labels.astype(np.int64))
    torch.manual_seed(args.seed)
    histories = dict(models.histories)
    vae, gan = models.vae, models.generator
    if generator == "vae":
        config = replace(models.config, vae=config_with(VAEConfig(), args.vae, "--vae"))
        vae = ConditionalVAE(config.vae)
        histories["vae"] = train_vae(
            vae, image_tensor, label_tensor, args.vae_epochs, args.seed, not args.no_progress, device
        )
    else:
        config = replace(models.config, gan=config_with(GANConfig(), args.gan, "--gan"))
        gan, histories["gan"] = train_gan(
            ConditionalGenerator(config.gan), ProjectionDiscriminator(config.gan), image_tensor, label_tensor,
            args.gan_epochs, args.seed, not args.no_progress, device,
        )
    return GarmentModels(config, vae, gan, models.classifier, histories)


def main(argv: list[str] | None = None) -> int:
    """Train or load the garment models, measure them and print the quality tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("var/garment-quality"), help="folder for tables and PNGs")
    parser.add_argument("--models-dir", type=Path, help="load models from here if present, else train and save here (default OUT/models)")
    parser.add_argument("--retrain", action="store_true", help="train even when --models-dir holds models")
    parser.add_argument("--vae-epochs", type=int, help="override the VAE's epochs")
    parser.add_argument("--gan-epochs", type=int, help="override the GAN's epochs")
    parser.add_argument("--classifier-epochs", type=int, help="override the classifier's epochs")
    parser.add_argument(
        "--only", choices=("vae", "gan"),
        help="train and measure only this generator; the other models come from --models-dir, which must hold models",
    )
    parser.add_argument(
        "--vae", action="append", default=[], metavar="FIELD=VALUE",
        help="change a VAEConfig field of the VAE trained (repeatable), e.g. prior=class",
    )
    parser.add_argument(
        "--gan", action="append", default=[], metavar="FIELD=VALUE",
        help="change a GANConfig field of the GAN trained (repeatable), e.g. auxiliary_weight=2.0",
    )
    parser.add_argument("--train-images", type=int, default=0, help="train on the first N training images (0: all 60,000)")
    parser.add_argument("--per-class", type=int, default=1000, help="generated images per class and model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_results_option(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    models_dir: Path = args.models_dir or out / "models"

    if args.only and not (models_dir / "config.json").is_file():
        parser.error(f"--only needs the other models in --models-dir; {models_dir} holds none")
    if (models_dir / "config.json").is_file() and not args.retrain and not args.only:
        print(f"loading models from {models_dir}")
        models = with_vae_sampling(GarmentModels.load(models_dir), args.vae)
    else:
        images, labels = load_fashion_mnist("train")
        if args.train_images:
            images, labels = images[: args.train_images], labels[: args.train_images]
        print(f"training on {images.shape[0]} Fashion-MNIST images, torch threads {torch.get_num_threads()}")
        if args.only:
            print(f"training only the {args.only.upper()}; the other models come from {models_dir}")
            models = retrain_one(GarmentModels.load(models_dir), args.only, to_unit_float(images), labels, args)
            models_dir = out / "models"
        else:
            models = GarmentModels.train(
                to_unit_float(images),
                labels,
                GarmentModelsConfig(vae=config_with(VAEConfig(), args.vae, "--vae"), gan=config_with(GANConfig(), args.gan, "--gan")),
                vae_epochs=args.vae_epochs,
                gan_epochs=args.gan_epochs,
                classifier_epochs=args.classifier_epochs,
                seed=args.seed,
                progress=not args.no_progress,
            )
        models.save(models_dir)
        print(f"saved models to {models_dir}")
    for name, history in models.histories.items():
        plot_history(history, out / f"training_{name}.png", [m for m in _CURVES[name] if m in history.metrics])

    started = time.perf_counter()
    generators = (args.only,) if args.only else ("vae", "gan")
    figures = evaluate(models, out, args.per_class, args.seed, generators)
    figures["evaluation_seconds"] = time.perf_counter() - started
    figures["training"] = {
        name: {"epochs": history.epochs, "images_seen": history.images_seen, "seconds": history.seconds}
        for name, history in models.histories.items()
    }
    training_table = _markdown_table(
        ["model", "epochs", "images seen", "training seconds"],
        [[name, str(t["epochs"]), str(t["images_seen"]), f"{t['seconds']:.0f}"] for name, t in figures["training"].items()],
    )
    report = "\n\n".join(
        [
            "# Garment model quality (Fashion-MNIST)",
            f"Classifier test accuracy: {figures['classifier_test_accuracy']:.4f}",
            figures["tables"]["quality"],
            *([figures["tables"]["reconstruction"]] if "reconstruction" in figures["tables"] else []),
            "Classifier agreement by class:\n\n" + figures["tables"]["by_class"],
            "Training (torch threads: %d):\n\n" % torch.get_num_threads() + training_table,
            f"Evaluation seconds: {figures['evaluation_seconds']:.0f}",
        ]
    )
    (out / "quality.md").write_text(report + "\n")
    (out / "quality.json").write_text(json.dumps(figures, indent=2))
    print(report)
    record(
        args.results, "evaluate_garment", "Garment model quality on Fashion-MNIST", report,
        command=command_line(argv, module="tryon.services.garment.quality"),
        pictures=[out / f"samples_{name}.png" for name in generators]
        + ([out / "reconstructions_vae.png"] if "vae" in generators else []),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
