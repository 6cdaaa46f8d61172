"""A body mesh drawn as a picture: orthographic projection, a numpy z-buffer, smooth shading.

The mesh is in millimetres with y up, x to the body's left and z forward (glTF's axes: the body
faces +z). The FRONT view looks at the body from +z, the BACK view from -z (so the body's left
is on the picture's right in FRONT, on its left in BACK). The body fills the picture's height
less a margin, centred; one scale (pixels per millimetre) serves both axes.

Rasterising is vectorised: only triangles facing the viewer are drawn (a closed surface hides
the others), every triangle's bounding-box pixels are tested at once (triangles grouped by box
size), the nearest candidate per pixel wins by one sort, and normals are
interpolated from the vertices for smooth shading under a light from the viewer's upper left.
Besides the shaded picture, the drawing keeps the landmarks the garments are placed by: the
rows of the keypoints and the torso's extent at the chest, waist and hip rows, measured on the
mesh itself (where a horizontal plane cuts it, split where gaps part the torso from the arms).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from tryon.shared.errors import FailedPrecondition
from tryon.shared.geometry import triangle_normals, vertex_normals

View = Literal["front", "back"]

REQUIRED_KEYPOINTS = ("neck", "waist", "hips", "left_ankle", "right_ankle")
"""Keypoints the renderer places garments by; others (shoulders, chest, crotch, knees) are used
when present and estimated from these when not."""

SKIN = np.array([0.80, 0.67, 0.58], dtype=np.float32)
"""Albedo of the drawn body: a neutral light skin tone."""

_MARGIN = 0.04
"""Share of the picture's height left free above and below the body."""
_LIGHT = np.array([-0.35, 0.45, 0.82], dtype=np.float32) / np.linalg.norm([-0.35, 0.45, 0.82])
_AMBIENT = 0.35
_CANDIDATES_PER_BATCH = 1_000_000
"""Candidate pixels tested at once by the rasteriser: bounds its memory (a few arrays of this size)."""
_GAP_MM = 5.0
"""A gap this wide in a horizontal cut of the mesh separates the torso from an arm or a hand."""


@dataclass(frozen=True)
class BodyMesh:
    """A body as GarmentService receives it from BodyService.GetBodyMesh: vertices (mm, y up, the
    body facing +z) [N, 3], triangles [F, 3], named keypoints (mm) and the mesh's own measurements
    (mm: chest, waist and hip circumference, inseam, stature)."""

    vertices_mm: np.ndarray
    faces: np.ndarray
    keypoints_mm: Mapping[str, tuple[float, float, float]]
    measured_mm: Mapping[str, float]


@dataclass(frozen=True)
class Projection:
    """Orthographic projection of a view: pixel = (centre_x +- (x - origin_x) * scale, top + (origin_y - y) * scale)."""

    view: View
    scale: float
    origin_x: float
    origin_y: float
    centre_x: float
    top: float

    def columns(self, x_mm: np.ndarray | float) -> np.ndarray:
        """Picture columns of body x coordinates (mm)."""
        sign = 1.0 if self.view == "front" else -1.0
        # The body's left (+x) is on the picture's right in the front view.
        return self.centre_x + sign * (np.asarray(x_mm, dtype=np.float64) - self.origin_x) * self.scale

    def rows(self, y_mm: np.ndarray | float) -> np.ndarray:
        """Picture rows of body heights (mm)."""
        return self.top + (self.origin_y - np.asarray(y_mm, dtype=np.float64)) * self.scale

    def depth(self, z_mm: np.ndarray) -> np.ndarray:
        """Nearness to the viewer (larger is nearer)."""
        return z_mm if self.view == "front" else -z_mm


@dataclass(frozen=True)
class BodyDrawing:
    """A drawn body: RGBA uint8 [H, W, 4] (transparent background), its shading [H, W] in [0, 1]
    (1 where nothing is drawn), the projection, the keypoint rows and columns (pixels), and the
    torso's left and right columns at the chest, waist and hip rows (pixels, picture order)."""

    rgba: np.ndarray
    shading: np.ndarray
    projection: Projection
    keypoints: Mapping[str, tuple[float, float]]
    torso_spans: Mapping[str, tuple[float, float]]
    measured_mm: Mapping[str, float]

    @property
    def pixels_per_mm(self) -> float:
        """The drawing's scale."""
        return self.projection.scale


