"""Most-popular baseline: every user gets items ranked by their training interaction count.

The reference point that any personalised recommender must beat (e.g. Liang et al., WWW 2018,
and Steck, WWW 2019, both report it).
"""

from __future__ import annotations

import numpy as np
from scipy import sparse


class Popularity:
    """Scores each item by the number of training users who interacted with it."""

    def __init__(self) -> None:
        self.counts: np.ndarray | None = None

    def fit(self, matrix: sparse.spmatrix | np.ndarray) -> Popularity:
        """Count the positive entries of each item column."""
        self.counts = np.asarray((sparse.csr_matrix(matrix) > 0).sum(axis=0), dtype=np.float64).ravel()
        return self

    def score(self, x: np.ndarray | sparse.spmatrix) -> np.ndarray:
        """The same popularity scores for each row of ``x`` [batch, n_items]."""
        if self.counts is None:
            raise RuntimeError("Popularity.score called before fit")
        n_rows = np.atleast_2d(x.toarray() if sparse.issparse(x) else np.asarray(x)).shape[0]
        return np.broadcast_to(self.counts, (n_rows, self.counts.shape[0])).copy()
