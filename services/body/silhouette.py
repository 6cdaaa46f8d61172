"""Front-view body silhouette: a PNG drawn from the body's fitted 3D mesh, or from its measurements.

``render_mesh_silhouette`` projects the fitted mesh (``mesh.BodyMesh``) orthographically from the
front. ``render_silhouette`` draws the figure from the measurements alone, as described below; the
service uses it while the mesh model is still loading.

The body stands facing the viewer, arms slightly away from the torso. Heights come from
stature and the landmark heights (shoulder, neck, waist, crotch, knee); widths at the chest,
waist and hips are the measured front breadths, the shoulders span the biacromial breadth
and limbs are as thick as the diameter of their circumference. A few levels the catalogue
does not measure (chest level, hip level, ankle, head) follow common anthropometric
proportions of stature and the measured landmarks.

"left" and "right" are the body's own sides, so in this front view the body's left is on
the picture's right. The picture is drawn up to four times larger and reduced, for smooth edges.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from tryon.services.body.measurements import MEASUREMENTS
from tryon.services.body.mesh import BodyMesh
from tryon.shared.errors import InvalidArgument

MIN_WIDTH, MAX_WIDTH, DEFAULT_WIDTH = 64, 2048, 256
MIN_HEIGHT, MAX_HEIGHT, DEFAULT_HEIGHT = 128, 4096, 512
MAX_SUPERSAMPLING = 4
MESH_SUPERSAMPLING = 2
# Pixels of the enlarged drawing at most; large pictures are drawn less enlarged to bound memory.
SUPERSAMPLED_PIXEL_BUDGET = 4_000_000
MARGIN_SHARE = 0.04
BODY_COLOUR = (70, 90, 120, 255)

# Proportions of stature for levels the catalogue does not measure (Drillis & Contini, 1966).
HEAD_HEIGHT_SHARE = 0.130
HEAD_WIDTH_SHARE = 0.085
ANKLE_HEIGHT_SHARE = 0.039
HAND_LENGTH_SHARE = 0.108
FOOT_WIDTH_SHARE = 0.055
# Chest level lies about a third of the way from the shoulders down to the waist; the widest
# part of the hips about a third of the way from the crotch up to the waist.
CHEST_LEVEL_SHARE = 0.35
HIP_LEVEL_SHARE = 0.30
# Space kept between the hanging arms and the torso, and between the legs, as shares of stature.
ARM_CLEARANCE_SHARE = 0.012
LEG_GAP_SHARE = 0.008
UPPER_ARM_SHARE = 0.56


@dataclass(frozen=True)
class Silhouette:
    """A rendered silhouette: PNG bytes, keypoints in pixels (x, y) and the scale."""

    png: bytes
    keypoints: dict[str, tuple[float, float]]
    mm_per_pixel: float
    width: int
    height: int


def picture_size(width: int, height: int) -> tuple[int, int]:
    """The picture size a request asks for (0 means the default), or InvalidArgument."""
    width = width or DEFAULT_WIDTH
    height = height or DEFAULT_HEIGHT
    if not MIN_WIDTH <= width <= MAX_WIDTH:
        raise InvalidArgument(
            f"width must be 0 (default {DEFAULT_WIDTH}) or {MIN_WIDTH}-{MAX_WIDTH} pixels; got {width}"
        )
    if not MIN_HEIGHT <= height <= MAX_HEIGHT:
        raise InvalidArgument(
            f"height must be 0 (default {DEFAULT_HEIGHT}) or {MIN_HEIGHT}-{MAX_HEIGHT} pixels; got {height}"
        )
    return width, height


@dataclass(frozen=True)
class _Figure:
    """The body in millimetres: x from the body's midline (positive = body's left), y up from the floor."""

    polygons: list[list[tuple[float, float]]]
    ellipses: list[tuple[float, float, float, float]]  # centre x, centre y, half width, half height
    keypoints: dict[str, tuple[float, float]]
    half_span: float
    stature: float


def render_silhouette(measurements: dict[str, float], width: int = 0, height: int = 0) -> Silhouette:
    """Render a front-view silhouette of a body given every catalogue measurement (mm)."""
    width, height = picture_size(width, height)
    figure = _figure(_plausible(measurements))
    usable_width = width * (1 - 2 * MARGIN_SHARE)
    usable_height = height * (1 - 2 * MARGIN_SHARE)
    mm_per_pixel = max(figure.stature / usable_height, 2 * figure.half_span / usable_width)
    centre_x = width / 2
    floor_y = height / 2 + figure.stature / (2 * mm_per_pixel)

    def to_pixels(x_mm: float, y_mm: float) -> tuple[float, float]:
        # Positive x is the body's left, drawn on the picture's right.
        return centre_x + x_mm / mm_per_pixel, floor_y - y_mm / mm_per_pixel

    scale = max(1, min(MAX_SUPERSAMPLING, int(math.sqrt(SUPERSAMPLED_PIXEL_BUDGET / (width * height)))))
    canvas = Image.new("RGBA", (width * scale, height * scale), (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    for polygon in figure.polygons:
        draw.polygon([_scaled(to_pixels(x, y), scale) for x, y in polygon], fill=BODY_COLOUR)
    for centre_x_mm, centre_y_mm, half_width, half_height in figure.ellipses:
        left, top = to_pixels(centre_x_mm - half_width, centre_y_mm + half_height)
        right, bottom = to_pixels(centre_x_mm + half_width, centre_y_mm - half_height)
        draw.ellipse([left * scale, top * scale, right * scale, bottom * scale], fill=BODY_COLOUR)
    picture = canvas.resize((width, height), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=False)
    keypoints = {name: to_pixels(x, y) for name, (x, y) in figure.keypoints.items()}
    return Silhouette(buffer.getvalue(), keypoints, mm_per_pixel, width, height)


def render_mesh_silhouette(mesh: BodyMesh, width: int = 0, height: int = 0) -> Silhouette:
    """Render a body's fitted mesh in orthographic front view: its triangles facing the viewer, filled.

    The mesh is in millimetres with x to the body's left, y up from the floor and z to its front
    (see ``mesh.BodyMesh``); the keypoints are the mesh's, projected the same way.
    """
    width, height = picture_size(width, height)
    vertices = mesh.vertices_mm.astype(np.float64)
    stature = float(vertices[:, 1].max())
    half_span = float(np.abs(vertices[:, 0]).max())
    usable_width = width * (1 - 2 * MARGIN_SHARE)
    usable_height = height * (1 - 2 * MARGIN_SHARE)
    mm_per_pixel = max(stature / usable_height, 2 * half_span / usable_width)
    # Twice enlarged at most: the mesh's thousands of small triangles cost a call each, and its
    # outline is already smooth.
    scale = max(1, min(MESH_SUPERSAMPLING, int(math.sqrt(SUPERSAMPLED_PIXEL_BUDGET / (width * height)))))
    # Positive x is the body's left, drawn on the picture's right; the floor sits as low as in
    # the drawing from measurements, so both kinds of picture line up.
    columns = (width / 2 + vertices[:, 0] / mm_per_pixel) * scale
    rows = (height / 2 + stature / (2 * mm_per_pixel) - vertices[:, 1] / mm_per_pixel) * scale
    corners = mesh.faces
    facing = (vertices[corners[:, 1], 0] - vertices[corners[:, 0], 0]) * (
        vertices[corners[:, 2], 1] - vertices[corners[:, 0], 1]
    ) - (vertices[corners[:, 2], 0] - vertices[corners[:, 0], 0]) * (vertices[corners[:, 1], 1] - vertices[corners[:, 0], 1])
    canvas = Image.new("RGBA", (width * scale, height * scale), (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)
    # Of a closed surface, the triangles facing the viewer cover its whole outline; the others
    # would only be drawn over them in the same colour.
    for a, b, c in corners[facing > 0].tolist():
        draw.polygon([(columns[a], rows[a]), (columns[b], rows[b]), (columns[c], rows[c])], fill=BODY_COLOUR)
    picture = canvas.resize((width, height), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=False)
    floor_y = height / 2 + stature / (2 * mm_per_pixel)
    keypoints = {
        name: (float(width / 2 + point[0] / mm_per_pixel), float(floor_y - point[1] / mm_per_pixel))
        for name, point in mesh.keypoints_mm.items()
    }
    return Silhouette(buffer.getvalue(), keypoints, mm_per_pixel, width, height)


def _plausible(measurements: dict[str, float]) -> dict[str, float]:
    """Every catalogue measurement within its human range, so any model output draws a body."""
    plausible = {}
    for measurement in MEASUREMENTS:
        value = measurements[measurement.name]
        if not math.isfinite(value):
            value = (measurement.human_min + measurement.human_max) / 2
        plausible[measurement.name] = min(max(value, measurement.human_min), measurement.human_max)
    return plausible


def _scaled(point: tuple[float, float], scale: int) -> tuple[float, float]:
    return point[0] * scale, point[1] * scale


def _figure(m: dict[str, float]) -> _Figure:
    """Lay the body out in millimetres from its measurements."""
    stature = m["stature"]
    shoulder_y = m["shoulder_height"]
    neck_y = min(m["neck_height"], stature * (1 - HEAD_HEIGHT_SHARE))
    waist_y = m["waist_height"]
    crotch_y = m["inseam"]
    knee_y = m["knee_height"]
    ankle_y = stature * ANKLE_HEIGHT_SHARE
    chest_y = shoulder_y - CHEST_LEVEL_SHARE * (shoulder_y - waist_y)
    hip_y = crotch_y + HIP_LEVEL_SHARE * (waist_y - crotch_y)
    chin_y = stature * (1 - HEAD_HEIGHT_SHARE)

    half = {
        "neck": m["neck_circumference"] / (2 * math.pi),
        "shoulder": m["shoulder_breadth"] / 2,
        "chest": m["chest_breadth"] / 2,
        "waist": m["waist_breadth"] / 2,
        "hips": m["hip_breadth"] / 2,
    }
    arm_radius_top = m["bicep_circumference"] / (2 * math.pi)
    arm_radius_wrist = m["wrist_circumference"] / (2 * math.pi)
    knee_radius = 0.5 * (m["thigh_circumference"] + m["calf_circumference"]) / (4 * math.pi)
    ankle_radius = m["ankle_circumference"] / (2 * math.pi)
    leg_gap = LEG_GAP_SHARE * stature
    clearance = ARM_CLEARANCE_SHARE * stature

    torso_right_side = [
        (half["neck"], neck_y),
        (half["shoulder"], shoulder_y),
        (half["chest"], shoulder_y - 0.5 * (shoulder_y - chest_y)),
        (half["chest"], chest_y),
        (half["waist"], waist_y),
        (half["hips"], hip_y),
        (half["hips"], crotch_y),
    ]
    torso = [(-x, y) for x, y in torso_right_side] + [(x, y) for x, y in reversed(torso_right_side)]
    torso.insert(len(torso_right_side), (0.0, crotch_y))

    arm_length = max(m["sleeve_length"] - half["shoulder"], 0.25 * stature)
    # The arm's centre line starts inside the shoulder by the arm's radius, so the deltoid
    # ends at the measured shoulder width, and leans out just enough to clear the torso.
    arm_start_x = max(m["shoulder_width"] / 2 - arm_radius_top, half["shoulder"] - arm_radius_top)
    torso_levels = [(chest_y, half["chest"]), (waist_y, half["waist"]), (hip_y, half["hips"])]
    hand_length = HAND_LENGTH_SHARE * stature
    hand_radius = max(arm_radius_wrist * 1.3, 0.25 * hand_length)
    angle = _arm_angle(
        arm_start_x, shoulder_y, arm_length + hand_length, max(arm_radius_top, hand_radius), torso_levels, clearance
    )
    sine, cosine = math.sin(angle), math.cos(angle)
    elbow = (arm_start_x + UPPER_ARM_SHARE * arm_length * sine, shoulder_y - UPPER_ARM_SHARE * arm_length * cosine)
    wrist = (arm_start_x + arm_length * sine, shoulder_y - arm_length * cosine)
    hand_centre = (wrist[0] + 0.5 * hand_length * sine, wrist[1] - 0.5 * hand_length * cosine)

    def across(point: tuple[float, float], radius: float) -> list[tuple[float, float]]:
        # Two points on either side of the arm's centre line, perpendicular to it.
        return [
            (point[0] - radius * cosine, point[1] - radius * sine),
            (point[0] + radius * cosine, point[1] + radius * sine),
        ]

    shoulder_top = (arm_start_x, shoulder_y)
    upper = across(shoulder_top, arm_radius_top)
    middle = across(elbow, 0.5 * (arm_radius_top + arm_radius_wrist))
    lower = across(wrist, arm_radius_wrist)
    left_arm = [upper[0], middle[0], lower[0], lower[1], middle[1], upper[1]]
    right_arm = [(-x, y) for x, y in left_arm]

    leg_centre_at_knee = max(half["hips"] / 2, knee_radius + leg_gap / 2)
    left_leg = [
        (leg_gap / 2, crotch_y),
        (half["hips"], crotch_y),
        (leg_centre_at_knee + knee_radius, knee_y),
        (leg_centre_at_knee + ankle_radius, ankle_y),
        (leg_centre_at_knee + ankle_radius * 1.6, 0.0),
        (leg_centre_at_knee - ankle_radius * 1.2, 0.0),
        (leg_centre_at_knee - ankle_radius, ankle_y),
        (leg_centre_at_knee - knee_radius, knee_y),
    ]
    right_leg = [(-x, y) for x, y in left_leg]
    neck = [(-half["neck"], chin_y), (half["neck"], chin_y), (half["neck"], neck_y), (-half["neck"], neck_y)]

    head_half_height = HEAD_HEIGHT_SHARE * stature / 2
    head = (0.0, stature - head_half_height, HEAD_WIDTH_SHARE * stature / 2, head_half_height)
    hands = [
        (hand_centre[0], hand_centre[1], hand_radius, hand_length / 2),
        (-hand_centre[0], hand_centre[1], hand_radius, hand_length / 2),
    ]
    foot_x = leg_centre_at_knee + 0.2 * ankle_radius
    keypoints = {
        "head_top": (0.0, stature),
        "neck": (0.0, neck_y),
        "left_shoulder": (half["shoulder"], shoulder_y),
        "right_shoulder": (-half["shoulder"], shoulder_y),
        "chest": (0.0, chest_y),
        "waist": (0.0, waist_y),
        "hips": (0.0, hip_y),
        "crotch": (0.0, crotch_y),
        "left_elbow": elbow,
        "right_elbow": (-elbow[0], elbow[1]),
        "left_wrist": wrist,
        "right_wrist": (-wrist[0], wrist[1]),
        "left_knee": (leg_centre_at_knee, knee_y),
        "right_knee": (-leg_centre_at_knee, knee_y),
        "left_ankle": (leg_centre_at_knee, ankle_y),
        "right_ankle": (-leg_centre_at_knee, ankle_y),
        "left_foot": (foot_x, 0.0),
        "right_foot": (-foot_x, 0.0),
    }
    half_span = max(
        abs(hand_centre[0]) + hand_radius,
        abs(lower[1][0]),
        abs(upper[1][0]),
        half["hips"],
        leg_centre_at_knee + ankle_radius * 1.6,
    )
    return _Figure(
        polygons=[torso, neck, left_arm, right_arm, left_leg, right_leg],
        ellipses=[head, *hands],
        keypoints=keypoints,
        half_span=half_span,
        stature=stature,
    )


def _arm_angle(
    start_x: float,
    start_y: float,
    arm_length: float,
    radius: float,
    torso_levels: list[tuple[float, float]],
    clearance: float,
) -> float:
    """Smallest lean of the arm from vertical (8 to 45 degrees) that keeps arm and hand clear of the torso.

    The arm is taken as a band of constant ``radius`` (its thickest part) down to the fingertips.
    """
    for degrees in range(8, 46):
        angle = math.radians(degrees)
        clear = True
        for level_y, torso_half in torso_levels:
            depth = start_y - level_y
            if depth <= 0 or depth > arm_length * math.cos(angle):
                continue
            inner_edge = start_x + depth * math.tan(angle) - radius / math.cos(angle)
            if inner_edge < torso_half + clearance:
                clear = False
                break
        if clear:
            return angle
    return math.radians(45)