def check_mesh(mesh: BodyMesh) -> None:
    """FailedPrecondition when the mesh cannot be drawn or dressed."""
    vertices, faces = np.asarray(mesh.vertices_mm), np.asarray(mesh.faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) < 3 or not np.isfinite(vertices).all():
        raise FailedPrecondition(f"the body mesh has unusable vertices (shape {vertices.shape}); recreate the body")
    if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0 or faces.min() < 0 or faces.max() >= len(vertices):
        raise FailedPrecondition(f"the body mesh has unusable triangles (shape {faces.shape}); recreate the body")
    missing = [name for name in REQUIRED_KEYPOINTS if name not in mesh.keypoints_mm]
    if missing:
        raise FailedPrecondition(
            f"the body mesh lacks the keypoints {', '.join(missing)}; try-on needs {', '.join(REQUIRED_KEYPOINTS)}"
        )


def projection_for(mesh: BodyMesh, view: View, width: int, height: int) -> Projection:
    """The projection that fits the whole body into a picture of ``width`` x ``height``."""
    vertices = np.asarray(mesh.vertices_mm, dtype=np.float64)
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    extent_x, extent_y = max(high[0] - low[0], 1.0), max(high[1] - low[1], 1.0)
    scale = min(height * (1 - 2 * _MARGIN) / extent_y, width * (1 - 2 * _MARGIN) / extent_x)
    top = (height - extent_y * scale) / 2
    return Projection(view, float(scale), float((low[0] + high[0]) / 2), float(high[1]), width / 2, float(top))


