"""FAISS search threads: the configured count holds in every thread that searches, not only the caller's."""

from __future__ import annotations

import threading

import faiss
import numpy as np
import pytest

from tryon.services.recommendation.index import ItemIndex, set_search_threads


@pytest.fixture
def restore_search_threads():
    yield
    set_search_threads(1)


def threads_seen_by_a_new_thread(index: ItemIndex, query: np.ndarray) -> int:
    seen = []

    def search() -> None:
        index.search(query, 3)
        seen.append(faiss.omp_get_max_threads())

    worker = threading.Thread(target=search)
    worker.start()
    worker.join()
    return seen[0]


def test_searches_on_new_threads_use_the_configured_thread_count(restore_search_threads):
    rng = np.random.default_rng(0)
    index = ItemIndex.build([f"g{i}" for i in range(50)], rng.normal(size=(50, 8)))
    query = rng.normal(size=(1, 8))
    set_search_threads(2)
    assert threads_seen_by_a_new_thread(index, query) == 2
    set_search_threads(1)
    assert threads_seen_by_a_new_thread(index, query) == 1


def test_search_threads_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        set_search_threads(0)
