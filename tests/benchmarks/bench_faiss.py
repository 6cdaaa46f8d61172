"""FAISS approximate indexes against exact Flat search: speed-up and recall@10 at 100k and 1M garments.

Run: ``python tests/benchmarks/bench_faiss.py [--sizes 100000 1000000] [--queries 300] [--build-budget 240]
[--families ivf hnsw] [--large-norm-share 0.02]``

Vectors have the shape of the recommender's item vectors: d = 200 + 1 (W_i of the serving
Mult-VAE's last hidden layer and the bias b_i), of low intrinsic rank like learned
embeddings (varied norms, a bias column); queries are [h, 1]. Every index is built and
searched through ItemIndex, as the service does (IVF with lists by L2 reduction, its list of the
largest norms scanned by every search, and about 4 sqrt(n) lists trained on 40 vectors a list;
the IVF family is measured with float32 vectors and with half floats). Searches are one query at a
time on one thread, as a RecommendGarments call makes them; the per-query time of each index is divided into Flat's, measured in the
same run on the same queries. An index whose build exceeds --build-budget seconds is
reported as skipped, so the run stays bounded in time; memory stays under a few GiB at 1M.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tryon.services.recommendation.index import LARGE_NORM_SHARE, ItemIndex  # noqa: E402
from tryon.services.recommendation.train import SERVING_CONFIG  # noqa: E402
from tryon.shared.results import add_results_option, recording_stdout  # noqa: E402

DIM = SERVING_CONFIG.latent_dim + 1
"""Size of the served RecVAE's item vectors: its linear decoder's rows [W_i, b_i]."""
RANK = 32
"""Intrinsic rank of the item vectors and queries."""
K = 10


def make_vectors(n_items: int, n_queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Item vectors [W, b] and user queries [h, 1] of low intrinsic rank, as learned embeddings are.

    Items are a rank-32 Gaussian map (the returned ``basis`` [32, 200]) into 200 dimensions plus
    noise, with log-normal norms and a popularity bias; queries are tanh features of the same
    rank, tanh(N(0, 1) @ basis). Not clustered, so approximate indexes get no easy partition.
    """
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(RANK, DIM - 1)).astype(np.float32) / np.sqrt(RANK)
    items = np.empty((n_items, DIM), dtype=np.float32)
    for start in range(0, n_items, 100_000):
        stop = min(n_items, start + 100_000)
        factors = rng.normal(size=(stop - start, RANK)).astype(np.float32)
        scale = rng.lognormal(0.0, 0.25, size=(stop - start, 1)).astype(np.float32)
        noise = 0.1 * rng.normal(size=(stop - start, DIM - 1)).astype(np.float32)
        items[start:stop, :-1] = scale * (factors @ basis + noise)
        items[start:stop, -1] = rng.normal(-1.0, 0.5, size=stop - start)
    queries = np.tanh(rng.normal(size=(n_queries, RANK)).astype(np.float32) @ basis)
    return items, np.hstack([queries, np.ones((n_queries, 1), dtype=np.float32)]), basis


