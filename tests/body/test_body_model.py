"""The body model facade: inference contract, sampling reproducibility, save/load round trip."""

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from tryon.services.body.body_model import (
    QUESTION_KINDS,
    BodyModel,
    BodyModelConfig,
    Estimate,
    ModelFormatError,
    _interval_scales,
    question_kinds,
)
from tryon.services.body.measurements import NAMES, REQUIRED, SEXES
from tryon.services.body.models_store import load_or_train_model
from tryon.services.body.settings import BodySettings
from tryon.shared.contract import MAX_LATENT_NORM
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


def test_latents_stay_far_inside_the_contracts_norm_bound(trained_body_model, tiny_body_frame):
    # Even a model trained for a few epochs: consumers dead-letter a BodyUpdated beyond the bound.
    codes = [
        trained_body_model.latent({name: float(row[name]) for name in REQUIRED}, row["sex"])
        for _, row in tiny_body_frame.iterrows()
    ]
    assert np.linalg.norm(codes, axis=1).max() < MAX_LATENT_NORM / 2


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


def test_a_config_saved_before_the_gan_weight_average_says_it_was_trained_without_it():
    saved = BodyModelConfig().to_json()
    for name in ("ema_decay", "recentre", "recentre_draws"):
        del saved["gan"][name]
    loaded = BodyModelConfig.from_json(saved).gan
    assert (loaded.ema_decay, loaded.recentre) == (0.0, False)
    assert BodyModelConfig.from_json(BodyModelConfig().to_json()) == BodyModelConfig()


def test_a_model_of_an_older_format_is_refused_on_load_and_retrained_by_the_service(trained_body_model, tmp_path):
    settings = BodySettings(data_dir=tmp_path, train_epochs=1, gan_epochs=1)
    trained_body_model.save(settings.model_dir)
    document_path = settings.model_dir / "body_model.json"
    document = json.loads(document_path.read_text())
    document["format_version"] = 1
    document_path.write_text(json.dumps(document))
    with pytest.raises(ModelFormatError, match="format 1"):
        BodyModel.load(settings.model_dir)
    load_or_train_model(settings)
    assert BodyModel.load(settings.model_dir).interval_scale.shape == (len(QUESTION_KINDS), 3, len(NAMES))


def test_interval_scales_take_the_90th_percentile_per_question_kind_pooled_over_groups():
    rng = np.random.default_rng(0)
    required, other = QUESTION_KINDS.index("required"), QUESTION_KINDS.index("other")
    groups, pooled = [], {required: [], other: []}
    for answers in (300, 700):
        ratios = rng.exponential(size=(answers, len(NAMES)))
        kinds = np.where(np.arange(answers) % 2 == 0, required, other)
        ratios[kinds == other] *= 2.0
        hidden = np.ones_like(ratios, dtype=bool)
        hidden[:, 0] = False
        groups.append([(ratios, hidden, kinds)] * 3)
        for kind in pooled:
            pooled[kind].append(ratios[kinds == kind])
    scales = _interval_scales(groups)
    assert scales.shape == (len(QUESTION_KINDS), 3, len(NAMES))
    for kind, parts in pooled.items():
        expected = np.quantile(np.concatenate(parts), 0.9, axis=0)
        np.testing.assert_allclose(scales[kind, :, 1:], np.broadcast_to(expected[1:], (3, len(NAMES) - 1)))
    # No answers of the third kind: it falls back to all kinds together; never-hidden columns stay 1.
    everything = np.concatenate(pooled[required] + pooled[other])
    np.testing.assert_allclose(scales[QUESTION_KINDS.index("required+circumferences"), 0, 1:],
                               np.quantile(everything, 0.9, axis=0)[1:])
    np.testing.assert_array_equal(scales[:, :, 0], 1.0)


def test_question_kinds_tell_the_shoppers_questions_from_other_subsets():
    def observed(names):
        return np.isin(np.array(NAMES), names)

    rows = np.stack([
        observed(["stature", "weight"]),
        observed(["stature", "weight", "chest_circumference", "waist_circumference", "hip_circumference"]),
        observed(["stature", "weight", "chest_circumference"]),
    ])
    assert [QUESTION_KINDS[kind] for kind in question_kinds(rows)] == ["required", "required+circumferences", "other"]


def test_intervals_use_the_scale_of_the_question_asked(trained_body_model):
    model = BodyModel(
        trained_body_model.config, trained_body_model.cvae, trained_body_model.gan, trained_body_model.mean,
        trained_body_model.scale, np.ones_like(trained_body_model.interval_scale), trained_body_model.female_share,
        {}, trained_body_model.correction_weight,
    )
    question = {"stature": 1700.0, "weight": 70.0}
    before = model.infer(question, "female")["chest_circumference"].stddev
    model.interval_scale[QUESTION_KINDS.index("required")] = 2.0
    assert model.infer(question, "female")["chest_circumference"].stddev == pytest.approx(2 * before)
    longer = {**question, "neck_circumference": 330.0}
    unscaled = model.infer(longer, "female")["chest_circumference"].stddev
    model.interval_scale[QUESTION_KINDS.index("other")] = 3.0
    assert model.infer(longer, "female")["chest_circumference"].stddev == pytest.approx(3 * unscaled)


def test_out_of_fold_answers_cover_every_training_subject_once_per_question(trained_body_model, tiny_body_frame):
    config = replace(trained_body_model.config, calibration_folds=2)
    model = BodyModel(
        config, trained_body_model.cvae, trained_body_model.gan, trained_body_model.mean, trained_body_model.scale,
        trained_body_model.interval_scale, trained_body_model.female_share, {}, trained_body_model.correction_weight,
    )
    tensors = model._tensors(tiny_body_frame)
    folds = model._out_of_fold_ratios(tensors, epochs=2, seed=0, progress=False)
    assert len(folds) == 2
    questions = config.calibration_masks
    for row, sex in enumerate(SEXES):
        assert sum(len(fold[row][0]) for fold in folds) == questions * int((tiny_body_frame["sex"] == sex).sum())
    assert sum(len(fold[len(SEXES)][0]) for fold in folds) == questions * len(tiny_body_frame)
    assert all(np.isfinite(ratio).all() and (ratio >= 0).all() for fold in folds for ratio, _, _ in fold)


def test_train_rejects_fewer_than_one_calibration_fold(tiny_body_frame):
    with pytest.raises(ValueError, match="calibration_folds"):
        BodyModel.train(tiny_body_frame, BodyModelConfig(calibration_folds=0), epochs=1, progress=False)
