"""Strong-generalization splits, the 80/20 fold-in and the ranking metrics."""

from __future__ import annotations

import math
import zipfile

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from tryon.services.recommendation.movielens import ML100K_MEMBER, extract_ml100k, load_ml100k
from tryon.services.recommendation.protocol import (
    evaluate_fold_in,
    exclude_fold_in,
    fold_in_split,
    ndcg_at_k,
    positives_from_ratings,
    recall_at_k,
    strong_generalization_split,
)


def random_binary(n_users: int, n_items: int, density: float, seed: int) -> sparse.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < density).astype(np.float32)
    dense[:, 0] = 1.0  # every user has at least one item in a column all training users share
    return sparse.csr_matrix(dense)


def test_positives_keep_ratings_of_four_and_up_and_users_with_five():
    ratings = pd.DataFrame(
        {
            "user_id": [1] * 6 + [2] * 5 + [3] * 4,
            "item_id": [10, 11, 12, 13, 14, 15, 10, 11, 12, 13, 14, 10, 11, 12, 13],
            "rating": [5, 4, 4, 4, 4, 3, 5, 5, 5, 5, 5, 5, 5, 5, 5],
        }
    )
    matrix, users, items = positives_from_ratings(ratings)
    # user 1 has 5 positives (the 3 is dropped), user 2 has 5, user 3 only 4
    np.testing.assert_array_equal(users, [1, 2])
    np.testing.assert_array_equal(items, [10, 11, 12, 13, 14])
    assert matrix.nnz == 10 and matrix.shape == (2, 5)


def test_fold_in_split_holds_out_a_fifth_rounded_down():
    matrix = sparse.csr_matrix(np.ones((4, 23), dtype=np.float32))
    matrix[1, 10:] = 0
    matrix[2, 5:] = 0
    matrix.eliminate_zeros()
    fold_in, held_out = fold_in_split(matrix, 0.2, np.random.default_rng(0))
    np.testing.assert_array_equal(np.diff(held_out.indptr), [4, 2, 1, 4])
    np.testing.assert_array_equal(np.diff(fold_in.indptr), [19, 8, 4, 19])
    assert fold_in.multiply(held_out).nnz == 0
    np.testing.assert_array_equal((fold_in + held_out).toarray(), matrix.toarray())


def test_strong_generalization_split_sizes_and_disjoint_users():
    matrix = random_binary(200, 40, 0.3, seed=1)
    split = strong_generalization_split(matrix, 20, 30, seed=4, user_ids=np.arange(1000, 1200))
    assert split.train.shape[0] == 150
    assert split.validation.n_users == 20 and split.test.n_users == 30
    all_users = np.concatenate([split.train_user_ids, split.validation.user_ids, split.test.user_ids])
    assert len(np.unique(all_users)) == 200 and all_users.min() == 1000
    assert split.train.shape[1] == split.validation.fold_in.shape[1] == len(split.item_ids)
    for users in (split.validation, split.test):
        fold, held = np.diff(users.fold_in.indptr), np.diff(users.held_out.indptr)
        np.testing.assert_array_equal(held, ((fold + held) * 0.2).astype(int))
    again = strong_generalization_split(matrix, 20, 30, seed=4, user_ids=np.arange(1000, 1200))
    np.testing.assert_array_equal(again.test.user_ids, split.test.user_ids)
    other = strong_generalization_split(matrix, 20, 30, seed=5, user_ids=np.arange(1000, 1200))
    assert not np.array_equal(other.test.user_ids, split.test.user_ids)


def test_items_unseen_by_training_users_are_dropped():
    matrix = random_binary(50, 10, 0.5, seed=2).tolil()
    matrix[:, 9] = 0
    matrix[0, 9] = 1  # item 9 is liked by one user only
    split = strong_generalization_split(sparse.csr_matrix(matrix), 5, 5, seed=0, held_out_fraction=0.2)
    train_users = set(split.train_user_ids.tolist())
    assert (9 in split.item_ids) == (0 in train_users)


def test_split_rejects_impossible_sizes():
    with pytest.raises(ValueError, match="validation users"):
        strong_generalization_split(random_binary(10, 5, 0.5, 0), 5, 5, seed=0)


