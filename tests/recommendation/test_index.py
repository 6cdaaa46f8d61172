"""ItemIndex: exact and approximate inner-product search, updates, tuning and persistence."""

from __future__ import annotations

import json

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


@pytest.fixture(scope="module")
def item_vectors():
    """Vectors shaped like the recommender's: items [W_i, b_i] and queries [h, 1], d = 201.

    Clustered and of low intrinsic rank, with log-normal norms and a bias column, as learned
    item vectors are; the varied norms are what the IVF reduction to L2 search must handle.
    """
    rng = np.random.default_rng(11)
    n_items, dim, rank, n_clusters = 4000, 201, 32, 50
    basis = rng.normal(size=(rank, dim - 1)) / np.sqrt(rank)
    centres = rng.normal(size=(n_clusters, rank))

    def factors(n):
        return centres[rng.integers(0, n_clusters, n)] + 0.8 * rng.normal(size=(n, rank))

    scale = rng.lognormal(0.0, 0.25, size=(n_items, 1))
    items = scale * (factors(n_items) @ basis + 0.1 * rng.normal(size=(n_items, dim - 1)))
    items = np.hstack([items, rng.normal(-1.0, 0.5, size=(n_items, 1))]).astype(np.float32)
    queries = np.hstack([np.tanh(factors(N_QUERIES) @ basis), np.ones((N_QUERIES, 1))]).astype(np.float32)
    return [f"garment-{i}" for i in range(n_items)], items, queries


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


IVF_STORAGES = ["Flat", "SQfp16"]
SCORE_TOLERANCE = {"Flat": 1e-5, "SQfp16": 2e-3}
"""Relative error of IVF scores: float32 vectors give exact inner products, half floats about 1e-3."""


@pytest.mark.parametrize("storage", IVF_STORAGES)
def test_ivf_top_k_agrees_with_flat_on_varied_norms(item_vectors, storage):
    ids, vectors, queries = item_vectors
    index = ItemIndex.build(ids, vectors, f"IVF64,{storage}", nprobe=8)
    assert recall_at_k(index, ids, vectors, queries) >= 0.9


@pytest.mark.parametrize("storage", IVF_STORAGES)
def test_ivf_scores_are_inner_products_best_first(item_vectors, storage):
    ids, vectors, queries = item_vectors
    index = ItemIndex.build(ids, vectors, f"IVF64,{storage}", nprobe=8)
    position = {garment_id: i for i, garment_id in enumerate(ids)}
    for query, found in zip(queries[:20], index.search(queries[:20], K)):
        scores = [score for _, score in found]
        assert len(found) == K and scores == sorted(scores, reverse=True)
        exact = [float(vectors[position[garment_id]] @ query) for garment_id, _ in found]
        assert scores == pytest.approx(exact, rel=SCORE_TOLERANCE[storage], abs=1e-5)


@pytest.mark.parametrize("storage", IVF_STORAGES)
def test_ivf_finds_large_norm_garment_added_after_training(tmp_path, item_vectors, storage):
    ids, vectors, queries = item_vectors
    index = ItemIndex.build(ids, vectors, f"IVF64,{storage}", nprobe=8)
    query = queries[:1]
    best = ids.index(index.search(query, 1)[0][0][0])
    # Longer than any training vector and the new best: a listed form of it would be penalised
    # by its excess squared norm and ranked far down.
    longest = float(np.linalg.norm(vectors, axis=1).max())
    registered = vectors[best] * (1.5 * longest / np.linalg.norm(vectors[best]))
    index.add(["registered"], registered[None, :])
    for searched in (index, _round_trip(index, tmp_path)):
        garment_id, score = searched.search(query, 1)[0][0]
        assert garment_id == "registered"
        assert score == pytest.approx(float(registered @ query[0]), rel=SCORE_TOLERANCE[storage])
    # Replacing it with a short vector moves it back into the lists; removing it drops it.
    index.add(["registered"], (0.1 * vectors[best])[None, :])
    assert index.search(query, 1)[0][0][0] == ids[best]
    index.remove(["registered"])
    assert "registered" not in [g for g, _ in index.search(query, 50)[0]] and len(index) == len(ids)


def _round_trip(index, directory):
    index.save(directory / "items.faiss")
    return ItemIndex.load(directory / "items.faiss")


@pytest.mark.parametrize("factory", ["Flat", "IVF16,Flat", "IVF16,SQfp16", "HNSW32"])
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


class _CountingSearches:
    """Stands in for the FAISS index and records the k of every search it passes on."""

    def __init__(self, inner):
        self.inner = inner
        self.ntotal = inner.ntotal
        self.fetches = []

    def search(self, queries, k):
        self.fetches.append(k)
        return self.inner.search(queries, k)


def test_skipping_known_garments_takes_one_search_of_k_plus_skip(data):
    ids, vectors, queries = data
    index = ItemIndex.build(ids, vectors, "Flat")
    seen = {g for g, _ in index.search(queries[:1], 7)[0]}
    index._cpu = counting = _CountingSearches(index._cpu)
    [row] = index.search(queries[:1], K, keep=lambda g: g not in seen, skip=len(seen))
    assert counting.fetches == [K + len(seen)]
    expected = [g for g, _ in index.search(queries[:1], K + len(seen))[0] if g not in seen]
    assert [g for g, _ in row] == expected


