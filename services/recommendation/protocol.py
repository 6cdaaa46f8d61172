"""The strong-generalization protocol of Liang et al. (WWW 2018) and its ranking metrics.

Users, not interactions, are split: training users are seen whole at training time;
each held-out (validation or test) user's items are split into a fold-in part (80%) that
the model reads and a held-out part (20%) that it must rank highly among all items it
did not read. Recall@k uses the paper's normalised form, dividing the hits by
min(k, |held-out|) so that it reaches 1; NDCG@k uses binary relevance.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse


@dataclass(frozen=True)
class FoldInSet:
    """Held-out users: what a model reads (``fold_in``) and what it must find (``held_out``).

    Both are binary CSR matrices [users, items] over the same item columns as training.
    """

    fold_in: sparse.csr_matrix
    held_out: sparse.csr_matrix
    user_ids: np.ndarray

    @property
    def n_users(self) -> int:
        """Number of held-out users."""
        return self.fold_in.shape[0]


@dataclass(frozen=True)
class StrongGeneralizationSplit:
    """Training users' matrix plus validation and test fold-in sets over the same items."""

    train: sparse.csr_matrix
    train_user_ids: np.ndarray
    validation: FoldInSet
    test: FoldInSet
    item_ids: np.ndarray


def positives_from_ratings(
    ratings: pd.DataFrame,
    min_rating: float = 4.0,
    min_user_positives: int = 5,
    user_column: str = "user_id",
    item_column: str = "item_id",
    rating_column: str = "rating",
) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
    """Binarise explicit ratings: ratings >= ``min_rating`` are positives, the rest dropped.

    Users with fewer than ``min_user_positives`` positives are dropped (the paper keeps
    users with at least 5); no minimum is applied to items. Returns the binary user x item
    CSR matrix with the sorted original user and item ids of its rows and columns.
    """
    positives = ratings.loc[ratings[rating_column] >= min_rating, [user_column, item_column]]
    positives = positives.drop_duplicates()
    counts = positives.groupby(user_column)[item_column].transform("size")
    positives = positives.loc[counts >= min_user_positives]
    user_ids, rows = np.unique(positives[user_column].to_numpy(), return_inverse=True)
    item_ids, cols = np.unique(positives[item_column].to_numpy(), return_inverse=True)
    matrix = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(user_ids), len(item_ids))
    )
    return matrix, user_ids, item_ids


def fold_in_split(
    matrix: sparse.csr_matrix, held_out_fraction: float, rng: np.random.Generator
) -> tuple[sparse.csr_matrix, sparse.csr_matrix]:
    """Split each row's items at random: int(fraction * n) held out, the rest folded in.

    As in the paper's reference code the held-out count is rounded down, so a user with
    5 to 9 items holds out exactly one. Both parts keep the matrix's values (a weighted history
    folds in with its weights; the metrics read held-out items as relevant whatever their value).
    """
    matrix = sparse.csr_matrix(matrix)
    fold_rows, fold_cols, fold_values, held_rows, held_cols, held_values = [], [], [], [], [], []
    for row in range(matrix.shape[0]):
        items = matrix.indices[matrix.indptr[row] : matrix.indptr[row + 1]]
        values = matrix.data[matrix.indptr[row] : matrix.indptr[row + 1]]
        n_held_out = int(held_out_fraction * len(items))
        held_out_mask = np.zeros(len(items), dtype=bool)
        held_out_mask[rng.choice(len(items), size=n_held_out, replace=False)] = True
        fold_cols.append(items[~held_out_mask])
        fold_values.append(values[~held_out_mask])
        fold_rows.append(np.full(int((~held_out_mask).sum()), row))
        held_cols.append(items[held_out_mask])
        held_values.append(values[held_out_mask])
        held_rows.append(np.full(n_held_out, row))

    def build(rows: list[np.ndarray], cols: list[np.ndarray], values: list[np.ndarray]) -> sparse.csr_matrix:
        r = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        c = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
        v = np.concatenate(values).astype(np.float32) if values else np.zeros(0, dtype=np.float32)
        return sparse.csr_matrix((v, (r, c)), shape=matrix.shape)

    return build(fold_rows, fold_cols, fold_values), build(held_rows, held_cols, held_values)