def test_recall_and_ndcg_against_hand_computed_values():
    scores = np.array([[0.9, 0.8, 0.7, 0.6, 0.5], [0.1, 0.2, 0.3, 0.4, 0.5]])
    held_out = sparse.csr_matrix(np.array([[0, 1, 0, 1, 1], [1, 0, 0, 0, 0]], dtype=np.float32))
    # user 0: top-2 = items 0,1 -> one hit of min(2, 3) = 2; user 1: top-2 = items 4,3 -> none
    np.testing.assert_allclose(recall_at_k(scores, held_out, 2), [0.5, 0.0])
    # user 0, k=5: hits at ranks 2, 4, 5 of 3 relevant
    dcg = 1 / math.log2(3) + 1 / math.log2(5) + 1 / math.log2(6)
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    # user 1, k=5: its one relevant item at rank 5
    np.testing.assert_allclose(ndcg_at_k(scores, held_out, 5), [dcg / idcg, 1 / math.log2(6)])
    np.testing.assert_allclose(ndcg_at_k(scores, held_out, 1), [0.0, 0.0])


def test_fold_in_items_are_never_ranked():
    fold_in = sparse.csr_matrix(np.array([[1, 0, 0, 0]], dtype=np.float32))
    held_out = sparse.csr_matrix(np.array([[0, 0, 1, 0]], dtype=np.float32))
    scores = exclude_fold_in(np.array([[9.0, 1.0, 2.0, 0.0]]), fold_in)
    assert scores[0, 0] == -np.inf
    np.testing.assert_allclose(recall_at_k(scores, held_out, 1), [1.0])


def test_evaluate_fold_in_reports_each_metric():
    split = strong_generalization_split(random_binary(120, 30, 0.4, seed=3), 20, 20, seed=0)
    counts = np.asarray(split.train.sum(axis=0)).ravel()
    figures = evaluate_fold_in(lambda x: np.tile(counts, (x.shape[0], 1)), split.test)
    assert set(figures) == {"recall@20", "recall@50", "ndcg@100"}
    assert all(0.0 <= value <= 1.0 for value in figures.values())


def test_extract_ml100k_takes_only_the_interaction_file(tmp_path):
    wheel = tmp_path / "recbole-1.2.1-py3-none-any.whl"
    content = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n196\t242\t3\t881250949\n"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(ML100K_MEMBER, content)
        archive.writestr("recbole/__init__.py", "raise ImportError")
    written = extract_ml100k(tmp_path, tmp_path / "data")
    assert written == tmp_path / "data" / "ml-100k.inter"
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["ml-100k.inter"]
    frame = load_ml100k(written)
    assert list(frame.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert frame.iloc[0].tolist() == [196, 242, 3.0, 881250949.0]
    with pytest.raises(FileNotFoundError, match="recbole"):
        extract_ml100k(tmp_path / "data", tmp_path / "elsewhere")


def test_summary_reports_the_paired_difference_to_ease_per_split():
    from tryon.services.recommendation.evaluate import SplitResult, summarise

    def figures(ndcg: float) -> dict[str, float]:
        return {"recall@20": ndcg, "recall@50": ndcg, "ndcg@100": ndcg}

    def result(seed: int, ease: float, vae: float) -> SplitResult:
        return SplitResult(
            seed=seed,
            n_train_users=10,
            n_items=5,
            test={"Popularity": figures(0.2), "EASE": figures(ease), "Mult-VAE": figures(vae)},
            choices={"EASE l2": 100.0},
        )

    report, summary = summarise([result(0, 0.40, 0.38), result(1, 0.50, 0.51)])
    # per split: -5% and +2%, so mean -1.5% and sample std sqrt(((-3.5)^2 + 3.5^2) / 1)
    assert summary["Mult-VAE"]["ndcg@100 vs EASE %"]["mean"] == pytest.approx(-1.5)
    assert summary["Mult-VAE"]["ndcg@100 vs EASE %"]["std"] == pytest.approx(np.sqrt(24.5))
    assert summary["Mult-VAE"]["ndcg@100 / popularity"] == pytest.approx((0.38 / 0.2 + 0.51 / 0.2) / 2)
    assert summary["EASE"]["ndcg@100"]["min"] == 0.40 and summary["EASE"]["ndcg@100"]["max"] == 0.50
    assert "| Mult-VAE |" in report and "-1.50 ± 4.95" in report
