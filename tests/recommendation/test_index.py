"""ItemIndex: exact and approximate inner-product search, updates, tuning and persistence."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from tryon.services.recommendation.index import ItemIndex

N_ITEMS, DIM, N_QUERIES, K = 5000, 32, 200, 10


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    # Clustered vectors, as item embeddings are: uniform noise makes every ANN index look bad.
    centres = rng.normal(size=(50, DIM))
    vectors = (centres[rng.integers(0, 50, N_ITEMS)] + 0.5 * rng.normal(size=(N_ITEMS, DIM))).astype(np.float32)
    queries = (centres[rng.integers(0, 50, N_QUERIES)] + 0.5 * rng.normal(size=(N_QUERIES, DIM))).astype(np.float32)
    ids = [f"garment-{i}" for i in range(N_ITEMS)]
    return ids, vectors, queries


def exact_top_k(vectors, queries, k):
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    return flat.search(queries, k)[1]


def recall_at_k(index, ids, vectors, queries, k=K):
    truth = exact_top_k(vectors, queries, k)
    found = index.search(queries, k)
    hits = sum(len({ids[i] for i in truth_row} & {g for g, _ in found_row}) for truth_row, found_row in zip(truth, found))
    return hits / (len(queries) * k)


def test_flat_is_exact_and_scores_are_inner_products(data):
    ids, vectors, queries = data
    index = ItemIndex.build(ids, vectors, "Flat")
    assert recall_at_k(index, ids, vectors, queries) == 1.0
    garment_id, score = index.search(queries[:1], 1)[0][0]
    assert score == pytest.approx(float(vectors[ids.index(garment_id)] @ queries[0]), rel=1e-5)


@pytest.mark.parametrize(
    ("factory", "low", "high"),
    [("IVF64,Flat", {"nprobe": 1}, {"nprobe": 16}), ("HNSW32", {"ef_search": 4}, {"ef_search": 128})],
)
def test_approximate_recall_against_flat_rises_with_search_effort(data, factory, low, high):
    ids, vectors, queries = data
    index = ItemIndex.build(ids, vectors, factory, **low)
    recall_low = recall_at_k(index, ids, vectors, queries)
    index.set_search_parameters(**high)
    recall_high = recall_at_k(index, ids, vectors, queries)
    assert recall_high >= 0.9
    assert recall_high > recall_low


@pytest.mark.parametrize("factory", ["Flat", "IVF16,Flat", "HNSW32"])
def test_remove_and_replace_garments(data, factory):
    ids, vectors, queries = data
    index = ItemIndex.build(ids[:1000], vectors[:1000], factory, nprobe=16, ef_search=128)
    best = index.search(queries[:1], 1)[0][0][0]
    assert index.remove([best, "never-added"]) == 1
    assert best not in index and len(index) == 999
    assert best not in [g for g, _ in index.search(queries[:1], 50)[0]]
    # A new garment aligned with the query must come first; re-adding an id replaces its vector.
    index.add(["fresh"], queries[:1] * 10)
    assert index.search(queries[:1], 1)[0][0][0] == "fresh"
    index.add(["fresh"], -queries[:1])
    assert len(index) == 1000
    assert index.search(queries[:1], 1)[0][0][0] != "fresh"


def test_filter_over_fetches_until_k_kept(data):
    ids, vectors, queries = data
    index = ItemIndex.build(ids, vectors, "Flat")
    rare = {ids[i] for i in range(0, N_ITEMS, 500)}
    found = index.search(queries[:3], 5, keep=rare.__contains__)
    for row, query in zip(found, queries[:3]):
        assert len(row) == 5 and {g for g, _ in row} <= rare
        expected = sorted(rare, key=lambda g: -float(vectors[ids.index(g)] @ query))[:5]
        assert [g for g, _ in row] == expected
    assert len(index.search(queries[:1], 50, keep=rare.__contains__)[0]) == len(rare)


@pytest.mark.parametrize("factory", ["Flat", "HNSW32"])
def test_save_and_load_round_trip(tmp_path, data, factory):
    ids, vectors, queries = data
    index = ItemIndex.build(ids[:500], vectors[:500], factory, ef_search=64)
    index.remove([ids[3]])
    index.save(tmp_path / "items.faiss")
    loaded = ItemIndex.load(tmp_path / "items.faiss")
    assert loaded.factory == factory and len(loaded) == 499 and ids[3] not in loaded
    assert loaded.search(queries[:4], 10) == index.search(queries[:4], 10)
    assert not list(tmp_path.glob("*.tmp"))


def test_rejects_bad_factory_and_untrained_adds():
    with pytest.raises(ValueError, match="factory"):
        ItemIndex(8, "NotAnIndex")
    with pytest.raises(ValueError, match="trained"):
        ItemIndex(8, "IVF4,Flat").add(["a"], np.ones((1, 8)))
