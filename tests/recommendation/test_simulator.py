"""The shopper simulator and the catalogue tables it works on."""

from __future__ import annotations

import numpy as np
import pytest

from tryon.services.recommendation.catalogue import Catalogue, synthetic_catalogue
from tryon.services.recommendation.simulator import INTERACTION_COLUMNS, ShopperSimulator


@pytest.fixture(scope="module")
def catalogue():
    return synthetic_catalogue(400, latent_dim=8, seed=3)


def test_shoppers_view_their_preferred_categories_more(catalogue):
    simulator = ShopperSimulator(catalogue, seed=1)
    shopper = simulator.make_shopper("ann")
    table = simulator.interactions_table([shopper], views_per_shopper=2000)
    views = table[table["type"] == "VIEW"]
    viewed_categories = catalogue.categories[[catalogue.position[g] for g in views["garment_id"]]]
    favourite = int(np.argmax(shopper.category_preferences))
    least = int(np.argmin(shopper.category_preferences))
    assert (viewed_categories == favourite).sum() > 3 * (viewed_categories == least).sum()


def test_funnel_rates_are_plausible_and_ordered(catalogue):
    simulator = ShopperSimulator(catalogue, seed=2)
    table = simulator.interactions_table(simulator.make_shoppers(200), views_per_shopper=30)
    assert list(table.columns) == list(INTERACTION_COLUMNS)
    counts = table["type"].value_counts()
    assert counts["VIEW"] == 200 * 30
    assert counts["VIEW"] > counts["TRY_ON"] > counts["ADD_TO_CART"] > counts["PURCHASE"] > counts["RETURN"] > 0
    assert 0.05 < counts["RETURN"] / counts["PURCHASE"] < 0.4
    assert table["occurred_at"].is_monotonic_increasing


def test_same_seed_same_table(catalogue):
    first = ShopperSimulator(catalogue, seed=5)
    second = ShopperSimulator(catalogue, seed=5)
    assert first.interactions_table(first.make_shoppers(5), 10).equals(second.interactions_table(second.make_shoppers(5), 10))


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".csv.gz"])
def test_catalogue_round_trips_through_files(tmp_path, catalogue, suffix):
    path = tmp_path / f"catalogue{suffix}"
    catalogue.save(path)
    loaded = Catalogue.load(path)
    assert loaded.garment_ids == catalogue.garment_ids
    assert np.array_equal(loaded.categories, catalogue.categories)
    np.testing.assert_allclose(loaded.latents, catalogue.latents, rtol=1e-6)
    assert loaded[catalogue.garment_ids[0]].price_minor == catalogue.garments[0].price_minor


def test_command_writes_tables_the_train_command_reads(tmp_path):
    from tryon.services.recommendation.simulator import main
    from tryon.services.recommendation.train import read_interactions

    main(["--out", str(tmp_path), "--garments", "50", "--shoppers", "5", "--views", "4"])
    assert len(Catalogue.load(tmp_path / "catalogue.parquet")) == 50
    assert (read_interactions(tmp_path / "interactions.parquet")["type"] == "VIEW").sum() == 20
