"""RecommendGarments throughput and latency at 10k and 100k garments, against the health Check.

Run: ``python tests/benchmarks/bench_recommend.py [--sizes 10000 100000] [--requests 3000] [--time-cap 10]``

For each size the service runs as a subprocess (own embedded broker) over an untrained
serving-size Mult-VAE (serving cost does not depend on training); 500 shoppers get 20
interactions each through RecordInteractions (so through Kafka) before the load starts.
Rows: the health Check of the same server (reference), RecommendGarments k=10 for random
known shoppers, the same with a category filter, and SimilarGarments k=10. At 100k garments
both Flat (exact) and HNSW32 (efSearch 64) indexes are measured.
Goal: >= 0.5 of the health Check's QPS and p99 <= 10 ms at 100k garments on 2 cores.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import format_table, health_baseline, measure_unary, require_loopback  # noqa: E402
from rec_service import ServiceProcess, untrained_artifacts  # noqa: E402

from tryon.shared.proto import recommendation_service_pb2 as pb  # noqa: E402
from tryon.shared.proto import recommendation_service_pb2_grpc as pb_grpc  # noqa: E402

SHOPPERS = 500
INTERACTIONS_PER_SHOPPER = 20


def seed_histories(stub, n_garments: int) -> None:
    """Record SHOPPERS x INTERACTIONS_PER_SHOPPER interactions and wait until they are applied."""
    rng = random.Random(0)
    batch = []
    for shopper in range(SHOPPERS):
        for _ in range(INTERACTIONS_PER_SHOPPER):
            garment = f"g{rng.randrange(n_garments):0{len(str(n_garments - 1))}d}"
            batch.append(pb.Interaction(user_id=f"shopper-{shopper}", garment_id=garment, type=rng.randint(1, 4)))
            if len(batch) == 1000:
                stub.RecordInteractions(pb.RecordInteractionsRequest(interactions=batch), timeout=30)
                batch = []
    deadline = time.monotonic() + 60
    last = pb.RecommendGarmentsRequest(user_id=f"shopper-{SHOPPERS - 1}", k=1)
    while stub.RecommendGarments(last, timeout=10).history_size < INTERACTIONS_PER_SHOPPER:
        if time.monotonic() > deadline:
            raise TimeoutError("the seeded interactions were not applied within 60 s")
        time.sleep(0.1)


def run_size(n_garments: int, factory: str, args, extra_env: dict[str, str]) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-recommend-") as folder:
        data_dir = Path(folder)
        untrained_artifacts(n_garments, factory, data_dir)
        service = ServiceProcess(data_dir, extra_env)
        try:
            require_loopback(service.address)
            channel = grpc.insecure_channel(service.address)
            stub = pb_grpc.RecommendationServiceStub(channel)
            seed_histories(stub, n_garments)
            local = threading.local()

            def rng() -> random.Random:
                if not hasattr(local, "rng"):
                    local.rng = random.Random(threading.get_ident())
                return local.rng

            def recommend():
                user = f"shopper-{rng().randrange(SHOPPERS)}"
                return stub.RecommendGarments(pb.RecommendGarmentsRequest(user_id=user, k=10), timeout=10)

            def recommend_trousers():
                user = f"shopper-{rng().randrange(SHOPPERS)}"
                return stub.RecommendGarments(pb.RecommendGarmentsRequest(user_id=user, k=10, categories=[2]), timeout=10)

            def similar():
                garment = f"g{rng().randrange(n_garments):0{len(str(n_garments - 1))}d}"
                return stub.SimilarGarments(pb.SimilarGarmentsRequest(garment_id=garment, k=10), timeout=10)

            label = f"{n_garments // 1000}k {factory}"
            results = {f"{label}: health Check": health_baseline(service.address, args.requests, args.concurrency, args.time_cap)}
            for name, call in (("RecommendGarments k=10", recommend), ("RecommendGarments trousers", recommend_trousers),
                               ("SimilarGarments k=10", similar)):
                results[f"{label}: {name}"] = measure_unary(call, args.requests, args.concurrency, args.time_cap)
            channel.close()
            return results
        finally:
            service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--time-cap", type=float, default=10.0)
    args = parser.parse_args()
    plans = []
    for size in args.sizes:
        plans.append((size, "Flat", {}))
        if size >= 100_000:
            plans.append((size, "HNSW32", {"TRYON_RECOMMENDATION_EF_SEARCH": "64"}))
    for size, factory, env in plans:
        results = run_size(size, factory, args, env)
        print(format_table(results, reference=next(iter(results))), flush=True)
        print()
    print("Client and server share the machine's 2 cores; figures are noisy.")


if __name__ == "__main__":
    main()
