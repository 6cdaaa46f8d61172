"""FAISS capacity: bytes per garment, queries per second per core and recall@10 per index type, and memory at 1M-100M.

Run: ``nice -n 10 python tests/benchmarks/bench_faiss_capacity.py [--sizes 100000 1000000] [--queries 200]
[--build-budget 400] [--nlist 1024] [--results docs/results.md]``

Item vectors are ``bench_faiss.make_vectors``'s: the recommender's item vectors of 201 floats
(the serving Mult-VAE's 200 hidden units and the bias), low rank like learned embeddings. Flat,
IVF-Flat and HNSW32 are built and searched through ItemIndex, as the service serves them (IVF
with its lists by the L2 reduction of inner product, ``nprobe`` 64 of ``--nlist`` lists, 1024 by
default at every size so that the run stays within minutes; HNSW with efSearch 128). ItemIndex does not serve product quantisation; IVF-PQ is built here with
FAISS directly on the same reduction (vectors [x, sqrt(M^2 - |x|^2)] padded to 208 floats, 52
sub-quantisers of 8 bits, the same lists and nprobe), to show what it would save and cost.

Measured: the bytes of each index as FAISS writes it (its in-memory layout; the garment-id map
and the rest of a garment's state are in the ``bench_replica_memory`` section), the median time
of a search of one query on one thread (queries per second per core = 1 / that time), and
recall@10 against Flat's exact top 10. Derived: the memory at 1M, 10M and 100M garments from the
bytes per garment measured (a line through the two largest sizes, so fixed parts such as
centroids and codebooks are kept apart). An index whose build exceeds ``--build-budget`` seconds
is reported as skipped, and so is one whose build the last size's, scaled linearly, says would
exceed it (not started). On a GPU (when FAISS sees one) each ItemIndex is searched on it too.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench_faiss import DIM, K, build_bounded, collection_nlist, make_vectors, per_query_search, recall  # noqa: E402

from tryon.services.recommendation.index import DEFAULT_EF_SEARCH, DEFAULT_NPROBE, ItemIndex, gpu_available  # noqa: E402
from tryon.shared.results import add_results_option, recording_stdout  # noqa: E402

PQ_WIDTH = 208
"""Reduced vectors (201 + 1) padded to a multiple of the 52 sub-quantisers' 4 floats each."""
PQ_CODE_BYTES = 52
PROJECTED = (1_000_000, 10_000_000, 100_000_000)
BUILD_THREADS = 1
"""Threads of a build: on a shared machine OpenMP teams of two spent most of a build waiting at barriers."""


class PQIndex:
    """IVF-PQ over the L2 reduction of inner product, answering ``search`` as ItemIndex does."""

    def __init__(self, items: np.ndarray, nlist: int, budget_s: float) -> None:
        started = time.perf_counter()
        norms = np.einsum("ij,ij->i", items, items)
        self.max_norm = float(norms.max())
        self.index = faiss.index_factory(PQ_WIDTH, f"IVF{nlist},PQ{PQ_CODE_BYTES}x8", faiss.METRIC_L2)
        # Polysemous training (reordering codes for Hamming filtering, which these searches do not
        # use) took minutes of simulated annealing at 5,000 vectors.
        self.index.do_polysemous_training = False
        # Each sub-quantiser's k-means on 39 points a centroid (FAISS's least) and 10 rounds: it
        # otherwise took most of the build.
        self.index.pq.cp.max_points_per_centroid = 39
        self.index.pq.cp.niter = 10
        sample = np.random.default_rng(1).choice(len(items), min(len(items), 40 * nlist), replace=False)
        self.index.train(self._stored(items[np.sort(sample)], norms[np.sort(sample)]))
        self.complete = True
        for start in range(0, len(items), 50_000):
            stop = min(len(items), start + 50_000)
            self.index.add(self._stored(items[start:stop], norms[start:stop]))
            if time.perf_counter() - started > budget_s and stop < len(items):
                self.complete = False
                break
        self.index.nprobe = DEFAULT_NPROBE
        self.build_s = time.perf_counter() - started

    def _stored(self, vectors: np.ndarray, norms: np.ndarray) -> np.ndarray:
        stored = np.zeros((len(vectors), PQ_WIDTH), dtype=np.float32)
        stored[:, : vectors.shape[1]] = vectors
        stored[:, vectors.shape[1]] = np.sqrt(np.maximum(self.max_norm - norms, 0.0))
        return stored

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
        padded = np.zeros((len(queries), PQ_WIDTH), dtype=np.float32)
        padded[:, : queries.shape[1]] = queries
        _, ids = self.index.search(padded, k)
        return [[(str(int(i)), 0.0) for i in row if i >= 0] for row in ids]

    def nbytes(self) -> int:
        return int(faiss.serialize_index(self.index).nbytes)


