"""The try-on renderer on hand-made body pictures and real Fashion-MNIST garments."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tryon.services.garment.categories import label_from_name
from tryon.services.garment.dataset import load_fashion_mnist
from tryon.services.garment.tryon_render import (
    BodyPicture,
    GarmentLayer,
    decode_rgba_png,
    encode_rgba_png,
    garment_colour,
    render_try_on,
)
from tryon.shared.errors import FailedPrecondition

WIDTH, HEIGHT = 256, 512


def hand_made_body(half_shoulders: float = 40.0, half_hips: float = 30.0) -> BodyPicture:
    """A front-view figure: head, torso, arms apart from the torso, legs; keypoints where they are drawn."""
    picture = Image.new("RGBA", (WIDTH, HEIGHT), (0, 0, 0, 0))
    draw = ImageDraw.Draw(picture)
    grey = (150, 150, 150, 255)
    cx = WIDTH / 2
    draw.ellipse([cx - 18, 20, cx + 18, 70], fill=grey)
    draw.polygon(
        [(cx - half_shoulders, 85), (cx + half_shoulders, 85), (cx + half_hips, 250), (cx - half_hips, 250)], fill=grey
    )
    draw.rectangle([cx - half_shoulders - 14, 90, cx - half_shoulders - 4, 250], fill=grey)
    draw.rectangle([cx + half_shoulders + 4, 90, cx + half_shoulders + 14, 250], fill=grey)
    draw.rectangle([cx - half_hips, 250, cx - 3, 460], fill=grey)
    draw.rectangle([cx + 3, 250, cx + half_hips, 460], fill=grey)
    keypoints = {
        "neck": (cx, 80.0),
        "left_shoulder": (cx + half_shoulders, 88.0),
        "right_shoulder": (cx - half_shoulders, 88.0),
        "chest": (cx, 120.0),
        "waist": (cx, 190.0),
        "hips": (cx, 240.0),
        "left_knee": (cx + half_hips / 2, 350.0),
        "right_knee": (cx - half_hips / 2, 350.0),
        "left_ankle": (cx + half_hips / 2, 450.0),
        "right_ankle": (cx - half_hips / 2, 450.0),
    }
    return BodyPicture(rgba=np.asarray(picture).copy(), keypoints=keypoints, mm_per_pixel=1750.0 / 440.0)


@pytest.fixture(scope="module")
def garments() -> dict[str, np.ndarray]:
    """The first test image of each category, as levels in [0, 1]."""
    images, labels = load_fashion_mnist("test")
    return {name: images[np.flatnonzero(labels == label_from_name(name))[0]] / 255.0 for name in ("t_shirt_top", "trouser", "dress", "sneaker", "bag")}


def layer(garments: dict[str, np.ndarray], name: str) -> GarmentLayer:
    return GarmentLayer(levels=garments[name], category=label_from_name(name), colour=garment_colour(name))


def changed_rows(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Rows where any pixel changed noticeably."""
    difference = np.abs(after.astype(int) - before.astype(int)).max(axis=2)
    return np.flatnonzero((difference > 30).any(axis=1))


def test_top_changes_the_torso_and_not_the_legs(garments: dict[str, np.ndarray]) -> None:
    body = hand_made_body()
    dressed = render_try_on(body, [layer(garments, "t_shirt_top")])
    rows = changed_rows(body.rgba, dressed)
    assert rows.size > 100
    assert rows.min() >= 75 and rows.max() <= 265
    torso = dressed[120:200, 118:138]
    assert np.abs(torso.astype(int) - body.rgba[120:200, 118:138].astype(int)).mean() > 20


def test_trousers_change_the_leg_rows(garments: dict[str, np.ndarray]) -> None:
    body = hand_made_body()
    dressed = render_try_on(body, [layer(garments, "trouser")])
    rows = changed_rows(body.rgba, dressed)
    assert rows.min() >= 185
    assert rows.max() >= 400
    assert np.abs(dressed[300:420].astype(int) - body.rgba[300:420].astype(int)).max() > 30
    np.testing.assert_array_equal(dressed[:150], body.rgba[:150])


def test_shoes_sit_at_the_ankles_and_the_bag_beside_the_body(garments: dict[str, np.ndarray]) -> None:
    body = hand_made_body()
    shod = render_try_on(body, [layer(garments, "sneaker")])
    rows = changed_rows(body.rgba, shod)
    assert rows.min() >= 400 and rows.max() <= 480
    with_bag = render_try_on(body, [layer(garments, "bag")])
    columns = np.flatnonzero((np.abs(with_bag.astype(int) - body.rgba.astype(int)).max(axis=2) > 30).any(axis=0))
    assert columns.min() > WIDTH / 2 + 40  # beside the body, not on it


def test_dress_reaches_below_the_hips(garments: dict[str, np.ndarray]) -> None:
    body = hand_made_body()
    rows = changed_rows(body.rgba, render_try_on(body, [layer(garments, "dress")]))
    assert rows.min() < 100 and rows.max() > 280


def test_the_picture_follows_the_body_width(garments: dict[str, np.ndarray]) -> None:
    narrow, wide = hand_made_body(32, 24), hand_made_body(52, 42)
    top = [layer(garments, "t_shirt_top")]

    def covered_columns(body: BodyPicture) -> int:
        dressed = render_try_on(body, top)
        difference = np.abs(dressed.astype(int) - body.rgba.astype(int)).max(axis=2)
        return int((difference[150] > 30).sum() + (dressed[150, :, 3] > 0).sum())

    assert covered_columns(wide) > covered_columns(narrow) + 20


def test_later_garments_are_drawn_on_top(garments: dict[str, np.ndarray]) -> None:
    body = hand_made_body()
    top, dress = layer(garments, "t_shirt_top"), layer(garments, "dress")
    top_last = render_try_on(body, [dress, top])
    dress_last = render_try_on(body, [top, dress])
    assert not np.array_equal(top_last[140:180], dress_last[140:180])


def test_png_round_trip() -> None:
    body = hand_made_body()
    np.testing.assert_array_equal(decode_rgba_png(encode_rgba_png(body.rgba)), body.rgba)


def test_missing_keypoints_are_named(garments: dict[str, np.ndarray]) -> None:
    body = hand_made_body()
    partial = BodyPicture(body.rgba, {k: v for k, v in body.keypoints.items() if k != "waist"}, body.mm_per_pixel)
    with pytest.raises(FailedPrecondition, match="waist"):
        render_try_on(partial, [layer(garments, "trouser")])


def test_colour_is_stable_per_garment() -> None:
    assert garment_colour("abc") == garment_colour("abc")
    assert len({garment_colour(str(i)) for i in range(50)}) > 5
