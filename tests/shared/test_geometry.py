import numpy as np

from tryon.shared.geometry import triangle_normals, vertex_normals

# A tetrahedron wound so that every face's normal points outward.
VERTICES = np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
FACES = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]])


def test_triangle_normals_follow_the_winding_and_are_twice_the_area_long():
    normals = triangle_normals(VERTICES[FACES])
    np.testing.assert_allclose(normals[0], [0.0, 0.0, -1.0])
    np.testing.assert_allclose(np.linalg.norm(normals[3]), 2 * (np.sqrt(3) / 2))


def test_vertex_normals_are_unit_and_point_outward_from_the_centre():
    normals = vertex_normals(VERTICES, FACES)
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0)
    outward = VERTICES - VERTICES.mean(axis=0)
    assert np.all(np.sum(normals * outward, axis=1) > 0)
    # The corner at the origin touches three faces of equal area along -x, -y and -z.
    np.testing.assert_allclose(normals[0], -np.ones(3) / np.sqrt(3))


def test_vertex_normals_sum_adjacent_faces_as_np_add_at_does():
    rng = np.random.default_rng(0)
    vertices = rng.normal(size=(50, 3))
    faces = rng.integers(0, 50, size=(200, 3))
    expected = np.zeros_like(vertices)
    face_normals = triangle_normals(vertices[faces])
    for corner in range(3):
        np.add.at(expected, faces[:, corner], face_normals)
    expected /= np.maximum(np.linalg.norm(expected, axis=1, keepdims=True), 1e-12)
    np.testing.assert_allclose(vertex_normals(vertices, faces), expected, atol=1e-12)


def test_an_unused_vertex_gets_a_zero_normal_not_nan():
    normals = vertex_normals(np.vstack([VERTICES, [[5.0, 5.0, 5.0]]]), FACES)
    np.testing.assert_array_equal(normals[4], 0.0)
