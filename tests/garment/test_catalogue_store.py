"""The catalogue's SQLite store and original pictures: durability, migration from Parquet, removal."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tryon.services.garment import images
from tryon.services.garment.catalogue import (
    CATALOGUE_DB,
    LEGACY_CATALOGUE_FILE,
    MIGRATED_SUFFIX,
    Catalogue,
    CatalogueUnreadable,
    Garment,
    encode_page_token,
    new_garment_id,
)
from tryon.services.garment.image_store import FileImageStore, MemoryImageStore
from tryon.shared.errors import InvalidArgument, NotFound, Unavailable


def _garment(category: int = 0, seed: int = 0) -> Garment:
    levels = np.zeros((28, 28), np.float32)
    levels[4 + seed % 3 : 24, 8:20] = 0.9
    return Garment(
        garment_id=new_garment_id(),
        name=f"tee {seed}",
        category=category,
        currency_code="EUR",
        amount_minor=100 + seed,
        size_chart=None,
        content_latent=np.random.default_rng(seed).normal(size=8).astype(np.float32),
        image_png=images.encode_png(levels),
    )


def _photo(width: int = 300, height: int = 400, file_format: str = "PNG") -> bytes:
    """A red garment-like block on a white background."""
    picture = Image.new("RGB", (width, height), (255, 255, 255))
    picture.paste((200, 30, 40), (width // 4, height // 5, 3 * width // 4, 4 * height // 5))
    buffer = io.BytesIO()
    picture.save(buffer, format=file_format)
    return buffer.getvalue()


@pytest.mark.parametrize("store", [FileImageStore, MemoryImageStore])
def test_image_store_puts_replaces_gets_and_deletes(store, tmp_path: Path) -> None:
    pictures = store(tmp_path) if store is FileImageStore else store()
    odd_id = "a/../b\u00e9" + "x" * 250
    pictures.put(odd_id, b"first")
    pictures.put(odd_id, b"second")
    assert pictures.get(odd_id) == b"second"
    pictures.delete(odd_id)
    pictures.delete(odd_id)
    with pytest.raises(NotFound, match="no original picture"):
        pictures.get(odd_id)


def test_original_picture_survives_reopening_as_sent(tmp_path: Path) -> None:
    photo = _photo(file_format="JPEG")
    garment = Catalogue(tmp_path).add(_garment(), original=photo)
    reopened = Catalogue(tmp_path)
    assert reopened.get(garment.garment_id).has_original_image
    assert reopened.original_bytes(garment.garment_id) == photo
    picture = reopened.original_image(garment.garment_id)
    assert picture.mode == "RGBA" and picture.size == (300, 400)
    red, green, _, alpha = picture.getpixel((150, 200))
    assert red > 150 and green < 80 and alpha == 255


def test_cut_out_makes_the_background_transparent_and_keeps_the_garment(tmp_path: Path) -> None:
    catalogue = Catalogue(tmp_path)
    garment = catalogue.add(_garment(), original=_photo())
    cut = images.cut_out(catalogue.original_image(garment.garment_id))
    assert cut.getpixel((5, 5))[3] == 0
    assert cut.getpixel((150, 200)) == (200, 30, 40, 255)


def test_a_refused_duplicate_keeps_the_first_picture(tmp_path: Path) -> None:
    catalogue = Catalogue(tmp_path)
    garment = catalogue.add(_garment(), original=_photo(100, 100))
    with pytest.raises(InvalidArgument, match="already registered"):
        catalogue.add(garment, original=_photo(50, 50))
    assert Image.open(io.BytesIO(catalogue.original_bytes(garment.garment_id))).size == (100, 100)
    assert len(catalogue) == 1


def test_add_many_is_all_or_nothing(tmp_path: Path) -> None:
    catalogue = Catalogue(tmp_path)
    kept = catalogue.add(_garment(seed=1), original=_photo())
    fresh = _garment(seed=2)
    with pytest.raises(InvalidArgument, match="already registered"):
        catalogue.add_many([(fresh, _photo()), (kept, None)])
    with pytest.raises(NotFound):
        catalogue.get(fresh.garment_id)
    with pytest.raises(NotFound):
        catalogue.original_bytes(fresh.garment_id)
    assert len(Catalogue(tmp_path)) == 1


def test_removed_garment_and_its_picture_are_gone_and_the_id_can_be_registered_again(tmp_path: Path) -> None:
    catalogue = Catalogue(tmp_path)
    first, second = _garment(seed=1), _garment(seed=2)
    catalogue.add(first, original=_photo())
    catalogue.add(second, original=_photo())
    catalogue.remove(first.garment_id)
    with pytest.raises(NotFound, match=first.garment_id):
        catalogue.get(first.garment_id)
    with pytest.raises(NotFound):
        catalogue.remove(first.garment_id)
    assert not FileImageStore(tmp_path / "images").path_of(first.garment_id).exists()
    catalogue.add(first, original=_photo(64, 64))
    reopened = Catalogue(tmp_path)
    assert len(reopened) == 2
    page, _ = reopened.list(page_size=10)
    assert [g.garment_id for g in page] == [second.garment_id, first.garment_id]
    assert Image.open(io.BytesIO(reopened.original_bytes(first.garment_id))).size == (64, 64)


def _legacy_parquet(folder: Path, garments: list[Garment]) -> None:
    """A catalogue as the Parquet store wrote it (one row per garment, latents as lists)."""
    frame = pd.DataFrame(
        [
            {
                "garment_id": g.garment_id, "name": g.name, "category": g.category,
                "currency_code": g.currency_code, "amount_minor": g.amount_minor,
                "size_chart_json": json.dumps(g.size_chart) if g.size_chart else None,
                "content_latent": g.content_latent.tolist(), "image_png": g.image_png,
                "create_time": g.create_time.isoformat(),
            }
            for g in garments
        ]
    )
    frame.to_parquet(folder / LEGACY_CATALOGUE_FILE, index=False)


def test_a_parquet_catalogue_is_migrated_once_keeping_order_latents_and_page_tokens(tmp_path: Path) -> None:
    garments = [_garment(category=i % 2, seed=i) for i in range(7)]
    garments[3] = replace(garments[3], size_chart={"chart_id": "eu_womens_tops", "sizes": []})
    _legacy_parquet(tmp_path, garments)
    catalogue = Catalogue(tmp_path)
    assert (tmp_path / CATALOGUE_DB).exists()
    assert not (tmp_path / LEGACY_CATALOGUE_FILE).exists()
    assert (tmp_path / (LEGACY_CATALOGUE_FILE + MIGRATED_SUFFIX)).exists()
    page, token = catalogue.list(page_size=4)
    assert [g.garment_id for g in page] == [g.garment_id for g in garments[:4]]
    # A token the Parquet catalogue handed out (position 4, no filter) goes on where it stopped.
    assert token == encode_page_token(4, [])
    migrated = catalogue.get(garments[3].garment_id)
    assert migrated.size_chart == {"chart_id": "eu_womens_tops", "sizes": []}
    assert migrated.create_time == garments[3].create_time
    np.testing.assert_array_equal(migrated.content_latent, garments[3].content_latent)
    assert not migrated.has_original_image
    # Without an original, the 28 x 28 picture stands in: a dark garment on white.
    stand_in = np.asarray(catalogue.original_image(garments[0].garment_id).convert("L"))
    assert stand_in.shape == (28, 28) and stand_in[0, 0] == 255 and stand_in[14, 14] < 40
    added = catalogue.add(_garment(seed=9), original=_photo())
    # A Parquet file put back beside a migrated catalogue is not migrated again.
    _legacy_parquet(tmp_path, garments)
    reopened = Catalogue(tmp_path)
    assert len(reopened) == 8
    assert reopened.list(page_size=10)[0][-1].garment_id == added.garment_id


def test_closing_folds_the_log_into_the_file_and_later_calls_say_the_service_is_stopping(tmp_path: Path) -> None:
    catalogue = Catalogue(tmp_path)
    garment = catalogue.add(_garment(), original=_photo())
    assert (tmp_path / f"{CATALOGUE_DB}-wal").exists()
    catalogue.close()
    catalogue.close()
    assert sorted(path.name for path in tmp_path.iterdir()) == [CATALOGUE_DB, "images"]
    for call in (
        lambda: catalogue.get(garment.garment_id),
        lambda: catalogue.list(),
        lambda: catalogue.add(_garment(seed=1)),
        lambda: catalogue.remove(garment.garment_id),
        lambda: catalogue.original_bytes(garment.garment_id),
    ):
        with pytest.raises(Unavailable, match="shutting down; retry"):
            call()
    assert Catalogue(tmp_path).get(garment.garment_id).has_original_image


def test_a_damaged_database_is_named_with_what_to_do(tmp_path: Path) -> None:
    (tmp_path / CATALOGUE_DB).write_bytes(b"not a database: " + bytes(range(256)) * 8)
    with pytest.raises(CatalogueUnreadable, match=f"{tmp_path / CATALOGUE_DB} cannot be read .*restore it from a backup"):
        Catalogue(tmp_path)
