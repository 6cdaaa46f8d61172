"""Size-true try-on without transport: RenderTryOn's picture and RenderTryOnModel's GLB.

A body's mesh comes from an injected source (BodyService.GetBodyMesh in the service) and is kept
per body for ``cache_seconds``, with its drawings per view and picture size, so a shopper trying
sizes one after another pays for fetching and drawing the body once. The cache is short because a
body may be changed or deleted in BodyService, and GarmentService hears of neither.

Each garment is drawn at a size: the one asked for, else the size of its chart made for the body's
measurements (measured on the mesh), else, without a chart, at the body's own girths plus its
category's ease; the answer says which (`SizeChoice`) and, per chart measurement, how the size
fits (`tryon.services.garment.garment_fit`).

The GLB is the body's mesh with one texture: the front view's albedo in the left half and the back
view's in the right, each triangle mapped onto the half it faces by planar projection along z.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image
from scipy import ndimage

from tryon.services.garment import images
from tryon.services.garment.catalogue import Garment
from tryon.services.garment.garment_fit import (
    MeasurementFit,
    SizedFit,
    chart_sizes,
    find_size,
    fit_size,
    own_size,
)
from tryon.services.garment.mesh_render import (
    SKIN,
    BodyDrawing,
    BodyMesh,
    View,
    draw_body,
)
from tryon.services.garment.tryon_render import (
    DressedGarment,
    GarmentPicture,
    encode_rgba_png,
    garment_colour,
    garment_picture_from_levels,
    prepare_picture,
    render_try_on,
)
from tryon.shared.errors import FailedPrecondition, InvalidArgument
from tryon.shared.geometry import triangle_normals, vertex_normals
from tryon.shared.glb import GlbMesh, write_glb

MeshSource = Callable[[str], BodyMesh]
"""Fetches a body's mesh by body id; raises NotFound or FailedPrecondition."""
PictureSource = Callable[[Garment], "Image.Image | None"]
"""A garment's original picture, or None when only the 28 x 28 grey form is kept."""

SizeChoice = Literal["requested", "body_size", "no_chart"]
VIEWS: tuple[View, ...] = ("front", "back")
MIN_TEXTURE, MAX_TEXTURE, DEFAULT_TEXTURE = 256, 2048, 1024
_MESH_CACHE, _DRAWING_CACHE, _PICTURE_CACHE = 32, 64, 256
"""Entries kept: bodies, drawings (body x view x size) and garment pictures."""
_DRAWING_BYTES = 160 * 2**20
"""Memory the cached drawings may hold together: 40 bodies at 512 x 1024 (4 MiB each), or two at
the largest picture, 2048 x 4096."""
_PICTURE_BYTES = 128 * 2**20
"""Memory the cached garment pictures may hold together: about 55 at the largest copy drawn
(384 x 384 float32 RGBA, 2.3 MiB), all 256 when they are smaller."""
_RIM = 0.02
"""Width of a product picture's rim that is blended with its background, as a share of its longer side."""
_PICTURE_SIDE = (128, 384)
"""An original picture is drawn from a copy whose longer side is at most the second number (a
garment spans about 300 pixels of a 512 x 1024 try-on picture, and a warp's cost grows with the
source) and at least the first (a small one is enlarged smoothly, so its pixels do not show as
blocks)."""


@dataclass(frozen=True)
class TryOnItem:
    """A garment to put on and the size label to draw it at (empty: the body's own size)."""

    garment_id: str
    size_label: str = ""


@dataclass(frozen=True)
class GarmentFitReport:
    """How one garment was drawn: the size, how it was chosen, and per chart measurement its fit."""

    garment_id: str
    size_label: str
    size_choice: SizeChoice
    measurements: tuple[MeasurementFit, ...]


@dataclass(frozen=True)
class TryOnResult:
    """A try-on's bytes (PNG or GLB) and one fit report per garment, in request order."""

    data: bytes
    fits: list[GarmentFitReport]


class _TimedCache:
    """A small least-recently-used map whose entries expire ``seconds`` after they were stored and
    whose values together weigh at most ``budget`` (by ``weigh``; the newest entry always stays)."""

    def __init__(
        self,
        capacity: int,
        seconds: float,
        clock: Callable[[], float],
        budget: float = float("inf"),
        weigh: Callable[[object], float] = lambda value: 0.0,
    ) -> None:
        self._entries: OrderedDict[object, tuple[float, object, float]] = OrderedDict()
        self._capacity, self._seconds, self._clock = capacity, seconds, clock
        self._budget, self._weigh, self._weight = budget, weigh, 0.0
        self._lock = threading.Lock()

    def get(self, key: object) -> object | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self._clock() - entry[0] > self._seconds:
                self._weight -= self._entries.pop(key)[2]
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: object, value: object) -> None:
        weight = float(self._weigh(value))
        with self._lock:
            if key in self._entries:
                self._weight -= self._entries.pop(key)[2]
            self._entries[key] = (self._clock(), value, weight)
            self._weight += weight
            while len(self._entries) > 1 and (len(self._entries) > self._capacity or self._weight > self._budget):
                self._weight -= self._entries.popitem(last=False)[1][2]