@pytest.mark.parametrize("factory", ["Flat", "IVF16,Flat", "IVF16,SQfp16", "HNSW32"])
def test_save_and_load_round_trip(tmp_path, data, factory):
    ids, vectors, queries = data
    index = ItemIndex.build(ids[:500], vectors[:500], factory, nprobe=4, ef_search=64)
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


def test_rejects_ivf_factories_the_layout_cannot_hold():
    with pytest.raises(ValueError, match=r"IVF\{n\},Flat' or 'IVF\{n\},SQfp16"):
        ItemIndex(8, "IVF4,SQ8")
    with pytest.raises(ValueError, match="at least 2 lists"):
        ItemIndex(8, "IVF1,Flat")


@pytest.mark.parametrize("storage", IVF_STORAGES)
def test_garments_added_after_loading_go_to_the_same_lists(tmp_path, item_vectors, storage):
    ids, vectors, queries = item_vectors
    index = ItemIndex.build(ids[:3000], vectors[:3000], f"IVF32,{storage}", nprobe=2)
    loaded = _round_trip(index, tmp_path)
    # The loaded index recovers the clustering from its quantizer: with 2 of 32 lists probed,
    # a different assignment of the added garments would change what the searches find.
    index.add(ids[3000:], vectors[3000:])
    loaded.add(ids[3000:], vectors[3000:])
    assert loaded.search(queries[:50], 10) == index.search(queries[:50], 10)


@pytest.mark.parametrize("storage", IVF_STORAGES)
def test_ivf_lists_hold_each_garment_where_the_l2_reduction_puts_it(tmp_path, item_vectors, storage):
    ids, vectors, _ = item_vectors
    n, dim = 2000, vectors.shape[1]
    index = ItemIndex.build(ids[:n], vectors[:n], f"IVF16,{storage}")
    index.add(["added later"], 0.5 * vectors[n : n + 1])
    index.save(tmp_path / "items.faiss")
    raw = faiss.read_index(str(tmp_path / "items.faiss"))
    max_norm = json.loads((tmp_path / "items.faiss.ids.json").read_text())["max_norm"]
    # The quantizer holds [c, -|C|^2 / 2] for each reduced centroid C = [c, e], then [0, 1e30]
    # (half-float indexes pad both with zeros to their width).
    centroids = faiss.downcast_index(raw.quantizer).reconstruct_n(0, raw.nlist).astype(np.float64)
    directions, offsets = centroids[:-1, :dim], centroids[:-1, dim]
    assert not centroids[:, dim + 1 :].any() and (raw.d == dim + 1) == (storage == "Flat")
    assert centroids[-1, dim] >= 1e29 and not centroids[-1, :dim].any()
    extra = np.sqrt(np.maximum(-2.0 * offsets - (directions**2).sum(axis=1), 0.0))
    reduced_centroids = np.hstack([directions, extra[:, None]])
    stored = np.vstack([vectors[:n], 0.5 * vectors[n : n + 1]]).astype(np.float64)
    squared_norms = (stored**2).sum(axis=1)
    reduced = np.hstack([stored, np.sqrt(np.maximum(max_norm**2 - squared_norms, 0.0))[:, None]])
    nearest = ((reduced[:, None, :] - reduced_centroids[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
    expected = np.where(squared_norms > max_norm**2, raw.nlist - 1, nearest)
    actual = np.full(n + 1, -1)
    for list_number in range(raw.nlist):
        size = raw.invlists.list_size(list_number)
        actual[faiss.rev_swig_ptr(raw.invlists.get_ids(list_number), size)] = list_number
    assert (actual == expected).mean() >= 0.99
    assert raw.invlists.list_size(raw.nlist - 1) == int((squared_norms > max_norm**2).sum()) > 0


def test_an_ivf_file_of_an_older_layout_asks_to_be_rebuilt(tmp_path, data):
    ids, vectors, _ = data
    ItemIndex.build(ids[:500], vectors[:500], "IVF16,Flat").save(tmp_path / "items.faiss")
    id_map = tmp_path / "items.faiss.ids.json"
    mapping = json.loads(id_map.read_text())
    del mapping["ivf_layout"]
    id_map.write_text(json.dumps(mapping))
    with pytest.raises(ValueError, match="rebuild"):
        ItemIndex.load(tmp_path / "items.faiss")


@pytest.mark.parametrize("factory", ["Flat", "IVF16,Flat", "HNSW32"])
def test_search_ids_are_the_garments_an_unfiltered_search_finds(data, factory):
    ids, vectors, queries = data
    # One list probed (besides the largest norms) leaves IVF rows short of 60, which widens the search.
    index = ItemIndex.build(ids[:300], vectors[:300], factory, nprobe=1, ef_search=64)
    index.remove(ids[:300:7])  # HNSW keeps them as tombstones
    index.add(["late"], vectors[300:301])
    for k in (5, 60, 400):
        found = index.search_ids(queries[:8], k)
        assert found.shape == (8, k)
        for row, hits in zip(found, index.search(queries[:8], k)):
            assert index.garment_ids_of(row[: len(hits)].tolist()) == [g for g, _ in hits]
            assert (row[len(hits) :] == -1).all()
    assert index.id_bound() == 301
    assert index.int_ids_of(["late", "never-added", ids[7]]).tolist() == [300]
