"""Triangle-mesh geometry shared by the services that build and draw meshes: face and vertex normals."""

from __future__ import annotations

import numpy as np


def triangle_normals(corners: np.ndarray) -> np.ndarray:
    """Each triangle's normal, as long as twice its area, along its winding; ``corners`` [F, 3, 3]."""
    return np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])


def vertex_normals(vertices: np.ndarray, faces: np.ndarray, face_normals: np.ndarray | None = None) -> np.ndarray:
    """Unit vertex normals: the area-weighted mean of the adjacent triangles' normals
    (``face_normals``: those of ``triangle_normals``, when already computed)."""
    if face_normals is None:
        face_normals = triangle_normals(vertices[faces])
    # One bincount per axis sums each vertex's adjacent face normals (far quicker than np.add.at).
    corner_vertices = faces.reshape(-1)
    normals = np.stack(
        [np.bincount(corner_vertices, np.repeat(face_normals[:, axis], 3), minlength=len(vertices)) for axis in range(3)],
        axis=1,
    )
    lengths = np.linalg.norm(normals, axis=1, keepdims=True)
    return normals / np.maximum(lengths, 1e-12)
