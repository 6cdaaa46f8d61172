"""FAISS maximum-inner-product index over garment vectors, keyed by garment id.

The index is described by a FAISS factory string: "Flat" (exact, the default for small
catalogues), "IVF{n},Flat", "IVF{n},SQfp16" or "HNSW32" (approximate, for large catalogues).
All score by ``METRIC_INNER_PRODUCT``. IVF lists are clustered and probed as in the reduction of
maximum inner product to nearest neighbours (see ``_L2Reduction``): plain inner-product IVF
assigns and probes lists by the inner product with their centroids, which favours large-norm
cells and loses neighbours. "IVF{n},SQfp16" keeps the vectors as 16-bit floats: half the memory
and memory traffic of "IVF{n},Flat", with scores that are the inner products with the rounded
vectors (about 1e-3 relative). Results come back as int64 ids (through ``IndexIDMap2``, or the
IVF lists' own ids), which the index maps to garment-id strings; every other index returns
exact inner products.
``nprobe`` (IVF) and ``efSearch`` (HNSW) trade recall for speed and can be changed while serving.

When the installed FAISS has GPU support and a CUDA device is present, searches run on a GPU
copy behind a lock (GPU indexes are not safe for concurrent searches); the CPU index stays
the source of truth, takes every change and is what gets saved. With several GPUs the copy is
an ``IndexShards`` of one shard per GPU (``sharded_index``), each holding a contiguous range of
the garments, so a catalogue larger than one GPU's memory is searched on all of them at once. HNSW has no GPU form and
cannot remove vectors, so removed HNSW entries are kept as tombstones and filtered out.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import faiss
import numpy as np

from tryon.shared.files import atomic_write

logger = logging.getLogger(__name__)

GPU_MAX_K = 2048
"""Largest k a FAISS GPU index answers in one search."""
DEFAULT_NPROBE = 64
"""IVF lists searched when none is given, besides the largest-norm list: recall@10 0.963 (28x Flat's
speed) with 1024 lists at 100k item vectors and 0.995 (48x) with 4096 lists at 1M in
tests/benchmarks/bench_faiss.py, where 32 reaches 0.941 at 100k (FAISS's own default of 1 loses
most neighbours)."""
LARGE_NORM_SHARE = 0.02
"""Share of an IVF index's training vectors, the largest by norm, kept in a list that every search scans.

Inner-product top lists are dominated by large-norm vectors: in tests/benchmarks/bench_faiss.py
the largest 1% hold 69% of the exact top 10 at 100k item vectors and 95% at 1M. Scanning them
costs their share of a Flat search, and the lower bound M they give the reduction spreads the
other vectors better over the lists. At 100k with 64 of 1024 lists probed, recall@10 is 0.963
with a 2% share (0.077 ms a query), against 0.918 with 1% (which needs 128 lists and 0.097 ms
for 0.964), 0.744 with 0.1% and 0.593 with none (M the largest norm). At 1M a 2% share reaches
0.994 with only 16 of 4096 lists probed; there a 1% share gives 0.984 at 64 lists in 0.253 ms
against 2%'s 0.995 in 0.471 ms."""
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


def disable_interrupt_checks() -> None:
    """Stop FAISS from taking the GIL inside each search to look for Ctrl-C, for the rest of the process.

    The FAISS Python module installs a callback that every IVF search calls; in a server the
    search has let the GIL go so other calls can run, and taking it back mid-search waits for
    them. Without it RecommendGarments at 100k IVF garments served 1841 and 1939 calls/s
    against 1697 to 1806 (2 cores, client beside the server). A search then cannot be
    interrupted from the keyboard, which a server never needs.
    """
    faiss.InterruptCallback.clear_instance()


def gpu_available() -> bool:
    """True when FAISS was built with GPU support and sees at least one CUDA device."""
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


