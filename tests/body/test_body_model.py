"""The body model facade: inference contract, sampling reproducibility, save/load round trip."""

import math

import numpy as np
import pytest

from tryon.services.body.body_model import BodyModel, Estimate
from tryon.services.body.measurements import NAMES
from tryon.shared.errors import InvalidArgument

OBSERVED = {"stature": 1750.0, "weight": 78.0, "waist_circumference": 900.0}


def test_infer_echoes_observed_and_brackets_every_estimate(trained_body_model):
    estimates = trained_body_model.infer(OBSERVED, "male")
    assert set(estimates) == set(NAMES)
    for name, value in OBSERVED.items():
        assert estimates[name] == Estimate(value, 0.0, value, value, True)
    for name in set(NAMES) - set(OBSERVED):
        estimate = estimates[name]
        assert not estimate.observed
        assert all(math.isfinite(v) for v in (estimate.value, estimate.stddev, estimate.lower_90, estimate.upper_90))
        assert estimate.stddev > 0
        assert estimate.lower_90 < estimate.value < estimate.upper_90


def test_infer_is_deterministic_and_works_without_sex(trained_body_model):
    assert trained_body_model.infer(OBSERVED, None) == trained_body_model.infer(OBSERVED, None)
    assert trained_body_model.infer(OBSERVED, "female") != trained_body_model.infer(OBSERVED, "male")


def test_infer_rejects_unknown_names_sexes_and_non_finite_values(trained_body_model):
    with pytest.raises(InvalidArgument, match="unknown measurement"):
        trained_body_model.infer({"stature": 1700.0, "weight": 70.0, "tail_length": 3.0}, "male")
    with pytest.raises(InvalidArgument, match="sex"):
        trained_body_model.infer(OBSERVED, "other")
    with pytest.raises(InvalidArgument, match="finite"):
        trained_body_model.infer({"stature": float("nan"), "weight": 70.0}, None)


def test_posterior_samples_keep_observed_values_and_vary_elsewhere(trained_body_model):
    draws = trained_body_model.posterior_samples(OBSERVED, "female", count=50, seed=3)
    assert draws.shape == (50, len(NAMES))
    assert np.isfinite(draws).all()
    for name, value in OBSERVED.items():
        np.testing.assert_allclose(draws[:, NAMES.index(name)], value, rtol=1e-6)
    assert draws[:, NAMES.index("hip_circumference")].std() > 0
    np.testing.assert_array_equal(draws, trained_body_model.posterior_samples(OBSERVED, "female", count=50, seed=3))


def test_latent_has_the_configured_size(trained_body_model):
    code = trained_body_model.latent(OBSERVED, "male")
    assert code.shape == (trained_body_model.latent_dim,)
    assert np.isfinite(code).all()


@pytest.mark.parametrize("generator", ["vae", "gan"])
def test_sample_is_reproducible_per_seed_and_respects_sex(trained_body_model, generator):
    first = trained_body_model.sample(20, seed=5, sex="female", generator=generator)
    assert first == trained_body_model.sample(20, seed=5, sex="female", generator=generator)
    assert first != trained_body_model.sample(20, seed=6, sex="female", generator=generator)
    assert {sex for sex, _ in first} == {"female"}
    assert all(set(body) == set(NAMES) and all(math.isfinite(v) for v in body.values()) for _, body in first)
    mixed = trained_body_model.sample(200, seed=1, sex=None, generator=generator)
    assert {sex for sex, _ in mixed} == {"female", "male"}


def test_sample_rejects_bad_arguments(trained_body_model):
    with pytest.raises(InvalidArgument, match="generator"):
        trained_body_model.sample(3, seed=0, sex=None, generator="diffusion")
    with pytest.raises(InvalidArgument, match="count"):
        trained_body_model.sample(0, seed=0, sex=None, generator="vae")


def test_save_load_round_trip_gives_identical_outputs(trained_body_model, tmp_path):
    trained_body_model.save(tmp_path / "model")
    loaded = BodyModel.load(tmp_path / "model")
    assert loaded.infer(OBSERVED, "male") == trained_body_model.infer(OBSERVED, "male")
    np.testing.assert_array_equal(loaded.latent(OBSERVED, None), trained_body_model.latent(OBSERVED, None))
    for generator in ("vae", "gan"):
        assert loaded.sample(7, 11, "male", generator) == trained_body_model.sample(7, 11, "male", generator)
    assert loaded.history == trained_body_model.history
    np.testing.assert_array_equal(loaded.correction_weight, trained_body_model.correction_weight)
    assert ((loaded.correction_weight >= 0) & (loaded.correction_weight <= 1)).all()
    assert sorted(path.name for path in (tmp_path / "model").iterdir()) == ["body_model.json", "cvae.pt", "gan.pt"]
