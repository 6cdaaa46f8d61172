"""EASE and the popularity baseline on tiny matrices."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from tryon.services.recommendation.ease import EASE
from tryon.services.recommendation.popularity import Popularity


def tiny_matrix() -> sparse.csr_matrix:
    rng = np.random.default_rng(7)
    return sparse.csr_matrix((rng.random((30, 12)) < 0.3).astype(np.float32))


def test_ease_matches_a_direct_solve_of_the_constrained_least_squares():
    x = tiny_matrix().toarray().astype(np.float64)
    l2 = 3.0
    model = EASE(l2).fit(x)
    # Direct solve of min ||X - XB||^2 + l2 ||B||^2 s.t. diag(B) = 0, column by column:
    # column j regresses X[:, j] on the other columns with ridge l2.
    n_items = x.shape[1]
    expected = np.zeros((n_items, n_items))
    for j in range(n_items):
        others = [i for i in range(n_items) if i != j]
        a = x[:, others]
        expected[others, j] = np.linalg.solve(a.T @ a + l2 * np.eye(n_items - 1), a.T @ x[:, j])
    np.testing.assert_allclose(model.weights, expected, atol=1e-8)
    np.testing.assert_allclose(np.diag(model.weights), 0.0)
    np.testing.assert_allclose(model.score(x[:4]), x[:4] @ expected, atol=1e-8)


def test_ease_accepts_sparse_rows_and_rejects_bad_l2():
    matrix = tiny_matrix()
    model = EASE(10.0).fit(matrix)
    np.testing.assert_allclose(model.score(matrix[:3]), model.score(matrix[:3].toarray()))
    with pytest.raises(ValueError, match="l2"):
        EASE(0.0)
    with pytest.raises(RuntimeError):
        EASE().score(np.zeros((1, 12)))


def test_popularity_ranks_items_by_training_count():
    matrix = sparse.csr_matrix(np.array([[1, 1, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1]], dtype=np.float32))
    scores = Popularity().fit(matrix).score(np.zeros((2, 3)))
    np.testing.assert_array_equal(scores, [[1, 3, 2], [1, 3, 2]])
