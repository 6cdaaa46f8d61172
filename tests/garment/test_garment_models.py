"""Tests of the GarmentModels facade: save/load, determinism, shapes and argument checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tryon.services.garment.garment_models import MAX_GENERATE, GarmentModels, GarmentModelsConfig
from tryon.services.garment.gan import GANConfig
from tryon.services.garment.vae import VAEConfig
from tryon.shared.contract import CONTENT_LATENT_DIM, MAX_LATENT_NORM
from tryon.shared.errors import InvalidArgument


def test_training_records_a_history_per_model(trained_garment_models: GarmentModels) -> None:
    for name in ("vae", "gan", "classifier"):
        history = trained_garment_models.histories[name]
        assert history.epochs == 1 and history.images_seen == 3000 and history.seconds > 0


@pytest.mark.parametrize("generator", ["vae", "gan"])
def test_generate_is_deterministic_per_seed(trained_garment_models: GarmentModels, generator: str) -> None:
    images, latents = trained_garment_models.generate(3, 6, seed=42, generator=generator)
    again, again_latents = trained_garment_models.generate(3, 6, seed=42, generator=generator)
    other, _ = trained_garment_models.generate(3, 6, seed=43, generator=generator)
    expected_dim = trained_garment_models.latent_dim if generator == "vae" else trained_garment_models.noise_dim
    assert images.shape == (6, 28, 28) and images.dtype == np.float32
    assert latents.shape == (6, expected_dim)
    assert images.min() >= 0.0 and images.max() <= 1.0
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(latents, again_latents)
    assert not np.allclose(images, other)


def test_encode_decode_shapes(trained_garment_models: GarmentModels, fashion_sample) -> None:
    images, labels = fashion_sample
    latents = trained_garment_models.encode(images[:20], labels[:20])
    assert latents.shape == (20, trained_garment_models.latent_dim) and latents.dtype == np.float32
    decoded = trained_garment_models.decode(latents, labels[:20])
    assert decoded.shape == (20, 28, 28)
    np.testing.assert_array_equal(trained_garment_models.encode(images[:20], labels[:20]), latents)
    uint8_latents = trained_garment_models.encode((images[:3] * 255).round().astype(np.uint8), labels[:3])
    np.testing.assert_allclose(uint8_latents, latents[:3], atol=1e-3)


def test_content_latents_keep_the_contracts_length_and_norm_bound(trained_garment_models: GarmentModels, fashion_sample) -> None:
    images, labels = fashion_sample
    latents = trained_garment_models.encode(images, labels)
    assert trained_garment_models.latent_dim == CONTENT_LATENT_DIM
    # The bound sits about three times above the trained model's largest latent norm.
    assert np.linalg.norm(latents, axis=1).max() < MAX_LATENT_NORM / 2


def test_reconstruction_is_closer_than_a_blank_image(trained_garment_models: GarmentModels, fashion_sample) -> None:
    images, labels = fashion_sample
    decoded = trained_garment_models.decode(trained_garment_models.encode(images[:100], labels[:100]), labels[:100])
    assert np.mean((decoded - images[:100]) ** 2) < np.mean(images[:100] ** 2)


def test_predict_returns_labels(trained_garment_models: GarmentModels, fashion_sample) -> None:
    images, labels = fashion_sample
    predicted = trained_garment_models.predict(images)
    assert predicted.shape == labels.shape and predicted.dtype == np.int64
    assert set(np.unique(predicted)) <= set(range(10))
    probabilities = trained_garment_models.predict_proba(images[:5])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_interpolation_ends_at_the_decoded_endpoints(trained_garment_models: GarmentModels, fashion_sample) -> None:
    images, labels = fashion_sample
    latents = trained_garment_models.encode(images[:2], labels[:2])
    path = trained_garment_models.interpolate(latents[0], int(labels[0]), latents[1], int(labels[1]), 7)
    assert path.shape == (7, 28, 28)
    endpoints = trained_garment_models.decode(latents, labels[:2])
    np.testing.assert_allclose(path[0], endpoints[0], atol=1e-5)
    np.testing.assert_allclose(path[-1], endpoints[1], atol=1e-5)


def test_save_load_round_trip_gives_identical_outputs(trained_garment_models: GarmentModels, trained_garment_models_dir, fashion_sample) -> None:
    loaded = GarmentModels.load(trained_garment_models_dir)
    images, labels = fashion_sample
    assert loaded.config == trained_garment_models.config
    for generator in ("vae", "gan"):
        np.testing.assert_array_equal(
            loaded.generate(7, 4, seed=5, generator=generator)[0],
            trained_garment_models.generate(7, 4, seed=5, generator=generator)[0],
        )
    np.testing.assert_array_equal(loaded.encode(images[:10], labels[:10]), trained_garment_models.encode(images[:10], labels[:10]))
    np.testing.assert_array_equal(loaded.predict(images), trained_garment_models.predict(images))
    assert loaded.histories["gan"].images_seen == trained_garment_models.histories["gan"].images_seen
    config = json.loads((trained_garment_models_dir / "config.json").read_text())
    assert config["vae"]["latent_dim"] == trained_garment_models.latent_dim


def test_load_from_an_empty_folder_says_how_to_train(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="GarmentModels.train"):
        GarmentModels.load(tmp_path)


def test_custom_config_round_trips(tmp_path) -> None:
    config = GarmentModelsConfig(vae=VAEConfig(latent_dim=6), gan=GANConfig(noise_dim=12, generator_channels=16))
    models = GarmentModels.untrained(config, seed=1)
    loaded = GarmentModels.load(models.save(tmp_path))
    assert loaded.latent_dim == 6 and loaded.noise_dim == 12
    np.testing.assert_array_equal(loaded.generate(0, 2, 3, "gan")[0], models.generate(0, 2, 3, "gan")[0])


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"label": 10, "count": 1, "seed": 0}, "label"),
        ({"label": -1, "count": 1, "seed": 0}, "label"),
        ({"label": 1, "count": 0, "seed": 0}, "count"),
        ({"label": 1, "count": MAX_GENERATE + 1, "seed": 0}, "count"),
        ({"label": 1, "count": 2, "seed": -1}, "seed"),
        ({"label": 1, "count": 2, "seed": 0, "generator": "diffusion"}, "generator"),
    ],
)
def test_generate_rejects_bad_arguments(arguments, field) -> None:
    models = GarmentModels.untrained()
    with pytest.raises(InvalidArgument, match=field):
        models.generate(**arguments)


def test_inputs_are_checked() -> None:
    models = GarmentModels.untrained()
    with pytest.raises(InvalidArgument, match=r"\[n >= 1, 28, 28\]"):
        models.encode(np.zeros((2, 27, 28), dtype=np.float32), np.array([0, 1]))
    with pytest.raises(InvalidArgument, match=r"\[0, 1\]"):
        models.predict(np.full((1, 28, 28), 2.0, dtype=np.float32))
    with pytest.raises(InvalidArgument, match="labels"):
        models.encode(np.zeros((2, 28, 28), dtype=np.float32), np.array([0, 10]))
    with pytest.raises(InvalidArgument, match="labels"):
        models.encode(np.zeros((2, 28, 28), dtype=np.float32), np.array([0]))
    with pytest.raises(InvalidArgument, match="latents"):
        models.decode(np.zeros((2, models.latent_dim + 1), dtype=np.float32), np.array([0, 1]))
    with pytest.raises(InvalidArgument, match="steps"):
        models.interpolate(np.zeros(models.latent_dim), 0, np.zeros(models.latent_dim), 1, 1)
    with pytest.raises(InvalidArgument, match="label_b"):
        models.interpolate(np.zeros(models.latent_dim), 0, np.zeros(models.latent_dim), 11, 3)


def test_frechet_distance_matches_the_closed_form() -> None:
    from tryon.services.garment.quality import frechet_distance

    rng = np.random.default_rng(0)
    base = rng.normal(size=(20_000, 4))
    assert frechet_distance(base, rng.normal(size=(20_000, 4))) < 0.01
    shifted = rng.normal(size=(20_000, 4)) + np.array([1.0, 0.0, 0.0, 0.0])
    assert frechet_distance(base, shifted) == pytest.approx(1.0, abs=0.05)
    # N(0, I) against N(0, 4I) in 4 dimensions: trace(I + 4I - 2 * 2I) = 4.
    assert frechet_distance(base, 2.0 * rng.normal(size=(20_000, 4))) == pytest.approx(4.0, abs=0.15)