class _ReadWriteLock:
    """Many readers or one writer: CPU FAISS searches may run together, but not beside an add or remove."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    def acquire_read(self) -> None:
        with self._condition:
            while self._writer:
                self._condition.wait()
            self._readers += 1

    def release_read(self) -> None:
        with self._condition:
            self._readers -= 1
            if self._readers == 0 and self._writers_waiting:
                self._condition.notify_all()

    def acquire_write(self) -> None:
        with self._condition:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._condition.wait()
            finally:
                self._writers_waiting -= 1
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
        except RuntimeError as error:
            raise ValueError(f"index factory {factory!r} is not a FAISS factory string: {error}") from None
        self._reduction = None
        if isinstance(inner, faiss.IndexIVF):
            half_floats = (
                isinstance(inner, faiss.IndexIVFScalarQuantizer) and inner.sq.qtype == faiss.ScalarQuantizer.QT_fp16
            )
            if not (isinstance(inner, faiss.IndexIVFFlat) or half_floats) or not isinstance(
                faiss.downcast_index(inner.quantizer), faiss.IndexFlat
            ):
                raise ValueError(f"IVF index factories must read 'IVF{{n}},Flat' or 'IVF{{n}},SQfp16'; got {factory!r}")
            if inner.nlist < 2:
                raise ValueError(f"an IVF index needs at least 2 lists (one holds the largest norms); got {factory!r}")
            # Half floats are decoded with SIMD only for widths that are a multiple of the SIMD width.
            width = -(-(dim + 1) // _HALF_FLOAT_WIDTH_MULTIPLE) * _HALF_FLOAT_WIDTH_MULTIPLE if half_floats else dim + 1
            self._reduction = _L2Reduction(dim, width, large_norm_share)
            inner = faiss.index_factory(width, factory, faiss.METRIC_INNER_PRODUCT)
            if half_floats:
                # Residuals would add each list's centroid score, which here carries -|C|^2 / 2.
                inner.by_residual = False
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
            if self._reduction is None:
                self._cpu.train(vectors)
            else:
                self._reduction.train(self._cpu, vectors)

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
        """Vectors held by the FAISS index, removed HNSW entries included."""
        return int(self._cpu.ntotal)

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
            # The largest-norm list is always probed on top of the nprobe nearest ones.
            space.set_index_parameter(index, "nprobe", int(self._nprobe) + 1)
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
                else:
                    self._reduction.add(self._cpu, vectors, int_ids)
                self._garment_ids.extend(garment_ids)
            finally:
                self._search_lock.release_write()
            for garment_id, int_id in zip(garment_ids, int_ids.tolist()):
                self._int_ids[garment_id] = int_id
            if self._reduction is not None:
                # A GPU index would assign the lists by its own quantizer: copy it afresh instead.
                self._gpu_stale = True
            elif self._gpu_index is not None and not self._gpu_stale:
                self._gpu_index.add_with_ids(vectors, int_ids)

    def remove(self, garment_ids: Iterable[str]) -> int:
        """Remove garments (unknown ids are ignored); returns how many were removed."""
        with self._lock:
            int_ids = [self._int_ids.pop(g) for g in garment_ids if g in self._int_ids]
            if not int_ids:
                return 0
            self._search_lock.acquire_write()
            try:
                self._cpu.remove_ids(np.asarray(int_ids, dtype=np.int64))
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
                gpus = faiss.get_num_gpus()
                if self._gpu_resources is None:
                    self._gpu_resources = [faiss.StandardGpuResources() for _ in range(gpus)]
                if gpus > 1:
                    resources = self._gpu_resources
                    self._gpu_index = sharded_index(
                        self._cpu, len(self._garment_ids), gpus,
                        place=lambda shard, number: faiss.index_cpu_to_gpu(resources[number], number, shard),
                    )
                else:
                    self._gpu_index = faiss.index_cpu_to_gpu(self._gpu_resources[0], 0, self._cpu)
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
        ``skip`` (how many garments ``keep`` is known to drop at most, such as seen ones) and
        ``keep_rate`` (the expected share of the others it keeps) size the first fetch: with
        ``keep_rate`` 1 it is exactly ``k + skip``, which always suffices, and below 1 it
        over-fetches so that one search usually does.
        """
        return self._locked(self._search, self._checked(queries, k), k, keep, keep_rate, skip)

    def search_ids(self, queries: np.ndarray, k: int) -> np.ndarray:
        """``search`` without ``keep``, as int ids: ``[rows, k]``, best first, -1 past the last garment found.

        For a caller that reads many hits' properties from arrays indexed by int id (``id_bound``)
        and names only a few (``garment_ids_of``): naming every hit of a 200-hit search took more
        processor time than the FAISS search itself.
        """
        return self._locked(self._search_ids, self._checked(queries, k), k)

    def _checked(self, queries: np.ndarray, k: int) -> np.ndarray:
        """The queries as a contiguous float32 ``[rows, dim]`` array; ValueError for a k under 1."""
        if k <= 0:
            raise ValueError(f"k must be positive; got {k}")
        return np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dim)

    def _locked(self, search, *arguments):
        """``search(*arguments)`` as searches may run together: one at a time on a GPU, under the read lock on CPU."""
        _limit_search_threads()
        if self._want_gpu:
            # GPU indexes are not safe for concurrent searches.
            with self._lock:
                return search(*arguments)
        self._search_lock.acquire_read()
        try:
            return search(*arguments)
        finally:
            self._search_lock.release_read()

    def _search_ids(self, queries: np.ndarray, k: int) -> np.ndarray:
        found = np.full((len(queries), k), -1, dtype=np.int64)
        total = self._stored_count()
        if total == 0:
            return found
        searcher = self._searcher()
        limit = min(total, GPU_MAX_K) if searcher is not self._cpu else total
        fetch = min(limit, k + len(self._tombstones))
        if self._reduction is not None:
            queries = self._reduction.query_form(queries)
        pending = np.arange(len(queries))
        while len(pending):
            _, ids = searcher.search(queries[pending], fetch)
            # Removed garments are gone from the FAISS index; only HNSW tombstones come back, and leave holes
            # that the hits after them close (FAISS itself pads a row with -1 after its last hit).
            if self._tombstones:
                ids[np.isin(ids, np.fromiter(self._tombstones, dtype=np.int64))] = -1
                ids = np.take_along_axis(ids, np.argsort(ids < 0, axis=1, kind="stable"), axis=1)
            ids = ids[:, :k]
            found[pending, : ids.shape[1]] = ids
            if fetch >= limit:
                break
            pending = pending[ids[:, -1] < 0]
            fetch = min(limit, fetch * 4)
        return found

    def id_bound(self) -> int:
        """One more than the largest int id given so far (``search_ids``'s ids are below it)."""
        with self._lock:
            return len(self._garment_ids)

    def garment_ids_of(self, int_ids: Iterable[int]) -> list[str | None]:
        """The garment id of each int id (None for a removed garment)."""
        with self._lock:
            garment_ids = self._garment_ids
            return [garment_ids[int_id] for int_id in int_ids]

    def int_ids_of(self, garment_ids: Iterable[str]) -> np.ndarray:
        """The int ids of the garments of ``garment_ids`` in the index (the others are left out)."""
        with self._lock:
            int_ids = self._int_ids
            return np.array([int_ids[g] for g in garment_ids if g in int_ids], dtype=np.int64)

    def _search(self, queries, k, keep, keep_rate, skip) -> list[list[tuple[str, float]]]:
        total = self._stored_count()
        if total == 0:
            return [[] for _ in range(len(queries))]
        searcher = self._searcher()
        limit = min(total, GPU_MAX_K) if searcher is not self._cpu else total
        if keep is None:
            fetch = k
        elif keep_rate >= 1.0:
            fetch = k + skip
        else:
            fetch = int(1.5 * (k + skip) / max(keep_rate, 1e-3)) + 16
        fetch = min(limit, fetch + len(self._tombstones))
        pending = list(range(len(queries)))
        results: list[list[tuple[str, float]]] = [[] for _ in range(len(queries))]
        if self._reduction is not None:
            queries = self._reduction.query_form(queries)
        while pending:
            scores, ids = searcher.search(queries[pending], fetch)
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
                mapping["ivf_layout"] = _IVF_LAYOUT
            # Ids first, index last: ``load`` refuses an index whose vector count its id map does not expect.
            atomic_write(_ids_path(path), json.dumps(mapping))
            atomic_write(path, lambda temporary: faiss.write_index(self._cpu, str(temporary)))

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
            if mapping.get("ivf_layout") != _IVF_LAYOUT or cpu.d != index._reduction.width:
                raise ValueError(f"{path} holds an IVF index in an older layout; rebuild it with the train command")
            index._reduction.max_norm = mapping["max_norm"]
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


