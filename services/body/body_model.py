"""The body model facade: infer a full body from a few measurements, and sample body populations.

Pure numpy and Python types in and out; torch stays inside. It bundles the masked conditional VAE
(``cvae.py``: inference with uncertainty, and prior samples) and the conditional WGAN-GP (``gan.py``:
samples), the standardization they share, and two things fitted on held-out subjects after training:
per measurement, how much of the CVAE's correction of the Gaussian conditional mean to keep
(stacking), and per sex and measurement a scale of the predictive standard deviation so the 90%
intervals cover 90% of subjects, for each kind of question (see ``QUESTION_KINDS``). The scales come
from the validation subjects' answers together with out-of-fold answers for the training subjects
(cross-fitting), because a 90th percentile per sex and measurement from a few hundred subjects alone
is too noisy to hold each cell within 85-95%.
"""

from __future__ import annotations

import json
import math
import pathlib
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch

from tryon.services.body.cvae import CVAEConfig, MaskedCVAE, random_masks
from tryon.services.body.gan import ConditionalWGAN, GANConfig
from tryon.services.body.measurements import BY_NAME, NAMES, REQUIRED, SEXES
from tryon.services.body.trainer import BodyTensors, train_cvae, train_gan
from tryon.shared.errors import InvalidArgument
from tryon.shared.files import atomic_write

CONFIG_FILE = "body_model.json"
CVAE_FILE = "cvae.pt"
GAN_FILE = "gan.pt"
FORMAT_VERSION = 2
GENERATORS = ("vae", "gan")
# Two-sided 90% interval of a normal distribution: mean +- 1.645 standard deviations.
Z_90 = 1.6448536269514722
# Candidate weights on the CVAE's correction of the Gaussian conditional mean.
CORRECTION_WEIGHTS = tuple(step / 10 for step in range(11))
# The circumferences shoppers most often know besides height and weight.
SHOPPER_CIRCUMFERENCES = ("chest_circumference", "waist_circumference", "hip_circumference")
# Calibration rows: one per sex state (female, male, unknown), one column per measurement.
UNKNOWN_SEX_ROW = len(SEXES)
# Interval scales are fitted per kind of question, because how far the CVAE's spread is off depends
# on what was observed: the required measurements alone, those with chest, waist and hips (the two
# questions shoppers answer), or any other subset (fitted on random masks).
QUESTION_KINDS = ("required", "required+circumferences", "other")
MIN_CALIBRATION_ANSWERS = 20


# The GANConfig values of the training a saved config without these fields had.
GAN_BEFORE_AVERAGING = {"ema_decay": 0.0, "recentre": False}


class ModelFormatError(ValueError):
    """A saved body model was written in another format than this version reads."""


@dataclass(frozen=True)
class BodyModelConfig:
    """Hyperparameters of the body model; defaults are the ones the evaluation reports."""

    # The conditional VAE (inference and prior samples).
    cvae: CVAEConfig = field(default_factory=CVAEConfig)
    # The conditional WGAN-GP (samples).
    gan: GANConfig = field(default_factory=GANConfig)
    # Share of subjects held out for calibration when train() is given no validation frame.
    calibration_fraction: float = 0.15
    # Seed of the latent draws behind infer(), so the same question always gets the same answer.
    inference_seed: int = 0
    # Questions per held-out subject used to fit the interval scales: the required measurements alone,
    # the required ones with chest, waist and hips (what shoppers give), then random training masks.
    calibration_masks: int = 4
    # GAN epochs per CVAE epoch when train() is not told the GAN's epochs.
    gan_epoch_share: float = 0.2
    # Folds of the training subjects for the interval scales: a CVAE is trained on all folds but one,
    # answers for the one left out, and those out-of-fold answers join the validation subjects' ones.
    # 1 uses the validation subjects alone; each fold costs about (folds - 1) / folds of a CVAE training.
    calibration_folds: int = 3

    def to_json(self) -> dict:
        """Plain-data form for the saved config."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> BodyModelConfig:
        """Inverse of to_json."""
        values = dict(data)
        values["cvae"] = CVAEConfig(**values["cvae"])
        # A GAN saved before the weight average and the re-centring existed was trained without them.
        values["gan"] = GANConfig(**{**GAN_BEFORE_AVERAGING, **values["gan"]})
        return cls(**values)


@dataclass(frozen=True)
class Estimate:
    """One inferred measurement: value, standard deviation and 90% interval, in the measurement's unit."""

    value: float
    stddev: float
    lower_90: float
    upper_90: float
    observed: bool


