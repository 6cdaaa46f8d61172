"""IndexShards: an index split over several shards answers as the whole index does, tested on CPU shards."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from tryon.services.recommendation import index as index_module
from tryon.services.recommendation.index import ItemIndex, sharded_index

DIM = 17
COUNT = 3000


def vectors(seed: int, count: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(count, DIM)) * rng.lognormal(0, 0.5, size=(count, 1))).astype(np.float32)


@pytest.fixture
def four_cpu_gpus(monkeypatch):
    """FAISS as if it saw four GPUs whose copies are CPU indexes: the multi-GPU path, placed on the CPU."""
    placed = []

    def onto_cpu(resources, device, index):
        placed.append(device)
        return faiss.clone_index(index)

    monkeypatch.setattr(index_module, "gpu_available", lambda: True)
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 4)
    monkeypatch.setattr(faiss, "StandardGpuResources", object, raising=False)
    monkeypatch.setattr(faiss, "index_cpu_to_gpu", onto_cpu, raising=False)
    return placed


@pytest.mark.parametrize("factory", ["Flat", "IVF16,Flat", "IVF16,SQfp16"])
def test_an_item_index_on_several_gpus_searches_shards_that_answer_as_the_whole_index(four_cpu_gpus, factory) -> None:
    garment_ids = [f"g{number}" for number in range(COUNT)]
    whole = ItemIndex.build(garment_ids, vectors(0, COUNT), factory, nprobe=4, use_gpu=False)
    sharded = ItemIndex.build(garment_ids, vectors(0, COUNT), factory, nprobe=4)
    assert sharded.uses_gpu and not whole.uses_gpu
    queries = vectors(1, 25)
    assert sharded.search(queries, 10) == whole.search(queries, 10)
    assert sorted(four_cpu_gpus) == [0, 1, 2, 3]
    # A removal and an addition reach the shards too.
    sharded.remove(["g7"])
    whole.remove(["g7"])
    extra = vectors(2, 5)
    sharded.add([f"new{n}" for n in range(5)], extra)
    whole.add([f"new{n}" for n in range(5)], extra)
    assert sharded.search(queries, 10) == whole.search(queries, 10)


def test_each_shard_holds_its_own_range_of_ids_and_hnsw_is_refused() -> None:
    flat = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    flat.add_with_ids(vectors(0, 100), np.arange(100, dtype=np.int64))
    shards = sharded_index(flat, 100, 3)
    assert [shards.at(number).ntotal for number in range(3)] == [33, 34, 33]
    assert shards.ntotal == 100
    with pytest.raises(ValueError, match="HNSW"):
        sharded_index(faiss.IndexIDMap2(faiss.IndexHNSWFlat(DIM, 8, faiss.METRIC_INNER_PRODUCT)), 10, 2)
