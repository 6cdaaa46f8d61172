"""The shop the storefront's integration and browser tests share: broker, three services, catalogue, storefront.

Started once per session on loopback, BodyService and GarmentService from their shipped weights
(seconds), the recommender trained on the live catalogue so that every garment it picks is one
the catalogue can show.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tryon.services.storefront.up import register_catalogue, start_recommender, start_storefront
from tryon.services.weights import shipped_weights_problems
from tryon.shared.launcher import LocalSuite

SHOP_SETTINGS = {"TRYON_BODY_ADVICE_SAMPLES": "400"}
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
    problems = shipped_weights_problems(("body", "garment"))
    assert not problems, "a service would train at start instead of copying its shipped weights: " + "; ".join(problems)
    with LocalSuite(data_dir, services=("body", "garment"), extra_env=SHOP_SETTINGS, startup_timeout_s=600) as suite:
        garment_ids = register_catalogue(suite.address("garment"), per_category=CATALOGUE_PER_CATEGORY)
        start_recommender(suite, shoppers=200, epochs=10)
        storefront, url = start_storefront(suite)
        try:
            yield Shop(suite, url, garment_ids)
        finally:
            storefront.stop(suite.grace_s)