def per_query_search(index: ItemIndex, queries: np.ndarray) -> tuple[np.ndarray, float]:
    """Top-K item numbers of each query, searched one at a time, and the median milliseconds per query.

    The median, not the mean: on a shared machine a few searches are descheduled mid-way.
    """
    found = np.empty((len(queries), K), dtype=np.int64)
    times = np.empty(len(queries))
    for row, query in enumerate(queries):
        started = time.perf_counter()
        result = index.search(query[None, :], K)[0]
        times[row] = time.perf_counter() - started
        found[row] = [int(garment_id) for garment_id, _ in result]
    return found, float(np.median(times)) * 1000


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of the exact top-K found."""
    return float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth)]))


def collection_nlist(n_items: int) -> int:
    """IVF lists for a collection: the power of two nearest 4 sqrt(n) (1024 at 100k, 4096 at 1M)."""
    return 2 ** round(math.log2(4 * math.sqrt(n_items)))


def build_bounded(
    factory: str, items: np.ndarray, budget_s: float, nlist: int = 0, large_norm_share: float = LARGE_NORM_SHARE
) -> tuple[ItemIndex | None, float]:
    """The ItemIndex built from ``factory``, or None when the build ran over budget.

    IVF lists are trained on 40 vectors a list, FAISS's recommended least, to bound k-means time.
    """
    started = time.perf_counter()
    index = ItemIndex(DIM, factory, use_gpu=False, large_norm_share=large_norm_share)
    if not index.is_trained:
        sample = np.random.default_rng(1).choice(len(items), min(len(items), 40 * nlist), replace=False)
        index.train(items[np.sort(sample)])
    chunk = 50_000
    for start in range(0, len(items), chunk):
        stop = min(len(items), start + chunk)
        index.add([str(number) for number in range(start, stop)], items[start:stop])
        if time.perf_counter() - started > budget_s and stop < len(items):
            return None, time.perf_counter() - started
    return index, time.perf_counter() - started


def bench_size(
    n_items: int,
    n_queries: int,
    budget_s: float,
    families: tuple[str, ...] = ("ivf", "hnsw"),
    large_norm_share: float = LARGE_NORM_SHARE,
) -> list[tuple]:
    items, queries, _ = make_vectors(n_items, n_queries)
    faiss.omp_set_num_threads(2)
    flat, flat_build = build_bounded("Flat", items, budget_s)
    faiss.omp_set_num_threads(1)
    truth, flat_ms = per_query_search(flat, queries)
    rows = [(n_items, "Flat", "-", flat_build, flat_ms, 1.0, 1.0)]
    del flat
    nlist = collection_nlist(n_items)
    plans = [
        (f"IVF{nlist},Flat", "nprobe", [16, 32, 64, 128, 256]),
        (f"IVF{nlist},SQfp16", "nprobe", [16, 32, 64, 128]),
        ("HNSW32", "ef_search", [16, 32, 64, 128, 256]),
    ]
    plans = [plan for plan in plans if plan[0][:3].lower() in {family[:3] for family in families}]
    for factory, parameter, values in plans:
        faiss.omp_set_num_threads(2)
        index, build_s = build_bounded(factory, items, budget_s, nlist, large_norm_share)
        faiss.omp_set_num_threads(1)
        if index is None:
            rows.append((n_items, factory, "skipped: build over budget", build_s, float("nan"), float("nan"), float("nan")))
            continue
        for value in values:
            index.set_search_parameters(**{parameter: value})
            found, ms = per_query_search(index, queries)
            rows.append((n_items, factory, f"{parameter}={value}", build_s, ms, flat_ms / ms, recall(found, truth)))
        del index
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--build-budget", type=float, default=240.0, help="seconds per index build before it is skipped")
    parser.add_argument("--families", nargs="+", default=["ivf", "hnsw"], choices=["ivf", "hnsw"],
                        help="approximate index families to measure against Flat")
    parser.add_argument("--large-norm-share", type=float, default=LARGE_NORM_SHARE,
                        help="share of IVF training vectors, the largest by norm, in the list every search scans")
    add_results_option(parser)
    args = parser.parse_args()
    with recording_stdout(args.results, "bench_faiss", "FAISS indexes against exact Flat search"):
        print(f"{'garments':>9} {'index':<16} {'setting':<26} {'build s':>8} {'ms/query':>9} {'speed-up':>9} {'recall@10':>9}")
        for size in args.sizes:
            for n, factory, setting, build_s, ms, speedup, rec in bench_size(size, args.queries, args.build_budget, tuple(args.families), args.large_norm_share):
                print(f"{n:>9} {factory:<16} {setting:<26} {build_s:>8.1f} {ms:>9.3f} {speedup:>9.1f} {rec:>9.3f}", flush=True)
        print("speed-up = Flat median ms/query / index median ms/query, same queries, same run; one query per search, one thread.")
        print("goal: speed-up >= 10 at recall@10 >= 0.95. Timings on a shared 2-core machine are noisy.")
        if "ivf" in args.families:
            print(f"IVF: lists by L2 reduction of inner product; the largest {args.large_norm_share:.1%} of training vectors by norm in a list every search scans.")


if __name__ == "__main__":
    main()