def _sex_one_hot(sexes: list[str | None]) -> torch.Tensor:
    """One-hot over SEXES per row; all zeros for an unknown sex."""
    one_hot = torch.zeros(len(sexes), len(SEXES))
    for row, sex in enumerate(sexes):
        if sex is not None:
            one_hot[row, SEXES.index(sex)] = 1.0
    return one_hot


def _check_sex(sex: str | None) -> None:
    """Raise InvalidArgument unless sex is one of SEXES or None."""
    if sex is not None and sex not in SEXES:
        raise InvalidArgument(f"sex must be one of {', '.join(SEXES)} or unset, got {sex!r}")


class BodyModel:
    """A trained body model; build with ``BodyModel.train`` or ``BodyModel.load``."""

    def __init__(
        self,
        config: BodyModelConfig,
        cvae: MaskedCVAE,
        gan: ConditionalWGAN,
        mean: np.ndarray,
        scale: np.ndarray,
        interval_scale: np.ndarray,
        female_share: float,
        history: dict[str, list[float]],
        correction_weight: np.ndarray | None = None,
    ) -> None:
        self.config = config
        self.cvae = cvae.eval()
        self.gan = gan.eval()
        self.mean = np.asarray(mean, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.interval_scale = np.asarray(interval_scale, dtype=np.float64)
        self.female_share = float(female_share)
        self.history = history
        # Per measurement, the share of the CVAE's departure from the Gaussian conditional mean kept
        # in predictions (1 = the CVAE's own mean).
        self.correction_weight = (
            np.ones(len(NAMES)) if correction_weight is None else np.asarray(correction_weight, dtype=np.float64)
        )

    @property
    def latent_dim(self) -> int:
        """Length of the vector returned by latent()."""
        return self.config.cvae.latent_dim

    # Training -----------------------------------------------------------------------------------

    @classmethod
    def train(
        cls,
        frame: pd.DataFrame,
        config: BodyModelConfig | None = None,
        epochs: int = 300,
        seed: int = 0,
        progress: bool = True,
        validation: pd.DataFrame | None = None,
        gan_epochs: int | None = None,
    ) -> BodyModel:
        """Train the CVAE and the GAN on ``frame`` (columns ``sex`` and every measurement).

        The correction weights are fitted on ``validation`` or, when it is None, on a seeded
        ``calibration_fraction`` of ``frame`` that is then left out of fitting. The interval scales are
        fitted on the validation subjects and, with ``config.calibration_folds`` > 1, on out-of-fold
        answers for the training subjects as well. ``gan_epochs`` defaults to ``gan_epoch_share`` of ``epochs``.
        """
        config = config or BodyModelConfig()
        if config.calibration_folds < 1:
            raise ValueError(f"calibration_folds must be at least 1, got {config.calibration_folds}")
        _check_frame(frame)
        if validation is None:
            order = np.random.default_rng(seed).permutation(len(frame))
            held_out = int(round(len(frame) * config.calibration_fraction))
            validation = frame.iloc[order[:held_out]]
            frame = frame.iloc[order[held_out:]]
        _check_frame(validation)
        values = frame[list(NAMES)].to_numpy(np.float64)
        mean, scale = values.mean(axis=0), values.std(axis=0)
        torch.manual_seed(seed)
        cvae = MaskedCVAE(config.cvae)
        gan = ConditionalWGAN(config.gan)
        female_share = float((frame["sex"] == "female").mean())
        unit_scales = np.ones((len(QUESTION_KINDS), len(SEXES) + 1, len(NAMES)))
        model = cls(config, cvae, gan, mean, scale, unit_scales, female_share, {})
        train_tensors = model._tensors(frame)
        validation_tensors = model._tensors(validation)
        required = [NAMES.index(name) for name in REQUIRED]
        history = train_cvae(cvae, train_tensors, validation_tensors, required, epochs, seed, progress)
        if gan_epochs is None:
            gan_epochs = max(1, round(epochs * config.gan_epoch_share))
        gan_history = train_gan(gan, train_tensors, gan_epochs, seed, progress)
        model.history = {**history.curves, **gan_history.curves}
        x, mask, sex = model._calibration_questions(validation_tensors, seed)
        model.correction_weight = model._fit_correction_weight(x, mask, sex, seed)
        answers = [model._interval_ratios(x, mask, sex, seed)]
        answers += model._out_of_fold_ratios(train_tensors, epochs, seed, progress)
        model.interval_scale = _interval_scales(answers)
        return model

    def _out_of_fold_ratios(self, train: BodyTensors, epochs: int, seed: int, progress: bool) -> list[list[tuple]]:
        """``_interval_ratios`` of each training subject, answered by a CVAE trained without its fold."""
        folds = self.config.calibration_folds
        if folds < 2:
            return []
        fold_of = torch.randperm(train.x.shape[0], generator=torch.Generator().manual_seed(seed + 4)) % folds
        required = [NAMES.index(name) for name in REQUIRED]
        answers = []
        for fold in range(folds):
            fold_seed = seed + 10 * (fold + 1)
            fit, held_out = fold_of != fold, fold_of == fold
            torch.manual_seed(fold_seed)
            cvae = MaskedCVAE(self.config.cvae)
            train_cvae(cvae, BodyTensors(train.x[fit], train.sex[fit]), None, required, epochs, fold_seed, progress)
            fold_model = BodyModel(
                self.config, cvae, self.gan, self.mean, self.scale, self.interval_scale, self.female_share, {},
                self.correction_weight,
            )
            questions = fold_model._calibration_questions(BodyTensors(train.x[held_out], train.sex[held_out]), fold_seed)
            answers.append(fold_model._interval_ratios(*questions, seed))
        return answers

    def _tensors(self, frame: pd.DataFrame) -> BodyTensors:
        """Standardized tensors of a frame."""
        x = (frame[list(NAMES)].to_numpy(np.float64) - self.mean) / self.scale
        return BodyTensors(torch.as_tensor(x, dtype=torch.float32), _sex_one_hot(frame["sex"].tolist()))

    def _calibration_questions(self, held_out: BodyTensors, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Held-out subjects asked ``calibration_masks`` questions each: (x, mask, sex) tensors.

        The questions are the required measurements alone, the required ones with chest, waist and
        hips (what shoppers give), then random masks from the training distribution (never empty).
        """
        generator = torch.Generator().manual_seed(seed + 2)
        required = [NAMES.index(name) for name in REQUIRED]
        repeats = self.config.calibration_masks
        x = held_out.x.repeat(repeats, 1)
        sex = held_out.sex.repeat(repeats, 1)
        no_empty = CVAEConfig(**{**asdict(self.cvae.config), "empty_mask_rate": 0.0})
        mask = random_masks(x.shape[0], len(NAMES), required, no_empty, generator)
        subjects = held_out.x.shape[0]
        for question, names in enumerate((REQUIRED, (*REQUIRED, *SHOPPER_CIRCUMFERENCES))[:repeats]):
            mask[question * subjects : (question + 1) * subjects] = 0.0
            mask[question * subjects : (question + 1) * subjects, [NAMES.index(name) for name in names]] = 1.0
        return x, mask, sex

    def _predict_standardized(
        self, x: torch.Tensor, mask: torch.Tensor, sex: torch.Tensor, seed: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Standardized CVAE mean, Gaussian conditional mean and CVAE stddev."""
        mean, stddev = self.cvae.predict(x, mask, sex, torch.Generator().manual_seed(seed))
        gaussian_mean, _ = self.cvae.gaussian_conditional(x, mask, sex)
        return mean, gaussian_mean, stddev

    def _fit_correction_weight(self, x: torch.Tensor, mask: torch.Tensor, sex: torch.Tensor, seed: int) -> np.ndarray:
        """Per measurement, the weight in [0, 1] on the CVAE's correction, chosen on held-out subjects.

        Where the relation to the observed measurements is linear (lengths from stature), the
        network's correction of the Gaussian conditional (a per-sex linear regression) only adds
        variance; stacking on held-out subjects keeps it only where it helps. The weight is the
        smallest whose held-out MAE is within one paired standard error of the best weight's
        (the one-standard-error rule), so a correction that does not clearly help is left out.
        """
        mean, gaussian_mean, _ = self._predict_standardized(x, mask, sex, seed + 3)
        hidden = (mask == 0).numpy()
        weights = np.ones(len(NAMES))
        for column in range(len(NAMES)):
            rows = hidden[:, column]
            if rows.sum() < 20:
                continue
            truth, base = x[rows, column].numpy(), gaussian_mean[rows, column].numpy()
            correction = mean[rows, column].numpy() - base
            errors = np.stack([np.abs(base + weight * correction - truth) for weight in CORRECTION_WEIGHTS])
            best = errors[int(np.argmin(errors.mean(axis=1)))]
            for weight, error in zip(CORRECTION_WEIGHTS, errors):
                excess = error - best
                if excess.mean() <= excess.std() / np.sqrt(len(excess)):
                    weights[column] = weight
                    break
        return weights

    def _interval_ratios(
        self, x: torch.Tensor, mask: torch.Tensor, sex: torch.Tensor, seed: int
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per sex state (female, male, sex hidden), the answers' ratios and hidden flags [answers, features]
        and question kinds [answers].

        A ratio is |error| / (1.645 * stddev); it counts only where the measurement was hidden.
        """
        ratios = []
        for row, sex_condition in enumerate([sex, sex, torch.zeros_like(sex)]):
            members = sex[:, row].bool() if row < len(SEXES) else torch.ones(x.shape[0], dtype=torch.bool)
            mean, gaussian_mean, stddev = self._predict_standardized(
                x[members], mask[members], sex_condition[members], seed + 3
            )
            mean = self._blend(mean, gaussian_mean)
            ratio = ((x[members] - mean).abs() / (Z_90 * stddev)).numpy()
            hidden = (mask[members] == 0).numpy()
            ratios.append((ratio, hidden, question_kinds(~hidden)))
        return ratios

    # Inference ----------------------------------------------------------------------------------

    def _condition(self, observed: dict[str, float], sex: str | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Validated, standardized (x, mask, sex one-hot) tensors for one subject."""
        _check_sex(sex)
        x = np.zeros(len(NAMES))
        mask = np.zeros(len(NAMES))
        for name, value in observed.items():
            if name not in BY_NAME:
                raise InvalidArgument(f"unknown measurement {name!r}; known: {', '.join(NAMES)}")
            if not math.isfinite(value):
                raise InvalidArgument(f"measurement {name} must be a finite number")
            index = NAMES.index(name)
            x[index] = (value - self.mean[index]) / self.scale[index]
            mask[index] = 1.0
        return (
            torch.as_tensor(x, dtype=torch.float32).unsqueeze(0),
            torch.as_tensor(mask, dtype=torch.float32).unsqueeze(0),
            _sex_one_hot([sex]),
        )

    def _interval_scale_rows(self, sexes: list[str | None], mask: np.ndarray) -> np.ndarray:
        """Calibration factors [n, features] for each row's sex state and question kind."""
        states = [UNKNOWN_SEX_ROW if sex is None else SEXES.index(sex) for sex in sexes]
        return self.interval_scale[question_kinds(np.asarray(mask) > 0), states]

    def predict_arrays(
        self, values: np.ndarray, mask: np.ndarray, sexes: list[str | None]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Batch inference: predictive mean and calibrated stddev [n, features] in measurement units.

        ``values`` [n, features] in measurement units (ignored where ``mask`` is 0). Observed entries
        echo the given value with stddev 0.
        """
        # Unobserved entries may hold anything (even NaN); the model must only see zeros there.
        standardized = np.where(mask > 0, (values - self.mean) / self.scale, 0.0)
        x = torch.as_tensor(standardized, dtype=torch.float32)
        mask_tensor = torch.as_tensor(mask, dtype=torch.float32)
        mean, stddev = self._predict_mean_stddev(x, mask_tensor, _sex_one_hot(sexes))
        factors = self._interval_scale_rows(sexes, mask)
        mean_units = mean.double().numpy() * self.scale + self.mean
        stddev_units = stddev.double().numpy() * self.scale * factors
        observed = mask.astype(bool)
        return np.where(observed, values, mean_units), np.where(observed, 0.0, stddev_units)

    def _predict_mean_stddev(
        self, x: torch.Tensor, mask: torch.Tensor, sex: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Standardized prediction: Gaussian conditional plus the weighted CVAE correction, and stddev."""
        mean, gaussian_mean, stddev = self._predict_standardized(x, mask, sex, self.config.inference_seed)
        return self._blend(mean, gaussian_mean), stddev

    def _blend(self, cvae_mean: torch.Tensor, gaussian_mean: torch.Tensor) -> torch.Tensor:
        """The served mean: the Gaussian conditional plus ``correction_weight`` of the CVAE's correction to it."""
        weight = torch.as_tensor(self.correction_weight, dtype=torch.float32)
        return gaussian_mean + weight * (cvae_mean - gaussian_mean)

    def infer(self, observed: dict[str, float], sex: str | None) -> dict[str, Estimate]:
        """Every measurement given the observed ones: value, stddev and 90% interval.

        Observed measurements echo their value with stddev 0. Deterministic for a given input.
        """
        x, mask, _ = self._condition(observed, sex)
        values = x.double().numpy() * self.scale + self.mean
        for name, value in observed.items():
            values[0, NAMES.index(name)] = value
        mean, stddev = self.predict_arrays(values, mask.numpy(), [sex])
        estimates = {}
        for index, name in enumerate(NAMES):
            value, spread = float(mean[0, index]), float(stddev[0, index])
            estimates[name] = Estimate(
                value=value,
                stddev=spread,
                lower_90=value - Z_90 * spread,
                upper_90=value + Z_90 * spread,
                observed=name in observed,
            )
        return estimates

    def posterior_samples(self, observed: dict[str, float], sex: str | None, count: int, seed: int) -> np.ndarray:
        """``count`` plausible full bodies [count, features] in measurement units given the observed ones.

        Each draw takes z from the prior network and x from the decoder; its deviation from the
        predictive mean is scaled by the calibration factor so the samples agree with infer()'s
        intervals. Observed measurements keep their given value.
        """
        if count < 1:
            raise InvalidArgument(f"count must be at least 1, got {count}")
        x, mask, sex_one_hot = self._condition(observed, sex)
        cvae_mean, gaussian_mean, _ = self._predict_standardized(x, mask, sex_one_hot, self.config.inference_seed)
        mean = self._blend(cvae_mean, gaussian_mean)
        generator = torch.Generator().manual_seed(seed)
        draws = self.cvae.sample_repeated(x, mask, sex_one_hot, count, generator)
        factors = torch.as_tensor(self._interval_scale_rows([sex], mask.numpy()), dtype=torch.float32)
        draws = mean + factors * (draws - cvae_mean)
        draws = torch.where(mask.bool(), x, draws)
        return draws.double().numpy() * self.scale + self.mean

    def latent(self, observed: dict[str, float], sex: str | None) -> np.ndarray:
        """The latent body code [latent_dim]: the prior network's mean given the observed measurements."""
        x, mask, sex_one_hot = self._condition(observed, sex)
        return self.cvae.latent(x, mask, sex_one_hot)[0].double().numpy()

    # Sampling -----------------------------------------------------------------------------------

    def sample_arrays(
        self, count: int, seed: int, sex: str | None = None, generator: str = "vae"
    ) -> tuple[list[str], np.ndarray]:
        """``count`` new bodies as (sexes, values [count, features] in measurement units).

        With ``sex`` None each body's sex is drawn with the training population's share. The same
        seed gives the same bodies.
        """
        _check_sex(sex)
        if generator not in GENERATORS:
            raise InvalidArgument(f"generator must be one of {', '.join(GENERATORS)}, got {generator!r}")
        if count < 1:
            raise InvalidArgument(f"count must be at least 1, got {count}")
        torch_generator = torch.Generator().manual_seed(seed)
        if sex is None:
            is_female = torch.rand(count, generator=torch_generator) < self.female_share
            sexes = [SEXES[0] if female else SEXES[1] for female in is_female.tolist()]
        else:
            sexes = [sex] * count
        sex_one_hot = _sex_one_hot(sexes)
        if generator == "vae":
            empty = torch.zeros(count, len(NAMES))
            draws = self.cvae.sample_sequentially(empty, empty, sex_one_hot, torch_generator)
        else:
            draws = self.gan.sample(sex_one_hot, torch_generator)
        return sexes, draws.double().numpy() * self.scale + self.mean

    def sample(
        self, count: int, seed: int, sex: str | None = None, generator: str = "vae"
    ) -> list[tuple[str, dict[str, float]]]:
        """``count`` new bodies as (sex, {measurement: value}); reproducible per seed."""
        sexes, values = self.sample_arrays(count, seed, sex, generator)
        return [(body_sex, dict(zip(NAMES, row.tolist()))) for body_sex, row in zip(sexes, values)]

    # Persistence --------------------------------------------------------------------------------

    def save(self, directory: str | pathlib.Path) -> None:
        """Write the config and statistics (JSON) and both state_dicts; each file replaced atomically."""
        directory = pathlib.Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        document = {
            "format_version": FORMAT_VERSION,
            "measurements": list(NAMES),
            "sexes": list(SEXES),
            "config": self.config.to_json(),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "interval_scale": self.interval_scale.tolist(),
            "correction_weight": self.correction_weight.tolist(),
            "female_share": self.female_share,
            "history": self.history,
        }
        atomic_write(directory / CONFIG_FILE, json.dumps(document, indent=1))
        atomic_write(directory / CVAE_FILE, lambda path: torch.save(self.cvae.state_dict(), path))
        atomic_write(directory / GAN_FILE, lambda path: torch.save(self.gan.state_dict(), path))

    @classmethod
    def load(cls, directory: str | pathlib.Path) -> BodyModel:
        """Read a model written by save(); fails if it was trained on other measurements."""
        directory = pathlib.Path(directory)
        document = json.loads((directory / CONFIG_FILE).read_text())
        if document.get("format_version") != FORMAT_VERSION:
            raise ModelFormatError(
                f"{directory} holds a body model of format {document.get('format_version')}, this version reads "
                f"format {FORMAT_VERSION}; delete the folder to train a new one"
            )
        if document["measurements"] != list(NAMES) or document["sexes"] != list(SEXES):
            raise ValueError(f"{directory} holds a body model for other measurements or sexes")
        config = BodyModelConfig.from_json(document["config"])
        cvae = MaskedCVAE(config.cvae)
        cvae.load_state_dict(torch.load(directory / CVAE_FILE, weights_only=True))
        gan = ConditionalWGAN(config.gan)
        gan.load_state_dict(torch.load(directory / GAN_FILE, weights_only=True))
        return cls(
            config,
            cvae,
            gan,
            np.array(document["mean"]),
            np.array(document["scale"]),
            np.array(document["interval_scale"]),
            document["female_share"],
            document["history"],
            np.array(document["correction_weight"]),
        )


_ASKED_REQUIRED = np.isin(np.array(NAMES), REQUIRED)
_ASKED_WITH_CIRCUMFERENCES = _ASKED_REQUIRED | np.isin(np.array(NAMES), SHOPPER_CIRCUMFERENCES)


def question_kinds(observed: np.ndarray) -> np.ndarray:
    """Index into QUESTION_KINDS of each row of ``observed`` [n, features] (True where given)."""
    kinds = np.full(len(observed), QUESTION_KINDS.index("other"))
    kinds[(observed == _ASKED_WITH_CIRCUMFERENCES).all(axis=1)] = QUESTION_KINDS.index("required+circumferences")
    kinds[(observed == _ASKED_REQUIRED).all(axis=1)] = QUESTION_KINDS.index("required")
    return kinds


def _interval_scales(answers: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]]) -> np.ndarray:
    """Per question kind, sex state and measurement, the factor on the predictive stddev giving 90% coverage.

    ``answers`` holds ``_interval_ratios`` of several groups of subjects; the factor is the 90th
    percentile of the pooled ratios where the measurement was hidden. A cell with fewer than
    MIN_CALIBRATION_ANSWERS answers takes the factor of all kinds together (1 if that is short too).
    """
    factors = np.ones((len(QUESTION_KINDS), len(SEXES) + 1, len(NAMES)))
    for row in range(len(SEXES) + 1):
        ratio = np.concatenate([group[row][0] for group in answers])
        hidden = np.concatenate([group[row][1] for group in answers])
        kinds = np.concatenate([group[row][2] for group in answers])
        for column in range(len(NAMES)):
            pooled = ratio[hidden[:, column], column]
            fallback = float(np.quantile(pooled, 0.9)) if len(pooled) >= MIN_CALIBRATION_ANSWERS else 1.0
            for kind in range(len(QUESTION_KINDS)):
                cell = ratio[hidden[:, column] & (kinds == kind), column]
                factors[kind, row, column] = (
                    float(np.quantile(cell, 0.9)) if len(cell) >= MIN_CALIBRATION_ANSWERS else fallback
                )
    return factors


def _check_frame(frame: pd.DataFrame) -> None:
    """Raise ValueError unless the frame has a valid sex column and every measurement."""
    missing = [name for name in ("sex", *NAMES) if name not in frame.columns]
    if missing:
        raise ValueError(f"training frame lacks columns {missing}")
    if not frame["sex"].isin(SEXES).all():
        raise ValueError(f"training frame's sex column must hold only {SEXES}")
    if len(frame) < 2:
        raise ValueError("training frame needs at least two subjects")
