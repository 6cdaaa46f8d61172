"""The shop the storefront's integration and browser tests share: broker, three services, catalogue, storefront.

Started once per session on loopback with models trained for seconds (quality is not what
these tests check), the recommender trained on the live catalogue so that every garment it
picks is one the catalogue can show.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tryon.services.storefront.up import register_catalogue, start_recommender, start_storefront
from tryon.shared.launcher import LocalSuite

TINY_TRAINING = {
    "TRYON_BODY_TRAIN_EPOCHS": "2",
    "TRYON_BODY_GAN_EPOCHS": "1",
    "TRYON_BODY_ADVICE_SAMPLES": "400",
    "TRYON_GARMENT_TRAIN_EPOCHS": "1",
    "TRYON_GARMENT_TRAIN_IMAGES": "600",
}
CATALOGUE_PER_CATEGORY = 6


@dataclass
class Shop:
    """A running shop: the suite, the storefront's URL and the registered garment ids."""

    suite: LocalSuite
    url: str
    garment_ids: list[str]


@pytest.fixture(scope="session")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """The suite with a small catalogue and the storefront in front of it."""
    data_dir = tmp_path_factory.mktemp("shop")
    with LocalSuite(data_dir, services=("body", "garment"), extra_env=TINY_TRAINING, startup_timeout_s=600) as suite:
        garment_ids = register_catalogue(suite.address("garment"), per_category=CATALOGUE_PER_CATEGORY)
        start_recommender(suite, shoppers=200, epochs=10)
        storefront, url = start_storefront(suite)
        try:
            yield Shop(suite, url, garment_ids)
        finally:
            storefront.stop(suite.grace_s)