def _picture_bytes(picture: object) -> float:
    """Memory a cached garment picture holds."""
    return float(picture.padded.nbytes)  # type: ignore[attr-defined]


def _drawing_bytes(entry: object) -> float:
    """Memory a cached drawing holds: its picture and its shading."""
    drawing = entry[1]  # type: ignore[index]
    return float(drawing.rgba.nbytes + drawing.shading.nbytes)


class TryOnRenderer:
    """RenderTryOn and RenderTryOnModel over a catalogue lookup, a mesh source and optional originals."""

    def __init__(
        self,
        garments: Callable[[str], Garment],
        meshes: MeshSource | None,
        pictures: PictureSource | None = None,
        cache_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._garments = garments
        self._meshes = meshes
        self._pictures = pictures
        self._mesh_cache = _TimedCache(_MESH_CACHE, cache_seconds, clock)
        self._drawing_cache = _TimedCache(_DRAWING_CACHE, cache_seconds, clock, _DRAWING_BYTES, _drawing_bytes)
        self._picture_cache = _TimedCache(_PICTURE_CACHE, float("inf"), clock, _PICTURE_BYTES, _picture_bytes)

    def mesh(self, body_id: str) -> BodyMesh:
        """The body's mesh, from the cache or the source."""
        cached = self._mesh_cache.get(body_id)
        if isinstance(cached, BodyMesh):
            return cached
        if self._meshes is None:
            raise FailedPrecondition(
                "try-on needs BodyService and none is configured; set TRYON_GARMENT_BODY_SERVICE_ADDRESS"
            )
        mesh = self._meshes(body_id)
        self._mesh_cache.put(body_id, mesh)
        return mesh

    def drawing(self, body_id: str, view: View, width: int, height: int) -> BodyDrawing:
        """The body drawn from one side at one picture size, from the cache or drawn now."""
        mesh = self.mesh(body_id)
        key = (body_id, view, width, height)
        cached = self._drawing_cache.get(key)
        # A drawing is reused only with the very mesh it was drawn from.
        if isinstance(cached, tuple) and cached[0] is mesh:
            return cached[1]
        drawing = draw_body(mesh, view, width, height)
        self._drawing_cache.put(key, (mesh, drawing))
        return drawing

    def _picture(self, garment: Garment) -> GarmentPicture:
        cached = self._picture_cache.get(garment.garment_id)
        if isinstance(cached, GarmentPicture):
            return cached
        original = self._pictures(garment) if self._pictures is not None else None
        if original is not None:
            side = max(original.size)
            scale = min(_PICTURE_SIDE[1] / side, max(_PICTURE_SIDE[0] / side, 1.0))
            if scale != 1.0:
                size = (max(1, round(original.width * scale)), max(1, round(original.height * scale)))
                original = original.resize(size, Image.Resampling.BICUBIC)
            rgba = np.asarray(images.cut_out(original), dtype=np.float32) / 255.0
            # A product photo's rim is blended with its background; drawn over skin it shows as
            # a pale halo, so the garment's outline is pulled in past it.
            rim = max(3, round(_RIM * max(rgba.shape[:2]))) | 1
            rgba[..., 3] = ndimage.minimum_filter(rgba[..., 3], size=rim)
            picture = prepare_picture(rgba)
        else:
            picture = garment_picture_from_levels(images.decode_png(garment.image_png), garment_colour(garment.garment_id))
        self._picture_cache.put(garment.garment_id, picture)
        return picture

    def _dress(
        self, items: Sequence[TryOnItem], garments: Sequence[Garment], mesh: BodyMesh
    ) -> tuple[list[SizedFit], list[GarmentFitReport]]:
        """The fit of each garment at its size, and the reports; InvalidArgument for a size label the
        garment's chart lacks or a label given to a garment without a chart."""
        fits, reports = [], []
        for item, garment in zip(items, garments, strict=True):
            sizes = chart_sizes(garment.size_chart)
            if not sizes:
                if item.size_label:
                    raise InvalidArgument(
                        f"garment {garment.garment_id!r} has no size chart, so size {item.size_label!r} cannot be drawn; "
                        "leave size_label empty to draw it at the body's own size"
                    )
                fit, label, choice = fit_size(garment.category, None, mesh.measured_mm), "", "no_chart"
            else:
                label = item.size_label or own_size(sizes, mesh.measured_mm)
                choice = "requested" if item.size_label else "body_size"
                fit = fit_size(garment.category, find_size(sizes, label, garment.garment_id), mesh.measured_mm)
            fits.append(fit)
            reports.append(GarmentFitReport(garment.garment_id, label, choice, fit.measurements))
        return fits, reports

    def _dressed(self, garments: Sequence[Garment], fits: Sequence[SizedFit]) -> list[DressedGarment]:
        return [DressedGarment(self._picture(g), g.category, f) for g, f in zip(garments, fits, strict=True)]

    def render(self, body_id: str, items: Sequence[TryOnItem], view: View, width: int, height: int) -> TryOnResult:
        """A PNG of the body seen from ``view`` wearing the garments at their sizes, and the fits."""
        if view not in VIEWS:
            raise InvalidArgument(f"view must be one of {', '.join(VIEWS)}; got {view!r}")
        # Every garment is looked up before BodyService is asked for the body.
        garments = [self._garments(item.garment_id) for item in items]
        mesh = self.mesh(body_id)
        fits, reports = self._dress(items, garments, mesh)
        drawing = self.drawing(body_id, view, width, height)
        picture = render_try_on(drawing, self._dressed(garments, fits))
        return TryOnResult(encode_rgba_png(picture), reports)

    def model(self, body_id: str, items: Sequence[TryOnItem], texture_size: int) -> TryOnResult:
        """A GLB of the body's mesh textured with its front and back wearing the garments, and the fits."""
        size = texture_size or DEFAULT_TEXTURE
        if not MIN_TEXTURE <= size <= MAX_TEXTURE:
            raise InvalidArgument(
                f"texture_size must be 0 (meaning {DEFAULT_TEXTURE}) or {MIN_TEXTURE} to {MAX_TEXTURE}; got {texture_size}"
            )
        garments = [self._garments(item.garment_id) for item in items]
        mesh = self.mesh(body_id)
        fits, reports = self._dress(items, garments, mesh)
        dressed = self._dressed(garments, fits)
        halves, drawings = [], []
        for view in VIEWS:
            drawing = self.drawing(body_id, view, size // 2, size)
            drawings.append(drawing)
            albedo = render_try_on(drawing, dressed, shaded=False)
            # Texels just outside the silhouette are sampled at its edges: skin, never transparent.
            alpha = albedo[..., 3:].astype(np.float32) / 255.0
            skin = np.round(SKIN * 255.0)
            albedo[..., :3] = np.round(albedo[..., :3] * alpha + skin * (1.0 - alpha)).astype(np.uint8)
            albedo[..., 3] = 255
            halves.append(albedo)
        texture = np.concatenate(halves, axis=1)
        return TryOnResult(write_glb(textured_mesh(mesh, drawings, encode_rgba_png(texture), reports)), reports)


def textured_mesh(
    mesh: BodyMesh, drawings: Sequence[BodyDrawing], texture_png: bytes, reports: Sequence[GarmentFitReport]
) -> GlbMesh:
    """The mesh in metres with planar texture coordinates: triangles facing +z sample the front
    drawing (left half), the others the back drawing (right half), each vertex where its drawing's
    projection puts it. Vertices are duplicated per half, so a seam runs along the body's sides."""
    vertices = np.asarray(mesh.vertices_mm, dtype=np.float64)
    faces = np.asarray(mesh.faces, dtype=np.int64)
    face_normals = triangle_normals(vertices[faces])
    facing_front = face_normals[:, 2] >= 0
    halves = []
    for half, drawing in enumerate(drawings):
        height, width = drawing.rgba.shape[:2]
        projection = drawing.projection
        u = (half * width + projection.columns(vertices[:, 0])) / (2 * width)
        v = projection.rows(vertices[:, 1]) / height
        halves.append(np.clip(np.stack([u, v], axis=1), 0.0, 1.0))
    count = len(vertices)
    normals = vertex_normals(vertices, faces, face_normals)
    faces_out = np.where(facing_front[:, None], faces, faces + count)
    return GlbMesh(
        vertices=np.concatenate([vertices, vertices]).astype(np.float32) / 1000.0,
        faces=faces_out.astype(np.uint32),
        normals=np.concatenate([normals, normals]).astype(np.float32),
        uv=np.concatenate(halves).astype(np.float32),
        texture_png=texture_png,
        name="dressed_body",
        extras={
            "keypoints_mm": {name: [float(c) for c in point] for name, point in mesh.keypoints_mm.items()},
            "garments": [{"garment_id": r.garment_id, "size_label": r.size_label} for r in reports],
        },
    )