def sharded_index(
    index: faiss.Index,
    id_bound: int,
    shards: int,
    place: Callable[[faiss.Index, int], faiss.Index] | None = None,
) -> faiss.IndexShards:
    """``index`` split into ``shards`` indexes searched together, each holding a contiguous range of ids.

    ``index`` holds vectors with int ids in [0, ``id_bound``); shard ``n`` is a copy keeping the
    ids of its range, handed to ``place(shard, n)`` (a GPU per shard, for instance) or kept on
    the CPU. A search asks every shard (in parallel threads) and merges their results by score:
    the same results as ``index``, since each shard of an IVF index keeps the same lists. HNSW
    graphs cannot drop vectors, so they cannot be split this way (ValueError).
    """
    if shards < 1:
        raise ValueError(f"shards must be at least 1; got {shards}")
    if hasattr(_base_index(index), "hnsw"):
        raise ValueError("an HNSW index cannot be split into shards: its graph cannot drop vectors")
    # Threaded, with the shards' own ids; the first shard added sets the metric results merge by.
    combined = faiss.IndexShards(index.d, True, False)
    bounds = np.linspace(0, id_bound, shards + 1).round().astype(np.int64)
    for number in range(shards):
        shard = faiss.clone_index(index)
        shard.remove_ids(faiss.IDSelectorNot(faiss.IDSelectorRange(int(bounds[number]), int(bounds[number + 1]))))
        combined.add_shard(place(shard, number) if place is not None else shard)
    return combined


