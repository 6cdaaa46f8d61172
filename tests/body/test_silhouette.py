"""The silhouette's proportions, measured on the rendered picture, follow the measurements."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tryon.services.body.silhouette import picture_size, render_silhouette
from tryon.shared.errors import InvalidArgument

# Two bodies near the ANSUR II male and female means, in mm (weight in kg).
MALE = dict(
    stature=1756, weight=85, chest_circumference=1030, waist_circumference=940, hip_circumference=1030,
    neck_circumference=390, shoulder_breadth=405, shoulder_width=500, sleeve_length=900, inseam=840,
    thigh_circumference=620, calf_circumference=390, ankle_circumference=230, bicep_circumference=350,
    wrist_circumference=175, chest_breadth=320, waist_breadth=320, hip_breadth=350, shoulder_height=1440,
    neck_height=1500, waist_height=1060, knee_height=510,
)
FEMALE = dict(
    stature=1628, weight=68, chest_circumference=940, waist_circumference=860, hip_circumference=1020,
    neck_circumference=330, shoulder_breadth=365, shoulder_width=430, sleeve_length=820, inseam=770,
    thigh_circumference=630, calf_circumference=370, ankle_circumference=220, bicep_circumference=300,
    wrist_circumference=150, chest_breadth=280, waist_breadth=300, hip_breadth=350, shoulder_height=1330,
    neck_height=1390, waist_height=1000, knee_height=470,
)
# Rasterising puts each edge within about half a pixel of its true place (4x supersampling,
# alpha threshold at one half); a width has two edges and a height two ends, so 2 pixels.
TOLERANCE_PIXELS = 2.0


def opaque_mask(png: bytes) -> np.ndarray:
    picture = Image.open(io.BytesIO(png))
    assert picture.mode == "RGBA"
    return np.asarray(picture)[:, :, 3] >= 128


def run_width(row: np.ndarray, column: int) -> int:
    """Width of the run of opaque pixels that contains ``column``."""
    assert row[column], "the midline must be opaque on this row"
    left = column
    while left > 0 and row[left - 1]:
        left -= 1
    right = column
    while right < row.size - 1 and row[right + 1]:
        right += 1
    return right - left + 1


@pytest.mark.parametrize("body", [MALE, FEMALE], ids=["male", "female"])
@pytest.mark.parametrize(("width", "height"), [(256, 512), (400, 1000)])
def test_widths_and_heights_on_the_picture_match_the_measurements(body, width, height):
    silhouette = render_silhouette(body, width, height)
    mask = opaque_mask(silhouette.png)
    assert mask.shape == (height, width)
    scale = silhouette.mm_per_pixel
    centre = width // 2
    for keypoint, breadth in (("chest", "chest_breadth"), ("waist", "waist_breadth"), ("hips", "hip_breadth")):
        row = int(silhouette.keypoints[keypoint][1])
        measured = run_width(mask[row], centre)
        assert measured == pytest.approx(body[breadth] / scale, abs=TOLERANCE_PIXELS), keypoint

    rows = np.flatnonzero(mask.any(axis=1))
    top, floor = rows[0], rows[-1] + 1
    assert floor - top == pytest.approx(body["stature"] / scale, abs=TOLERANCE_PIXELS)
    midline = np.flatnonzero(mask[:, centre])
    crotch_row = midline[-1] + 1
    assert floor - crotch_row == pytest.approx(body["inseam"] / scale, abs=TOLERANCE_PIXELS)
    for keypoint, height_name in (("left_knee", "knee_height"), ("waist", "waist_height"),
                                  ("left_shoulder", "shoulder_height")):
        assert floor - silhouette.keypoints[keypoint][1] == pytest.approx(
            body[height_name] / scale, abs=TOLERANCE_PIXELS
        ), keypoint
    shoulders = silhouette.keypoints["left_shoulder"][0] - silhouette.keypoints["right_shoulder"][0]
    assert shoulders == pytest.approx(body["shoulder_breadth"] / scale, abs=0.01)


def test_every_keypoint_lies_on_the_body_and_the_background_is_transparent():
    silhouette = render_silhouette(MALE)
    mask = opaque_mask(silhouette.png)
    expected = {"neck", "left_shoulder", "right_shoulder", "chest", "waist", "hips", "left_knee", "right_knee",
                "left_ankle", "right_ankle", "crotch", "left_wrist", "right_wrist", "left_foot", "right_foot"}
    assert expected <= set(silhouette.keypoints)
    for name, (x, y) in silhouette.keypoints.items():
        near = mask[max(int(y) - 2, 0): int(y) + 3, max(int(x) - 2, 0): int(x) + 3]
        assert near.any(), f"{name} is not on the body"
    assert silhouette.keypoints["left_shoulder"][0] > silhouette.keypoints["right_shoulder"][0]
    assert not mask[0].any() and not mask[-1].any() and not mask[:, 0].any() and not mask[:, -1].any()


def test_a_broader_body_is_drawn_broader_at_the_same_scale():
    broad = dict(MALE, chest_breadth=380, waist_breadth=400, hip_breadth=400)
    narrow = render_silhouette(MALE, 300, 600)
    wide = render_silhouette(broad, 300, 600)
    row = int(wide.keypoints["waist"][1])
    wide_waist = run_width(opaque_mask(wide.png)[row], 150) * wide.mm_per_pixel
    narrow_waist = run_width(opaque_mask(narrow.png)[int(narrow.keypoints["waist"][1])], 150) * narrow.mm_per_pixel
    assert wide_waist - narrow_waist == pytest.approx(80, abs=2 * TOLERANCE_PIXELS * wide.mm_per_pixel)


def test_picture_size_defaults_and_ranges():
    assert picture_size(0, 0) == (256, 512)
    assert picture_size(64, 4096) == (64, 4096)
    with pytest.raises(InvalidArgument, match="width must be 0 .* or 64-2048 pixels; got 63"):
        picture_size(63, 0)
    with pytest.raises(InvalidArgument, match="height must be 0 .* or 128-4096 pixels; got 5000"):
        picture_size(0, 5000)
    with pytest.raises(InvalidArgument, match="width"):
        picture_size(-5, 0)