def strong_generalization_split(
    matrix: sparse.csr_matrix,
    n_validation_users: int,
    n_test_users: int,
    seed: int,
    held_out_fraction: float = 0.2,
    min_user_positives: int = 5,
    user_ids: np.ndarray | None = None,
    item_ids: np.ndarray | None = None,
) -> StrongGeneralizationSplit:
    """Split users into training, validation and test users, then fold in 80% of each held-out user.

    The service holds out validation users only (``n_test_users=0``) to choose its epoch.

    Items are restricted to those with at least one positive among the training users
    (a model cannot score an item it never saw; the paper does the same). A held-out user
    left with fewer than ``min_user_positives`` items after that restriction is dropped
    from evaluation.
    """
    matrix = sparse.csr_matrix(matrix, dtype=np.float32)
    n_users, n_items = matrix.shape
    if n_validation_users < 0 or n_test_users < 0 or n_validation_users + n_test_users >= n_users:
        raise ValueError(
            f"need 0 <= validation users, 0 <= test users and their sum < {n_users} users, "
            f"got {n_validation_users} and {n_test_users}"
        )
    user_ids = np.arange(n_users) if user_ids is None else np.asarray(user_ids)
    item_ids = np.arange(n_items) if item_ids is None else np.asarray(item_ids)
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_users)
    test_users = order[:n_test_users]
    validation_users = order[n_test_users : n_test_users + n_validation_users]
    train_users = np.sort(order[n_test_users + n_validation_users :])

    train = matrix[train_users]
    kept_items = np.flatnonzero(np.asarray(train.sum(axis=0)).ravel() > 0)

    def held_out_set(users: np.ndarray) -> FoldInSet:
        rows = matrix[np.sort(users)][:, kept_items]
        enough = np.diff(rows.indptr) >= min_user_positives
        rows = rows[enough]
        fold_in, held_out = fold_in_split(rows, held_out_fraction, rng)
        return FoldInSet(fold_in=fold_in, held_out=held_out, user_ids=user_ids[np.sort(users)][enough])

    validation = held_out_set(validation_users)
    test = held_out_set(test_users)
    return StrongGeneralizationSplit(
        train=sparse.csr_matrix(train[:, kept_items]),
        train_user_ids=user_ids[train_users],
        validation=validation,
        test=test,
        item_ids=item_ids[kept_items],
    )


def exclude_fold_in(scores: np.ndarray, fold_in: sparse.csr_matrix) -> np.ndarray:
    """A copy of ``scores`` with every fold-in item set to -inf so it is never ranked."""
    masked = np.array(scores, dtype=np.float64, copy=True)
    rows, cols = sparse.csr_matrix(fold_in).nonzero()
    masked[rows, cols] = -np.inf
    return masked


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def recall_at_k(scores: np.ndarray, held_out: sparse.csr_matrix, k: int) -> np.ndarray:
    """Per-user normalised recall: hits in the top k divided by min(k, |held-out|).

    ``scores`` must already exclude the fold-in items; users with no held-out item get NaN.
    """
    relevant = sparse.csr_matrix(held_out).toarray() > 0
    top = _top_k(scores, k)
    hits = np.take_along_axis(relevant, top, axis=1).sum(axis=1)
    denominator = np.minimum(k, relevant.sum(axis=1)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, hits / denominator, np.nan)


def ndcg_at_k(scores: np.ndarray, held_out: sparse.csr_matrix, k: int) -> np.ndarray:
    """Per-user NDCG@k with binary relevance: DCG = sum of 1/log2(rank + 1) over hits.

    The ideal DCG places all min(k, |held-out|) held-out items first; users with no
    held-out item get NaN.
    """
    relevant = sparse.csr_matrix(held_out).toarray() > 0
    top = _top_k(scores, k)
    discounts = 1.0 / np.log2(np.arange(2, top.shape[1] + 2))
    dcg = (np.take_along_axis(relevant, top, axis=1) * discounts).sum(axis=1)
    n_relevant = np.minimum(k, relevant.sum(axis=1))
    cumulative = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    ideal = cumulative[n_relevant]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ideal > 0, dcg / ideal, np.nan)


def score_fold_in(
    score: Callable[[np.ndarray], np.ndarray], fold_in: sparse.csr_matrix, batch_size: int = 512
) -> np.ndarray:
    """Scores of every item for every fold-in row, computed in batches of dense rows."""
    fold_in = sparse.csr_matrix(fold_in)
    parts = [
        np.asarray(score(fold_in[start : start + batch_size].toarray()), dtype=np.float64)
        for start in range(0, fold_in.shape[0], batch_size)
    ]
    return np.vstack(parts) if parts else np.zeros(fold_in.shape, dtype=np.float64)


def evaluate_fold_in(
    score: Callable[[np.ndarray], np.ndarray],
    users: FoldInSet,
    metrics: tuple[tuple[str, int], ...] = (("recall", 20), ("recall", 50), ("ndcg", 100)),
) -> dict[str, float]:
    """Mean of each metric over ``users``, ranking over all items except the fold-in ones.

    Returns keys such as ``"recall@20"`` and ``"ndcg@100"``.
    """
    scores = exclude_fold_in(score_fold_in(score, users.fold_in), users.fold_in)
    functions = {"recall": recall_at_k, "ndcg": ndcg_at_k}
    return {
        f"{name}@{k}": float(np.nanmean(functions[name](scores, users.held_out, k))) for name, k in metrics
    }