_IVF_LAYOUT = "inner-product lists by L2 reduction, largest norms in the last list"
"""Marks IVF files written in ``_L2Reduction``'s layout; files without it must be rebuilt."""

_ALWAYS_PROBED = 1e30
"""Inner product of every query with the largest-norm list's centroid: that list always comes first."""

_HALF_FLOAT_WIDTH_MULTIPLE = 16
"""IVF half-float vectors are zero-padded to a multiple of this width: 208 wide, the 201 + 1 of the
serving model searched in 80 us instead of 740 us (100k garments, 128 + 1 of 1024 lists, one thread)."""


class _L2Reduction:
    """IVF lists clustered and probed as in the reduction of maximum inner product to L2 (Bachrach et al. 2014).

    Under the reduction a vector x with |x| <= M is [x, sqrt(M^2 - |x|^2)] and a query q is
    [q, 0], so |x' - q'|^2 = M^2 + |q|^2 - 2 x.q: L2 order is inner-product order, and k-means
    on the reduced vectors gives lists that do not favour large-norm cells. The index itself
    scores by inner product in d + 1 dimensions so that one FAISS search does everything and
    returns exact inner products: a garment is stored as [x, 0] and a query is [q, 1]; a reduced
    centroid C = [c, e] becomes [c, -|C|^2 / 2], whose inner product with [q, 1] ranks the
    lists exactly as the L2 distance between [q, 0] and C does. Vectors longer than M have no
    reduced form; they go to the last list, whose centroid [0, 1e30] puts it first for every
    query, so they are always scanned. M is set at training so that the largest
    ``large_norm_share`` of the training vectors lie above it; garments added later with a
    larger norm land in that list too. Lists are assigned by the L2 distance of the reduced
    vector to C, not by the inner-product quantizer, so adds go through ``add``.
    """

    def __init__(self, dim: int, width: int, large_norm_share: float) -> None:
        self.dim = dim
        self.width = width
        self.large_norm_share = large_norm_share
        self.max_norm: float | None = None
        self._assigner: faiss.IndexFlatL2 | None = None

    def _reduced(self, vectors: np.ndarray, squared_norms: np.ndarray) -> np.ndarray:
        extra = np.sqrt(np.maximum(self.max_norm**2 - squared_norms, 0.0)).astype(np.float32)
        return np.hstack([vectors, extra[:, None]])

    def train(self, lists: faiss.IndexIVF, vectors: np.ndarray) -> None:
        """Set M, cluster the reduced vectors below it into all lists but the last, and fill the quantizer."""
        squared_norms = _squared_norms(vectors)
        self.max_norm = float(np.sqrt(np.quantile(squared_norms, 1.0 - self.large_norm_share)))
        below = squared_norms <= self.max_norm**2
        clustering = faiss.index_factory(self.dim + 1, f"IVF{lists.nlist - 1},Flat", faiss.METRIC_L2)
        clustering.train(self._reduced(vectors[below], squared_norms[below]))
        reduced_centroids = clustering.quantizer.reconstruct_n(0, lists.nlist - 1)
        centroids = np.zeros((lists.nlist, self.width), dtype=np.float32)
        centroids[:-1, : self.dim] = reduced_centroids[:, : self.dim]
        centroids[:-1, self.dim] = -0.5 * _squared_norms(reduced_centroids)
        centroids[-1, self.dim] = _ALWAYS_PROBED
        lists.quantizer.add(centroids)
        # With its quantizer full, training only marks the index trained (half floats need no training).
        lists.train(self.stored_form(vectors[:1]))
        # Adds recover C from the quantizer, as they must after loading, so both assign alike.
        self._assigner = None

    def _list_assigner(self, lists: faiss.IndexIVF) -> faiss.IndexFlatL2:
        """The reduced centroids C, recovered from the quantizer: e^2 = -2 b - |c|^2."""
        if self._assigner is None:
            centroids = lists.quantizer.reconstruct_n(0, lists.nlist - 1)
            directions = centroids[:, : self.dim]
            extra = np.sqrt(np.maximum(-2.0 * centroids[:, self.dim] - _squared_norms(directions), 0.0))
            self._assigner = faiss.IndexFlatL2(self.dim + 1)
            self._assigner.add(np.hstack([directions, extra[:, None].astype(np.float32)]))
        return self._assigner

    def add(self, lists: faiss.IndexIVF, vectors: np.ndarray, int_ids: np.ndarray) -> None:
        """Add vectors to their nearest reduced list or, above M, to the last list."""
        squared_norms = _squared_norms(vectors)
        large = squared_norms > self.max_norm**2
        assigned = np.full(len(vectors), lists.nlist - 1, dtype=np.int64)
        if not large.all():
            _, nearest = self._list_assigner(lists).search(self._reduced(vectors[~large], squared_norms[~large]), 1)
            assigned[~large] = nearest[:, 0]
        stored = self.stored_form(vectors)
        int_ids = np.ascontiguousarray(int_ids, dtype=np.int64)
        lists.add_core(len(stored), faiss.swig_ptr(stored), faiss.swig_ptr(int_ids), faiss.swig_ptr(assigned))

    def stored_form(self, vectors: np.ndarray) -> np.ndarray:
        """[x, 0] (zero-padded to the width): the inner product with a query's [q, 1] is x.q."""
        stored = np.zeros((len(vectors), self.width), dtype=np.float32)
        stored[:, : self.dim] = vectors
        return stored

    def query_form(self, queries: np.ndarray) -> np.ndarray:
        """[q, 1] (zero-padded): the inner product with a centroid [c, -|C|^2 / 2] ranks lists as the reduction does."""
        extended = np.zeros((len(queries), self.width), dtype=np.float32)
        extended[:, : self.dim] = queries
        extended[:, self.dim] = 1.0
        return extended


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
