"""Recommendation fixtures: a tiny configuration of every servable family, so serving tests run on each."""

from __future__ import annotations

import pytest

from tryon.services.recommendation.cfgan import CFGANConfig
from tryon.services.recommendation.multvae import MultVAEConfig
from tryon.services.recommendation.recvae import RecVAEConfig
from tryon.services.recommendation.train import SERVING_FAMILY

TINY_FAMILY_CONFIGS = {
    "Mult-VAE": MultVAEConfig(hidden_dims=(16,), latent_dim=4, epochs=2, batch_size=64),
    "RecVAE": RecVAEConfig(hidden_dim=16, encoder_layers=2, latent_dim=4, epochs=2, batch_size=64),
    "CFGAN": CFGANConfig(hidden_dim=16, discriminator_hidden_dim=16, epochs=2, batch_size=64),
}


@pytest.fixture(scope="session", params=list(TINY_FAMILY_CONFIGS))
def family_config(request):
    """A configuration of each servable family (Mult-VAE, RecVAE, CFGAN), small enough to train in well under a second."""
    return TINY_FAMILY_CONFIGS[request.param]


@pytest.fixture(scope="session")
def served_family_config():
    """The tiny configuration of the family the service serves (``train.SERVING_FAMILY``)."""
    return TINY_FAMILY_CONFIGS[SERVING_FAMILY.name]