def rasterise(
    points: np.ndarray, depth: np.ndarray, faces: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Z-buffer of triangles with vertices at picture ``points`` [N, 2] (column, row) and ``depth`` [N]
    (larger is nearer). Returns the flat indices of covered pixels, the triangle drawn at each and
    its barycentric weights [P, 3]."""
    # float32 throughout: a pixel grid needs no more, and it halves the memory traffic.
    corners = points[faces].astype(np.float32)
    x_low = np.clip(np.ceil(corners[..., 0].min(axis=1) - 0.5), 0, width).astype(np.int64)
    x_high = np.clip(np.floor(corners[..., 0].max(axis=1) - 0.5), -1, width - 1).astype(np.int64)
    y_low = np.clip(np.ceil(corners[..., 1].min(axis=1) - 0.5), 0, height).astype(np.int64)
    y_high = np.clip(np.floor(corners[..., 1].max(axis=1) - 0.5), -1, height - 1).astype(np.int64)
    box_width, box_height = x_high - x_low + 1, y_high - y_low + 1
    visible = (box_width > 0) & (box_height > 0)
    # Triangles grouped by the powers of two just above their box's width and height: each group
    # tests a rectangle of candidate pixels per triangle, at most twice the box in each direction.
    width_class = np.ceil(np.log2(np.maximum(box_width, 1))).astype(np.int64)
    height_class = np.ceil(np.log2(np.maximum(box_height, 1))).astype(np.int64)
    group_key = np.where(visible, width_class * 64 + height_class, -1)
    pixel_parts, face_parts, weight_parts, depth_parts = [], [], [], []
    for key in np.unique(group_key[visible]):
        chosen = np.flatnonzero(group_key == key)
        side_x, side_y = int(box_width[chosen].max()), int(box_height[chosen].max())
        step = max(1, _CANDIDATES_PER_BATCH // (side_x * side_y))
        for start in range(0, chosen.size, step):
            group = chosen[start : start + step]
            xs = x_low[group, None, None] + np.arange(side_x)[None, None, :]
            ys = y_low[group, None, None] + np.arange(side_y)[None, :, None]
            inside_box = (xs <= x_high[group, None, None]) & (ys <= y_high[group, None, None])
            px, py = xs.astype(np.float32) + 0.5, ys.astype(np.float32) + 0.5
            a, b, c = (corners[group, k][:, None, None, :] for k in range(3))
            area = (b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1]) - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0])
            safe = np.where(np.abs(area) < 1e-12, np.float32(1e-12), area)
            w_a = ((b[..., 0] - px) * (c[..., 1] - py) - (b[..., 1] - py) * (c[..., 0] - px)) / safe
            w_b = ((c[..., 0] - px) * (a[..., 1] - py) - (c[..., 1] - py) * (a[..., 0] - px)) / safe
            w_c = 1.0 - w_a - w_b
            inside = inside_box & (w_a >= 0) & (w_b >= 0) & (w_c >= 0) & (np.abs(area) >= 1e-12)
            hit_face, hit_row, hit_column = np.nonzero(inside)
            if hit_face.size == 0:
                continue
            weights = np.stack(
                [w_a[hit_face, hit_row, hit_column], w_b[hit_face, hit_row, hit_column], w_c[hit_face, hit_row, hit_column]],
                axis=1,
            )
            faces_hit = group[hit_face]
            pixel_parts.append(ys[hit_face, hit_row, 0] * width + xs[hit_face, 0, hit_column])
            face_parts.append(faces_hit)
            weight_parts.append(weights)
            depth_parts.append((weights * depth[faces[faces_hit]]).sum(axis=1))
    if not pixel_parts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros((0, 3))
    pixels, hit_faces = np.concatenate(pixel_parts), np.concatenate(face_parts)
    weights, depths = np.concatenate(weight_parts), np.concatenate(depth_parts)
    # Nearest first within each pixel (one sort of pixel index and depth packed into one integer,
    # the depth in 2^20 steps of its range); the first of each pixel's run is the visible one.
    low, high = float(depths.min()), float(depths.max())
    steps = np.round((high - depths) / max(high - low, 1e-9) * (2**20 - 1)).astype(np.int64)
    order = np.argsort(pixels * 2**20 + steps, kind="stable")
    pixels = pixels[order]
    first = np.ones(pixels.size, dtype=bool)
    first[1:] = pixels[1:] != pixels[:-1]
    winners = order[first]
    return pixels[first], hit_faces[winners], weights[winners]


def _torso_span(corners: np.ndarray, y_mm: float, centre_x: float, girth: float | None) -> tuple[float, float]:
    """Left and right x (mm) of the torso where the plane at height ``y_mm`` cuts the mesh's
    triangles ``corners`` [F, 3, 3]: the
    cut's segments merged into runs along x (arms and hands form runs of their own), and the run
    around the body's centre taken. When that run is implausibly wide for the girth (a hand
    touching the hip) or the plane misses the torso, the width of an ellipse of that girth and a
    depth of 0.7 times its width stands in."""
    above = corners[..., 1] > y_mm
    crossing = above.any(axis=1) & ~above.all(axis=1)
    xs = []
    for start, end in ((0, 1), (1, 2), (2, 0)):
        a, b = corners[crossing, start], corners[crossing, end]
        cut = (a[:, 1] > y_mm) != (b[:, 1] > y_mm)
        t = (y_mm - a[:, 1]) / np.where(cut, b[:, 1] - a[:, 1], 1.0)
        xs.append(np.where(cut, a[:, 0] + t * (b[:, 0] - a[:, 0]), np.nan))
    cuts = np.stack(xs, axis=1)
    low, high = np.nanmin(cuts, axis=1) if len(cuts) else cuts, np.nanmax(cuts, axis=1) if len(cuts) else cuts
    span = None
    if len(low):
        order = np.argsort(low)
        run_low, run_high = low[order[0]], high[order[0]]
        for index in order[1:]:
            if low[index] <= run_high + _GAP_MM:
                run_high = max(run_high, high[index])
                continue
            if run_low <= centre_x <= run_high:
                break
            run_low, run_high = low[index], high[index]
        if run_low <= centre_x <= run_high:
            span = (float(run_low), float(run_high))
    if girth:
        ellipse_width = 2 * girth / (np.pi * (3 * 1.7 - np.sqrt(3.7 * 3.1)))
        if span is None or span[1] - span[0] > 1.25 * ellipse_width:
            return centre_x - ellipse_width / 2, centre_x + ellipse_width / 2
    return span if span is not None else (centre_x - 1.0, centre_x + 1.0)


def _landmarks_mm(mesh: BodyMesh) -> dict[str, np.ndarray]:
    """The keypoints the garments are placed by, estimated from the required ones when absent."""
    points = {name: np.asarray(value, dtype=np.float64) for name, value in mesh.keypoints_mm.items()}
    neck, waist, hips = points["neck"], points["waist"], points["hips"]
    ankle_y = (points["left_ankle"][1] + points["right_ankle"][1]) / 2
    points.setdefault("chest", neck + 0.45 * (waist - neck))
    if "crotch" not in points:
        inseam = mesh.measured_mm.get("inseam")
        crotch_y = inseam if inseam else hips[1] - 0.25 * (hips[1] - ankle_y)
        points["crotch"] = np.array([hips[0], crotch_y, hips[2]])
    return points


def draw_body(mesh: BodyMesh, view: View, width: int, height: int) -> BodyDrawing:
    """The body's mesh drawn from the front or the back at ``width`` x ``height`` pixels."""
    check_mesh(mesh)
    vertices = np.asarray(mesh.vertices_mm, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    projection = projection_for(mesh, view, width, height)
    points = np.stack([projection.columns(vertices[:, 0]), projection.rows(vertices[:, 1])], axis=1)
    # Triangles facing away from the viewer are hidden behind the others on a closed surface, so
    # only those facing the viewer are drawn: half the work. Which way a triangle faces follows
    # from its winding, outward or inward as the mesh's signed volume says.
    corners = vertices[faces]
    face_normals = triangle_normals(corners)
    outward = 1.0 if np.einsum("fi,fi->", corners[:, 0], face_normals) >= 0 else -1.0
    toward_viewer = outward * projection.depth(face_normals[:, 2]) > 0
    shown = faces[toward_viewer]
    pixels, hit_faces, weights = rasterise(points, projection.depth(vertices[:, 2]), shown, width, height)
    normals = vertex_normals(vertices, faces, face_normals)
    # In view space the viewer is at +z; the back view turns the body around the y axis.
    if view == "back":
        normals = normals * np.array([-1.0, 1.0, -1.0])
    # Gouraud shading: the light is reckoned per vertex and interpolated across each triangle,
    # which on a mesh this fine looks as smooth as interpolating normals and costs a third.
    vertex_shade = (_AMBIENT + (1 - _AMBIENT) * np.clip(normals @ _LIGHT, 0.0, 1.0)).astype(np.float32)
    shade = np.einsum("pk,pk->p", weights, vertex_shade[shown[hit_faces]]).astype(np.float32)
    shading = np.ones(width * height, dtype=np.float32)
    shading[pixels] = shade
    rgba = np.zeros((width * height, 4), dtype=np.uint8)
    rgba[pixels, :3] = np.round(np.clip(shade[:, None] * SKIN[None, :], 0, 1) * 255).astype(np.uint8)
    rgba[pixels, 3] = 255
    landmarks = _landmarks_mm(mesh)
    keypoints = {
        name: (float(projection.columns(point[0])), float(projection.rows(point[1]))) for name, point in landmarks.items()
    }
    centre_x = float((landmarks["neck"][0] + landmarks["hips"][0]) / 2)
    spans = {}
    girths = {"chest": "chest_circumference", "waist": "waist_circumference", "hips": "hip_circumference"}
    for name, girth in girths.items():
        left, right = _torso_span(corners, float(landmarks[name][1]), centre_x, mesh.measured_mm.get(girth))
        columns = sorted([float(projection.columns(left)), float(projection.columns(right))])
        spans[name] = (columns[0], columns[1])
    return BodyDrawing(
        rgba=rgba.reshape(height, width, 4),
        shading=shading.reshape(height, width),
        projection=projection,
        keypoints=keypoints,
        torso_spans=spans,
        measured_mm=dict(mesh.measured_mm),
    )
