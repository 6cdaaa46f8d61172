"""Garment fixtures: a small real Fashion-MNIST sample and garment models trained on it in seconds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tryon.services.garment.dataset import load_fashion_mnist, to_unit_float
from tryon.services.garment.garment_models import GarmentModels, GarmentModelsConfig

FIXTURE_TRAINING_IMAGES = 3000


def _load_or_skip(split: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        return load_fashion_mnist(split)
    except FileNotFoundError as error:
        pytest.skip(f"Fashion-MNIST is not installed: {error}")


@pytest.fixture(scope="session")
def fashion_sample() -> tuple[np.ndarray, np.ndarray]:
    """The first 512 Fashion-MNIST test images as float32 [512, 28, 28] in [0, 1] and their labels."""
    images, labels = _load_or_skip("test")
    return to_unit_float(images[:512]), labels[:512]


@pytest.fixture(scope="session")
def trained_garment_models() -> GarmentModels:
    """VAE, GAN and classifier trained one epoch on 3,000 training images (seconds on a laptop CPU).

    Good enough to exercise every entry point with real weights; not a quality model.
    """
    images, labels = _load_or_skip("train")
    return GarmentModels.train(
        to_unit_float(images[:FIXTURE_TRAINING_IMAGES]),
        labels[:FIXTURE_TRAINING_IMAGES],
        GarmentModelsConfig(),
        vae_epochs=1,
        gan_epochs=1,
        classifier_epochs=1,
        seed=0,
        progress=False,
        device="cpu",
    )


@pytest.fixture(scope="session")
def trained_garment_models_dir(trained_garment_models: GarmentModels, tmp_path_factory) -> Path:
    """A folder holding ``trained_garment_models`` as written by ``GarmentModels.save``."""
    return trained_garment_models.save(tmp_path_factory.mktemp("garment-models"))


def _ellipse_half_width(girth: float, depth_ratio: float) -> float:
    """Half width ``a`` of an ellipse with half depth ``depth_ratio * a`` and perimeter ``girth`` (Ramanujan)."""
    b = depth_ratio
    per_unit = np.pi * (3 * (1 + b) - np.sqrt((3 + b) * (1 + 3 * b)))
    return girth / per_unit


def build_body_mesh(stature: float, chest: float, waist: float, hip: float, inseam: float | None = None):
    """A body mesh of known girths for try-on tests: elliptic tubes (torso, legs, arms hanging apart
    from the torso, head) in millimetres, y up, facing +z, with the keypoints BodyService gives."""
    from tryon.services.garment.mesh_render import BodyMesh

    segments = 48
    angles = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    vertices: list[np.ndarray] = []
    faces: list[np.ndarray] = []

    def tube(rings: list[tuple[float, float, float, float, float]]) -> None:
        """Rings of (y, centre_x, centre_z, half_width, half_depth), bottom to top, capped at both ends."""
        start = sum(len(v) for v in vertices)
        points = [
            np.stack([cx + a * np.cos(angles), np.full(segments, y), cz + d * np.sin(angles)], axis=1)
            for y, cx, cz, a, d in rings
        ]
        caps = np.array([[rings[0][1], rings[0][0], rings[0][2]], [rings[-1][1], rings[-1][0], rings[-1][2]]])
        vertices.append(np.concatenate([*points, caps]))
        for ring in range(len(rings) - 1):
            for k in range(segments):
                a0, a1 = start + ring * segments + k, start + ring * segments + (k + 1) % segments
                b0, b1 = a0 + segments, a1 + segments
                faces.append(np.array([[a0, b0, a1], [a1, b0, b1]]))
        bottom_cap, top_cap = start + len(rings) * segments, start + len(rings) * segments + 1
        for k in range(segments):
            faces.append(np.array([[bottom_cap, start + (k + 1) % segments, start + k]]))
            last = start + (len(rings) - 1) * segments
            faces.append(np.array([[top_cap, last + k, last + (k + 1) % segments]]))

    inseam = inseam if inseam is not None else 0.46 * stature
    ankle_y, knee_y = 0.045 * stature, (0.045 * stature + inseam) / 2
    hips_y, waist_y, chest_y = inseam + 0.05 * stature, 0.60 * stature, 0.72 * stature
    shoulder_y, neck_y = 0.81 * stature, 0.84 * stature
    chest_a = _ellipse_half_width(chest, 0.7)
    waist_a, hip_a = _ellipse_half_width(waist, 0.7), _ellipse_half_width(hip, 0.7)
    tube(
        [
            (inseam, 0.0, 0.0, hip_a * 0.95, hip_a * 0.66),
            (hips_y, 0.0, 0.0, hip_a, hip_a * 0.7),
            (waist_y, 0.0, 0.0, waist_a, waist_a * 0.7),
            (chest_y, 0.0, 0.0, chest_a, chest_a * 0.7),
            (shoulder_y, 0.0, 0.0, chest_a * 0.9, chest_a * 0.5),
            (neck_y, 0.0, 0.0, 55.0, 50.0),
        ]
    )
    tube([(neck_y, 0.0, 0.0, 60.0, 70.0), (0.93 * stature, 0.0, 0.0, 80.0, 95.0), (stature, 0.0, 0.0, 40.0, 50.0)])
    leg_x = hip_a * 0.48
    for side in (-1.0, 1.0):
        tube(
            [
                (0.0, side * leg_x, 30.0, 45.0, 110.0),
                (ankle_y, side * leg_x, 0.0, 35.0, 35.0),
                (knee_y, side * leg_x, 0.0, 50.0, 50.0),
                (inseam + 1.0, side * leg_x, 0.0, hip_a * 0.47, hip_a * 0.6),
            ]
        )
        arm_x = chest_a + 70.0
        tube(
            [
                (hips_y - 0.05 * stature, side * arm_x, 0.0, 30.0, 30.0),
                (shoulder_y - 10.0, side * arm_x, 0.0, 45.0, 45.0),
            ]
        )
    keypoints = {
        "neck": (0.0, neck_y, 0.0),
        "left_shoulder": (chest_a * 0.9, shoulder_y, 0.0),
        "right_shoulder": (-chest_a * 0.9, shoulder_y, 0.0),
        "chest": (0.0, chest_y, 0.0),
        "waist": (0.0, waist_y, 0.0),
        "hips": (0.0, hips_y, 0.0),
        "crotch": (0.0, inseam, 0.0),
        "left_knee": (leg_x, knee_y, 0.0),
        "right_knee": (-leg_x, knee_y, 0.0),
        "left_ankle": (leg_x, ankle_y, 0.0),
        "right_ankle": (-leg_x, ankle_y, 0.0),
        "left_wrist": (chest_a + 70.0, hips_y - 0.05 * stature, 0.0),
        "right_wrist": (-chest_a - 70.0, hips_y - 0.05 * stature, 0.0),
    }
    measured = {
        "stature": stature,
        "chest_circumference": chest,
        "waist_circumference": waist,
        "hip_circumference": hip,
        "inseam": inseam,
    }
    return BodyMesh(
        vertices_mm=np.concatenate(vertices), faces=np.concatenate(faces).astype(np.int64), keypoints_mm=keypoints, measured_mm=measured
    )


@pytest.fixture(scope="session")
def body_meshes() -> dict[str, object]:
    """Three bodies of known girths (mm): small, median and large, as ANSUR II women run."""
    return {
        "small": build_body_mesh(1560.0, 830.0, 680.0, 900.0, 720.0),
        "median": build_body_mesh(1640.0, 930.0, 790.0, 1000.0, 760.0),
        "large": build_body_mesh(1720.0, 1080.0, 960.0, 1140.0, 800.0),
    }
