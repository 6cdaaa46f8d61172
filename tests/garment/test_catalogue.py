"""The garment catalogue: persistence, lookup and stable paging."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tryon.services.garment.catalogue import Catalogue, Garment, encode_page_token, new_garment_id
from tryon.shared.errors import InvalidArgument, NotFound


def _garment(category: int, name: str = "plain tee", seed: int = 0) -> Garment:
    return Garment(
        garment_id=new_garment_id(),
        name=name,
        category=category,
        currency_code="EUR",
        amount_minor=1999,
        size_chart={"chart_id": "", "sizes": [{"label": "M", "ranges": [{"measurement": "chest_circumference", "min": 900.0, "max": 1000.0}]}]},
        content_latent=np.random.default_rng(seed).normal(size=8).astype(np.float32),
        image_png=b"\x89PNG fake " + bytes([seed % 256]),
    )


def test_added_garment_survives_reopening(tmp_path: Path) -> None:
    catalogue = Catalogue(tmp_path)
    garment = _garment(category=3)
    catalogue.add(garment)
    reopened = Catalogue(tmp_path).get(garment.garment_id)
    assert reopened.name == garment.name
    assert reopened.category == 3
    assert reopened.amount_minor == 1999
    assert reopened.size_chart == garment.size_chart
    assert reopened.image_png == garment.image_png
    assert reopened.create_time == garment.create_time
    np.testing.assert_array_equal(reopened.content_latent, garment.content_latent)
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".catalogue-")]


def test_unknown_id_is_not_found_and_names_the_id(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no-such-id"):
        Catalogue(tmp_path).get("no-such-id")


def test_duplicate_id_is_refused() -> None:
    catalogue = Catalogue(None)
    garment = _garment(0)
    catalogue.add(garment)
    with pytest.raises(InvalidArgument, match="already registered"):
        catalogue.add(garment)


def test_paging_visits_every_garment_once_in_registration_order() -> None:
    catalogue = Catalogue(None)
    garments = [_garment(i % 3, seed=i) for i in range(11)]
    for garment in garments:
        catalogue.add(garment)
    seen, token = [], ""
    while True:
        page, token = catalogue.list(page_size=4, page_token=token)
        seen.extend(g.garment_id for g in page)
        if not token:
            break
    assert seen == [g.garment_id for g in garments]


def test_filtered_pages_are_stable_while_garments_are_added() -> None:
    catalogue = Catalogue(None)
    for i in range(6):
        catalogue.add(_garment(i % 2, seed=i))
    first, token = catalogue.list(page_size=2, categories=[1])
    assert [g.category for g in first] == [1, 1]
    catalogue.add(_garment(1, seed=100))
    catalogue.add(_garment(0, seed=101))
    second, token = catalogue.list(page_size=2, page_token=token, categories=[1])
    ids = [g.garment_id for g in first + second]
    assert len(set(ids)) == 4
    assert token == ""
    assert all(g.category == 1 for g in second)


@pytest.mark.parametrize("token", ["garbage", "!!!", encode_page_token(-1, [])[:-2] + "xx"])
def test_foreign_page_token_is_invalid_argument(token: str) -> None:
    with pytest.raises(InvalidArgument, match="page_token"):
        Catalogue(None).list(page_token=token)


def test_page_token_of_another_filter_is_refused() -> None:
    catalogue = Catalogue(None)
    for i in range(3):
        catalogue.add(_garment(0, seed=i))
    _, token = catalogue.list(page_size=1, categories=[0])
    with pytest.raises(InvalidArgument, match="categories"):
        catalogue.list(page_size=1, page_token=token, categories=[1])


@pytest.mark.parametrize("size", [-1, 1001])
def test_page_size_out_of_range(size: int) -> None:
    with pytest.raises(InvalidArgument, match="page_size"):
        Catalogue(None).list(page_size=size)
