"""FAISS maximum-inner-product index over garment vectors, keyed by garment id.

The index is described by a FAISS factory string: "Flat" (exact, the default for small
catalogues), "IVF{n},Flat" or "HNSW32" (approximate, for large catalogues). Flat and HNSW use
``METRIC_INNER_PRODUCT``. IVF indexes search by L2 after the reduction of maximum inner product
to nearest neighbours (see ``_L2Reduction``): inner-product IVF assigns and probes lists by the
inner product with their centroids, which favours large-norm cells and loses neighbours. Results
come back as int64 ids (through ``IndexIDMap2``, or the IVF lists' own ids), which the index maps
to garment-id strings; scores are always inner products. ``nprobe`` (IVF) and ``efSearch`` (HNSW)
trade recall for speed and can be changed while serving.

When the installed FAISS has GPU support and a CUDA device is present, searches run on a GPU
copy behind a lock (GPU indexes are not safe for concurrent searches); the CPU index stays
the source of truth, takes every change and is what gets saved. HNSW has no GPU form and
cannot remove vectors, so removed HNSW entries are kept as tombstones and filtered out.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import faiss
import numpy as np

logger = logging.getLogger(__name__)

GPU_MAX_K = 2048
"""Largest k a FAISS GPU index answers in one search."""
DEFAULT_NPROBE = 128
"""IVF lists searched when none is given: recall@10 0.966 (14x Flat's speed) with 1024 lists at
100k item vectors and 0.991 (74x) with 4096 lists at 1M in tests/benchmarks/bench_faiss.py, where
64 reaches 0.917 at 100k (FAISS's own default of 1 loses most neighbours)."""
LARGE_NORM_SHARE = 0.01
"""Share of an IVF index's training vectors, the largest by norm, searched exactly beside its lists.

Inner-product top lists are dominated by large-norm vectors: in tests/benchmarks/bench_faiss.py
the largest 1% hold 69% of the exact top 10 at 100k item vectors and 95% at 1M. Searching them
exactly costs 1% of a Flat search, and the lower bound M it gives the reduction spreads the
other vectors better over the lists: with 128 of 1024 lists probed at 100k, recall@10 is 0.966,
against 0.877 with a 0.1% share and 0.765 with none (M the largest norm)."""
DEFAULT_EF_SEARCH = 128
"""HNSW search breadth when none is given: recall@10 0.999 at 100k item vectors in
tests/benchmarks/bench_faiss.py, where FAISS's default of 16 reaches 0.81."""


_search_threads = 1
_thread_settings = threading.local()


def set_search_threads(count: int) -> None:
    """OpenMP threads of each following FAISS search, in whichever thread it runs.

    FAISS's own ``omp_set_num_threads`` holds only for the thread that calls it, while searches
    run on gRPC's worker threads, so each search applies this value to its thread first. One
    thread suits single-query searches: gRPC already runs calls in parallel, and with two
    threads a 100k-garment HNSW search took 12 ms instead of 0.5 ms on two busy cores.
    """
    if count < 1:
        raise ValueError(f"search threads must be at least 1; got {count}")
    global _search_threads
    _search_threads = count


def _limit_search_threads() -> None:
    """Apply the search thread count to the calling thread, once per thread and value."""
    if getattr(_thread_settings, "threads", None) != _search_threads:
        faiss.omp_set_num_threads(_search_threads)
        _thread_settings.threads = _search_threads


def gpu_available() -> bool:
    """True when FAISS was built with GPU support and sees at least one CUDA device."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def _atomic_write_text(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


class _ReadWriteLock:
    """Many readers or one writer: CPU FAISS searches may run together, but not beside an add or remove."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._readers = 0
        self._writer = False

    def acquire_read(self) -> None:
        with self._condition:
            while self._writer:
                self._condition.wait()
            self._readers += 1

    def release_read(self) -> None:
        with self._condition:
            self._readers -= 1
            if self._readers == 0:
                self._condition.notify_all()

    def acquire_write(self) -> None:
        with self._condition:
            while self._writer or self._readers:
                self._condition.wait()
            self._writer = True

    def release_write(self) -> None:
        with self._condition:
            self._writer = False
            self._condition.notify_all()


class ItemIndex:
    """Inner-product search over garment vectors, with add, remove, run-time tuning and save/load."""

    def __init__(
        self,
        dim: int,
        factory: str = "Flat",
        *,
        nprobe: int | None = None,
        ef_search: int | None = None,
        use_gpu: bool = True,
        large_norm_share: float = LARGE_NORM_SHARE,
    ) -> None:
        """``large_norm_share`` applies to IVF factories: see LARGE_NORM_SHARE."""
        if dim <= 0:
            raise ValueError(f"dim must be positive; got {dim}")
        if not 0.0 <= large_norm_share < 1.0:
            raise ValueError(f"large_norm_share must be in [0, 1); got {large_norm_share}")
        self.dim = dim
        self.factory = factory
        try:
            inner = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
            self._reduction = _L2Reduction(dim, large_norm_share) if isinstance(inner, faiss.IndexIVF) else None
            if self._reduction is not None:
                inner = faiss.index_factory(dim + 1, factory, faiss.METRIC_L2)
                # Stored vectors are looked up by id to score candidates by exact inner product.
                inner.set_direct_map_type(faiss.DirectMap.Hashtable)
        except RuntimeError as error:
            raise ValueError(f"index factory {factory!r} is not a FAISS factory string: {error}") from None
        self._cpu = _with_ids(inner)
        # Guards the id maps and mutations (re-entrant: add calls remove). Searches on the CPU
        # index share `_search_lock` for reading; mutations take it for writing.
        self._lock = threading.RLock()
        self._search_lock = _ReadWriteLock()
        self._garment_ids: list[str | None] = []
        self._int_ids: dict[str, int] = {}
        self._tombstones: set[int] = set()
        self._nprobe = nprobe if nprobe is not None else DEFAULT_NPROBE
        self._ef_search = ef_search if ef_search is not None else DEFAULT_EF_SEARCH
        self._apply_search_parameters(self._cpu)
        self._want_gpu = use_gpu and gpu_available()
        self._gpu_resources = None
        self._gpu_index = None
        self._gpu_stale = True

    @classmethod
    def build(
        cls,
        garment_ids: Sequence[str],
        vectors: np.ndarray,
        factory: str = "Flat",
        **options,
    ) -> ItemIndex:
        """Create an index, train it on ``vectors`` when the factory needs training, and add them."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        index = cls(vectors.shape[1], factory, **options)
        if not index.is_trained:
            index.train(vectors)
        index.add(garment_ids, vectors)
        return index

    def train(self, vectors: np.ndarray) -> None:
        """Train an IVF index's lists on ``vectors`` (a sample of the collection is enough)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        with self._lock:
            if self._cpu.is_trained:
                raise ValueError(f"index {self.factory!r} is already trained")
            self._cpu.train(vectors if self._reduction is None else self._reduction.fit(vectors))

    @property
    def is_trained(self) -> bool:
        """False for an IVF index that has not seen training vectors yet."""
        return bool(self._cpu.is_trained)

    @property
    def uses_gpu(self) -> bool:
        """True when searches run on a GPU copy."""
        return self._want_gpu

    def __len__(self) -> int:
        with self._lock:
            return len(self._int_ids)

    def _stored_count(self) -> int:
        """Vectors held by the FAISS indexes, removed HNSW entries included."""
        extra = self._reduction.large_norms.ntotal if self._reduction is not None else 0
        return int(self._cpu.ntotal) + extra

    def __contains__(self, garment_id: object) -> bool:
        with self._lock:
            return garment_id in self._int_ids

    def garment_ids(self) -> list[str]:
        """Garments in the index, in insertion order."""
        with self._lock:
            return [g for i, g in enumerate(self._garment_ids) if g is not None and i not in self._tombstones]

    def _apply_search_parameters(self, index) -> None:
        space = faiss.GpuParameterSpace() if index is not self._cpu and hasattr(faiss, "GpuParameterSpace") else faiss.ParameterSpace()
        inner = _base_index(self._cpu)
        if self._nprobe is not None and hasattr(inner, "nprobe"):
            space.set_index_parameter(index, "nprobe", int(self._nprobe))
        if self._ef_search is not None and hasattr(inner, "hnsw"):
            space.set_index_parameter(index, "efSearch", int(self._ef_search))

    def set_search_parameters(self, *, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """Change nprobe (IVF) and/or efSearch (HNSW) for the following searches."""
        with self._lock:
            if nprobe is not None:
                if nprobe <= 0:
                    raise ValueError(f"nprobe must be positive; got {nprobe}")
                self._nprobe = nprobe
            if ef_search is not None:
                if ef_search <= 0:
                    raise ValueError(f"ef_search must be positive; got {ef_search}")
                self._ef_search = ef_search
            self._apply_search_parameters(self._cpu)
            if self._gpu_index is not None:
                self._apply_search_parameters(self._gpu_index)

    def add(self, garment_ids: Sequence[str], vectors: np.ndarray) -> None:
        """Add garments; a garment already in the index gets its vector replaced."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        if len(garment_ids) != len(vectors):
            raise ValueError(f"{len(garment_ids)} garment ids for {len(vectors)} vectors")
        if len(set(garment_ids)) != len(garment_ids):
            raise ValueError("garment ids must be distinct within one add")
        with self._lock:
            if not self._cpu.is_trained:
                raise ValueError(f"index {self.factory!r} must be trained before vectors are added")
            self.remove([g for g in garment_ids if g in self._int_ids])
            start = len(self._garment_ids)
            int_ids = np.arange(start, start + len(garment_ids), dtype=np.int64)
            self._search_lock.acquire_write()
            try:
                if self._reduction is None:
                    self._cpu.add_with_ids(vectors, int_ids)
                    listed = vectors, int_ids
                else:
                    listed = self._reduction.add(self._cpu, vectors, int_ids)
                self._garment_ids.extend(garment_ids)
            finally:
                self._search_lock.release_write()
            for garment_id, int_id in zip(garment_ids, int_ids.tolist()):
                self._int_ids[garment_id] = int_id
            if self._gpu_index is not None and not self._gpu_stale and len(listed[1]):
                self._gpu_index.add_with_ids(*listed)

    def remove(self, garment_ids: Iterable[str]) -> int:
        """Remove garments (unknown ids are ignored); returns how many were removed."""
        with self._lock:
            int_ids = [self._int_ids.pop(g) for g in garment_ids if g in self._int_ids]
            if not int_ids:
                return 0
            self._search_lock.acquire_write()
            try:
                removed = np.asarray(int_ids, dtype=np.int64)
                if self._reduction is not None:
                    self._reduction.large_norms.remove_ids(removed)
                self._cpu.remove_ids(removed)
                for int_id in int_ids:
                    self._garment_ids[int_id] = None
            except RuntimeError:
                # HNSW graphs cannot drop nodes: hide them from results instead.
                self._tombstones.update(int_ids)
            finally:
                self._search_lock.release_write()
            self._gpu_stale = True
            return len(int_ids)

    def _searcher(self):
        """The index to search: the GPU copy when there is one (refreshed if stale), else the CPU index."""
        if not self._want_gpu:
            return self._cpu
        if self._gpu_stale or self._gpu_index is None:
            try:
                if self._gpu_resources is None:
                    self._gpu_resources = faiss.StandardGpuResources()
                self._gpu_index = faiss.index_cpu_to_gpu(self._gpu_resources, 0, self._cpu)
                self._apply_search_parameters(self._gpu_index)
                self._gpu_stale = False
            except RuntimeError as error:
                logger.warning("index %s has no GPU form, searching on CPU: %s", self.factory, error)
                self._want_gpu = False
                self._gpu_index = None
                return self._cpu
        return self._gpu_index

    def search(
        self,
        queries: np.ndarray,
        k: int,
        keep: Callable[[str], bool] | None = None,
        keep_rate: float = 1.0,
        skip: int = 0,
    ) -> list[list[tuple[str, float]]]:
        """The ``k`` best garments by inner product for each query row, best first.

        ``keep`` filters garments (for example by category or to leave out seen ones); the
        search over-fetches and widens until it has ``k`` kept garments or has seen them all.
        ``keep_rate`` (the expected share of garments kept) and ``skip`` (how many garments are
        known to be dropped, such as seen ones) size the first fetch so one search usually suffices.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)
        if k <= 0:
            raise ValueError(f"k must be positive; got {k}")
        _limit_search_threads()
        if self._want_gpu:
            # GPU indexes are not safe for concurrent searches.
            with self._lock:
                return self._search(queries, k, keep, keep_rate, skip)
        self._search_lock.acquire_read()
        try:
            return self._search(queries, k, keep, keep_rate, skip)
        finally:
            self._search_lock.release_read()

    def _search(self, queries, k, keep, keep_rate, skip) -> list[list[tuple[str, float]]]:
        total = self._stored_count()
        if total == 0:
            return [[] for _ in range(len(queries))]
        searcher = self._searcher()
        limit = min(total, GPU_MAX_K) if searcher is not self._cpu else total
        if keep is None:
            fetch = min(limit, k + len(self._tombstones))
        else:
            wanted = (k + skip) / min(1.0, max(keep_rate, 1e-3))
            fetch = min(limit, int(1.5 * wanted) + 16 + len(self._tombstones))
        pending = list(range(len(queries)))
        results: list[list[tuple[str, float]]] = [[] for _ in range(len(queries))]
        while pending:
            if self._reduction is None:
                scores, ids = searcher.search(queries[pending], fetch)
            else:
                scores, ids = self._reduction.search(searcher, self._cpu, queries[pending], fetch)
            still_short = []
            for row, query_number in enumerate(pending):
                kept = []
                for int_id, score in zip(ids[row].tolist(), scores[row].tolist()):
                    if int_id < 0 or int_id in self._tombstones:
                        continue
                    garment_id = self._garment_ids[int_id]
                    if garment_id is None or (keep is not None and not keep(garment_id)):
                        continue
                    kept.append((garment_id, score))
                    if len(kept) == k:
                        break
                results[query_number] = kept
                if len(kept) < k and fetch < limit:
                    still_short.append(query_number)
            pending = still_short
            fetch = min(limit, fetch * 4)
        return results

    def save(self, path: Path) -> None:
        """Write the index to ``path`` (FAISS format) and its id map beside it, each atomically."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            mapping = {
                "factory": self.factory,
                "dim": self.dim,
                "nprobe": self._nprobe,
                "ef_search": self._ef_search,
                "garment_ids": self._garment_ids,
                "tombstones": sorted(self._tombstones),
                "ntotal": int(self._cpu.ntotal),
            }
            if self._reduction is not None:
                mapping["max_norm"] = self._reduction.max_norm
                mapping["large_norms_ntotal"] = int(self._reduction.large_norms.ntotal)
                large_norms_temporary = path.with_name(_large_norms_path(path).name + ".tmp")
                faiss.write_index(self._reduction.large_norms, str(large_norms_temporary))
                os.replace(large_norms_temporary, _large_norms_path(path))
            temporary = path.with_name(path.name + ".tmp")
            faiss.write_index(self._cpu, str(temporary))
            _atomic_write_text(_ids_path(path), json.dumps(mapping))
            os.replace(temporary, path)

    @classmethod
    def load(cls, path: Path, *, nprobe: int | None = None, ef_search: int | None = None, use_gpu: bool = True) -> ItemIndex:
        """Read an index written by ``save``; nprobe/ef_search override the saved values."""
        path = Path(path)
        mapping = json.loads(_ids_path(path).read_text(encoding="utf-8"))
        cpu = faiss.read_index(str(path))
        if cpu.ntotal != mapping["ntotal"]:
            raise ValueError(f"{path} holds {cpu.ntotal} vectors but its id map expects {mapping['ntotal']}")
        index = cls(
            mapping["dim"],
            mapping["factory"],
            nprobe=nprobe if nprobe is not None else mapping["nprobe"],
            ef_search=ef_search if ef_search is not None else mapping["ef_search"],
            use_gpu=use_gpu,
        )
        if not isinstance(cpu, (faiss.IndexIDMap2, faiss.IndexIVF)):
            raise ValueError(f"{path} is not an index written by ItemIndex.save")
        if index._reduction is not None:
            if "max_norm" not in mapping:
                raise ValueError(f"{path} holds an inner-product IVF index without its L2 reduction; rebuild it")
            large_norms = faiss.read_index(str(_large_norms_path(path)))
            if large_norms.ntotal != mapping["large_norms_ntotal"]:
                raise ValueError(
                    f"{_large_norms_path(path)} holds {large_norms.ntotal} vectors but its id map "
                    f"expects {mapping['large_norms_ntotal']}"
                )
            index._reduction.max_norm = mapping["max_norm"]
            index._reduction.large_norms = large_norms
        index._cpu = cpu
        index._garment_ids = mapping["garment_ids"]
        index._tombstones = set(mapping["tombstones"])
        index._int_ids = {
            g: i for i, g in enumerate(index._garment_ids) if g is not None and i not in index._tombstones
        }
        index._apply_search_parameters(index._cpu)
        logger.info(
            "loaded FAISS index %s with %d garments from %s (gpu=%s)",
            index.factory, len(index._int_ids), path, index.uses_gpu,
        )
        return index


class _L2Reduction:
    """Maximum inner product as L2 nearest-neighbour search (Bachrach et al. 2014), for IVF indexes.

    A vector x with |x| <= M is listed as [x, sqrt(M^2 - |x|^2)] and a query q is searched as
    [q, 0], so |x' - q'|^2 = M^2 + |q|^2 - 2 x.q: the L2 order is the inner-product order, and
    the lists are clustered and probed by a distance that does not favour large-norm cells.
    Vectors longer than M have no such coordinate; they are kept in ``large_norms``, an exact
    inner-product index searched beside the lists. M is set at training so that the largest
    ``large_norm_share`` of the training vectors lie above it, and garments added later with a
    larger norm land there too, so they are always found. Candidates from the lists are scored
    by exact inner product with their stored vectors, not from the L2 distance, whose float32
    rounding grows with M^2.
    """

    def __init__(self, dim: int, large_norm_share: float) -> None:
        self.dim = dim
        self.large_norm_share = large_norm_share
        self.max_norm: float | None = None
        self.large_norms = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def fit(self, vectors: np.ndarray) -> np.ndarray:
        """Set M from training vectors; returns the listed form of those not above it, to train the lists on."""
        squared_norms = _squared_norms(vectors)
        self.max_norm = float(np.sqrt(np.quantile(squared_norms, 1.0 - self.large_norm_share)))
        below = squared_norms <= self.max_norm**2
        return self._listed(vectors[below], squared_norms[below])

    def _listed(self, vectors: np.ndarray, squared_norms: np.ndarray) -> np.ndarray:
        extra = np.sqrt(np.maximum(self.max_norm**2 - squared_norms, 0.0)).astype(np.float32)
        return np.hstack([vectors, extra[:, None]])

    def add(self, lists, vectors: np.ndarray, int_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Add vectors to the lists or, above M, to ``large_norms``; returns what went to the lists."""
        squared_norms = _squared_norms(vectors)
        large = squared_norms > self.max_norm**2
        if large.any():
            self.large_norms.add_with_ids(vectors[large], int_ids[large])
        listed_vectors = self._listed(vectors[~large], squared_norms[~large])
        listed_ids = np.ascontiguousarray(int_ids[~large])
        if len(listed_ids):
            lists.add_with_ids(listed_vectors, listed_ids)
        return listed_vectors, listed_ids

    def search(self, searcher, lists, queries: np.ndarray, fetch: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``fetch`` best ids per query by exact inner product, from the lists and ``large_norms``.

        ``searcher`` is ``lists`` or its GPU copy; stored vectors are read from ``lists``.
        """
        listed_queries = np.hstack([queries, np.zeros((len(queries), 1), dtype=np.float32)])
        _, ids = searcher.search(listed_queries, fetch)
        scores = np.full(ids.shape, -np.inf, dtype=np.float32)
        found = ids >= 0
        if found.any():
            stored = lists.reconstruct_batch(np.ascontiguousarray(ids[found]))[:, : self.dim]
            scores[found] = np.einsum("ij,ij->i", stored, queries[np.nonzero(found)[0]])
        if self.large_norms.ntotal:
            large_scores, large_ids = self.large_norms.search(queries, min(fetch, self.large_norms.ntotal))
            scores = np.hstack([scores, large_scores])
            ids = np.hstack([ids, large_ids])
        order = np.argsort(-scores, axis=1, kind="stable")[:, :fetch]
        return np.take_along_axis(scores, order, axis=1), np.take_along_axis(ids, order, axis=1)


def _squared_norms(vectors: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64)


def _with_ids(inner):
    """The index that takes garment int ids: IVF keeps ids in its lists itself; others get IndexIDMap2.

    IndexIDMap2 cannot wrap an IVF index that has vectors removed (its remove_ids assumes the
    inner index renumbers like a flat array), so IVF indexes use their native ids.
    """
    if isinstance(inner, faiss.IndexIVF):
        return inner
    return faiss.IndexIDMap2(inner)


def _base_index(index):
    """The index under an id map, downcast to its concrete type."""
    if isinstance(index, faiss.IndexIDMap2):
        return faiss.downcast_index(index.index)
    return index


def _ids_path(path: Path) -> Path:
    return path.with_name(path.name + ".ids.json")


def _large_norms_path(path: Path) -> Path:
    return path.with_name(path.name + ".large-norms.faiss")