def saved_bytes_and_gpu_ms(index: ItemIndex, queries: np.ndarray) -> tuple[int, float | None]:
    """Bytes of the FAISS file ItemIndex writes (its id map beside it left out), and, when FAISS sees
    a GPU, the median ms of a single-query search on the GPU copy of the loaded index."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "index.faiss"
        index.save(path)
        size = path.stat().st_size
        if not gpu_available():
            return size, None
        loaded = ItemIndex.load(path, use_gpu=True)
        _, ms = per_query_search(loaded, queries)
        return size, ms if loaded.uses_gpu else None


def predicted_over_budget(earlier: list[dict], name: str, n_items: int, budget_s: float) -> float | None:
    """The build seconds expected at ``n_items`` from the largest earlier build of ``name``'s family,
    when they exceed the budget (builds grow at least linearly); else None."""
    builds = [row for row in earlier if family(row["index"]) == family(name) and not row.get("skipped")]
    if not builds:
        return None
    largest = max(builds, key=lambda row: row["n"])
    expected = largest["build_s"] * n_items / largest["n"]
    return expected if expected > budget_s else None


def bench_size(n_items: int, n_queries: int, budget_s: float, earlier: list[dict], nlist: int) -> list[dict]:
    """One row per index type at ``n_items`` garments; a build expected over budget is not started."""
    items, queries, _ = make_vectors(n_items, n_queries)
    nlist = nlist or collection_nlist(n_items)
    rows = []
    faiss.omp_set_num_threads(BUILD_THREADS)
    flat, flat_build = build_bounded("Flat", items, budget_s)
    faiss.omp_set_num_threads(1)
    truth, flat_ms = per_query_search(flat, queries)
    size, on_gpu = saved_bytes_and_gpu_ms(flat, queries)
    rows.append({"n": n_items, "index": "Flat", "build_s": flat_build, "ms": flat_ms, "recall": 1.0, "bytes": size, "gpu_ms": on_gpu})
    del flat
    for factory in (f"IVF{nlist},Flat", "HNSW32"):
        expected = predicted_over_budget(earlier, factory, n_items, budget_s)
        if expected is not None:
            rows.append({"n": n_items, "index": factory, "build_s": expected, "skipped": True})
            continue
        faiss.omp_set_num_threads(BUILD_THREADS)
        index, build_s = build_bounded(factory, items, budget_s, nlist)
        faiss.omp_set_num_threads(1)
        if index is None:
            rows.append({"n": n_items, "index": factory, "build_s": build_s, "skipped": True})
            continue
        index.set_search_parameters(nprobe=DEFAULT_NPROBE, ef_search=DEFAULT_EF_SEARCH)
        found, ms = per_query_search(index, queries)
        size, on_gpu = saved_bytes_and_gpu_ms(index, queries)
        rows.append({"n": n_items, "index": factory, "build_s": build_s, "ms": ms, "recall": recall(found, truth), "bytes": size, "gpu_ms": on_gpu})
        del index
    name = f"IVF{nlist},PQ{PQ_CODE_BYTES}x8"
    expected = predicted_over_budget(earlier, name, n_items, budget_s)
    if expected is not None:
        rows.append({"n": n_items, "index": name, "build_s": expected, "skipped": True})
        return rows
    faiss.omp_set_num_threads(BUILD_THREADS)
    pq = PQIndex(items, nlist, budget_s)
    faiss.omp_set_num_threads(1)
    if not pq.complete:
        rows.append({"n": n_items, "index": name, "build_s": pq.build_s, "skipped": True})
    else:
        found, ms = per_query_search(pq, queries)
        rows.append({"n": n_items, "index": name, "build_s": pq.build_s, "ms": ms, "recall": recall(found, truth), "bytes": pq.nbytes()})
    return rows


def family(name: str) -> str:
    if name == "Flat":
        return "Flat"
    if name.startswith("HNSW"):
        return "HNSW32"
    return "IVF-PQ" if ",PQ" in name else "IVF-Flat"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200, help="single-query searches per index")
    parser.add_argument("--build-budget", type=float, default=400.0, help="seconds one index may take to build")
    parser.add_argument("--nlist", type=int, default=1024,
                        help="IVF lists at every size (0: about 4 sqrt(n), the service's rule, whose k-means at 1M takes far longer)")
    add_results_option(parser)
    args = parser.parse_args()
    with recording_stdout(args.results, "bench_faiss_capacity", "FAISS capacity: bytes per garment, QPS per core, recall@10, memory at scale"):
        lists = f"{args.nlist} lists at every size" if args.nlist else "about 4 sqrt(n) lists"
        print(f"item vectors of {DIM} floats; one query per search on one thread; recall@{K} against Flat; "
              f"IVF {lists}, nprobe {DEFAULT_NPROBE}; HNSW efSearch {DEFAULT_EF_SEARCH}; GPU: "
              f"{'present' if gpu_available() else 'none (no GPU figures)'}\n")
        rows = []
        for n_items in args.sizes:
            rows.extend(bench_size(n_items, args.queries, args.build_budget, rows, args.nlist))
        print("Measured:\n")
        print("| garments | index | build s | bytes / garment | ms / query | QPS per core | recall@10 | GPU ms / query |")
        print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for row in rows:
            if row.get("skipped"):
                print(f"| {row['n']:,} | {row['index']} | >{row['build_s']:.0f} | skipped: build over the budget of {args.build_budget:.0f} s (expected or reached) | | | | |")
                continue
            print(f"| {row['n']:,} | {row['index']} | {row['build_s']:.1f} | {row['bytes'] / row['n']:,.1f} | "
                  f"{row['ms']:.3f} | {1000 / row['ms']:,.0f} | {row['recall']:.3f} | "
                  f"{'-' if row.get('gpu_ms') is None else format(row['gpu_ms'], '.3f')} |")

        print("\nDerived (bytes(n) = fixed + per garment x n through the two largest measured sizes; one size: bytes / n):\n")
        print("| index | fixed MiB | bytes / garment | " + " | ".join(f"{n // 1_000_000}M garments GiB" for n in PROJECTED) + " |")
        print("| --- | ---: | ---: | " + " | ".join("---:" for _ in PROJECTED) + " |")
        for name in ("Flat", "IVF-Flat", "IVF-PQ", "HNSW32"):
            measured = sorted((row["n"], row["bytes"]) for row in rows if family(row["index"]) == name and not row.get("skipped"))
            if not measured:
                continue
            if len(measured) >= 2:
                (n1, b1), (n2, b2) = measured[-2:]
                per = (b2 - b1) / (n2 - n1)
                fixed = b1 - per * n1
            else:
                (n1, b1), = measured
                per, fixed = b1 / n1, 0.0
            projected = " | ".join(f"{(fixed + per * n) / 2**30:,.1f}" for n in PROJECTED)
            print(f"| {name} | {max(fixed, 0.0) / 2**20:,.1f} | {per:,.1f} | {projected} |")
        print("\nIVF centroids are the fixed part, about 0.8 KB a list (the service's rule of about 4 sqrt(n) lists "
              "gives 12,600 lists at 10M, 10 MiB). A Flat search's time grows with n (QPS per core at 10M and 100M: "
              f"about 1/{PROJECTED[1] // args.sizes[-1]} and 1/{PROJECTED[2] // args.sizes[-1]} of the largest measured); "
              "IVF and HNSW grow far slower, and 100M garments need IVF-PQ or IndexShards over several machines' or GPUs' memory.")


if __name__ == "__main__":
    main()
