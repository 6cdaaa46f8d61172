"""Body fixtures: a small body model trained in seconds on a few hundred real ANSUR II subjects."""

import numpy as np
import pytest
import torch

from tryon.services.body.body_model import BodyModel, BodyModelConfig
from tryon.services.body.cvae import CVAEConfig
from tryon.services.body.dataset import load_subset
from tryon.services.body.gan import GANConfig
from tryon.services.body.measurements import NAMES, SEXES
from tryon.services.body.trainer import BodyTensors

TINY_CONFIG = BodyModelConfig(
    cvae=CVAEConfig(hidden=48, layers=2, latent_dim=4, batch_size=64, prediction_samples=16),
    gan=GANConfig(hidden=48, layers=2, batch_size=64),
)


@pytest.fixture(scope="session")
def tiny_body_frame():
    """400 real subjects of both sexes (a seeded sample of the committed subset)."""
    return load_subset().sample(n=400, random_state=7).reset_index(drop=True)


@pytest.fixture(scope="session")
def trained_body_model(tiny_body_frame):
    """A BodyModel trained for a few epochs: the right shapes and behaviour, not the right quality."""
    return BodyModel.train(tiny_body_frame, TINY_CONFIG, epochs=8, seed=0, progress=False, gan_epochs=4)


@pytest.fixture(scope="session")
def tiny_body_tensors(tiny_body_frame):
    """The tiny frame as standardized tensors, as the trainers read them."""
    values = tiny_body_frame[list(NAMES)].to_numpy(np.float32)
    x = (values - values.mean(axis=0)) / values.std(axis=0)
    sex = np.array([SEXES.index(sex) for sex in tiny_body_frame["sex"]])
    return BodyTensors(torch.from_numpy(x), torch.nn.functional.one_hot(torch.from_numpy(sex), len(SEXES)).float())
