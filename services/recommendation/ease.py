"""EASE: an embarrassingly shallow linear autoencoder with a closed-form solution.

Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019 (arXiv:1905.03375).
With the Gram matrix G = X^T X + l2 * I and P = G^-1, the item-item weights are
B = I - P * diag(1 / diag(P)), which has a zero diagonal; a user's scores are x @ B.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse


class EASE:
    """EASE with L2 strength ``l2`` (the paper tunes it on validation users; ~100-1000 on small data)."""

    def __init__(self, l2: float = 500.0) -> None:
        if l2 <= 0.0:
            raise ValueError(f"l2 must be positive, got {l2}")
        self.l2 = float(l2)
        self.weights: np.ndarray | None = None

    def fit(self, matrix: sparse.spmatrix | np.ndarray) -> EASE:
        """Solve for the item-item weights from the users x items ``matrix``."""
        x = sparse.csr_matrix(matrix, dtype=np.float64)
        gram = (x.T @ x).toarray()
        gram[np.diag_indices_from(gram)] += self.l2
        precision = np.linalg.inv(gram)
        weights = -precision / np.diag(precision)
        weights[np.diag_indices_from(weights)] = 0.0
        self.weights = weights
        return self

    def score(self, x: np.ndarray | sparse.spmatrix) -> np.ndarray:
        """Scores of every item for each history row of ``x`` [batch, n_items]."""
        if self.weights is None:
            raise RuntimeError("EASE.score called before fit")
        rows = x.toarray() if sparse.issparse(x) else np.asarray(x, dtype=np.float64)
        return np.atleast_2d(rows) @ self.weights
