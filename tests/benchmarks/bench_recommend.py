"""RecommendGarments throughput and latency at 10k and 100k garments, against the health Check.

Run: ``python tests/benchmarks/bench_recommend.py [--sizes 10000 100000] [--requests 3000] [--rounds 3]``

For each size the service runs as a subprocess (own embedded broker) over serving-shaped
artifacts (``rec_service.py``: serving-size Mult-VAE, item vectors of learned-embedding
shape); 500 shoppers get 20 interactions each through RecordInteractions (so through Kafka)
and are each asked for once (their histories folded in, as on a running service) before the
load starts. Rows: the health Check of the same server (reference),
RecommendGarments k=10 for random known shoppers, the same with a category filter, the
same for unknown shoppers (a popularity answer: the same call without the fold-in and the
index search, so it shows what the search costs), and SimilarGarments k=10. The rows are
measured in ``--rounds`` rounds, each measuring every row once in turn, so that a slow spell of
the machine falls on all rows alike; the table shows each row's median round, and the ratio of
RecommendGarments k=10 to the health Check is also given per round. At 100k
garments Flat (exact), HNSW32 (efSearch 64) and IVF (lists as in bench_faiss, the default
nprobe), with float32 vectors and with half floats (SQfp16), are measured;
for each, the served top 10 of 200 shoppers is compared with exact search over the same
vectors and histories (recall@10), so speed is never bought with wrong answers unseen.
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

from loadgen import LoadResult, format_table, health_baseline, measure_unary, median_run, require_loopback  # noqa: E402
from bench_faiss import collection_nlist  # noqa: E402
from rec_service import ServiceProcess, serving_shaped_artifacts  # noqa: E402

from tryon.services.recommendation.history import InteractionKind  # noqa: E402
from tryon.services.recommendation.index import ItemIndex  # noqa: E402
from tryon.services.recommendation.recommender import ModelArtifacts, Recommender  # noqa: E402

from tryon.shared.proto import recommendation_service_pb2 as pb  # noqa: E402
from tryon.shared.proto import recommendation_service_pb2_grpc as pb_grpc  # noqa: E402
from tryon.shared.results import add_results_option, recording_stdout  # noqa: E402

SHOPPERS = 500
INTERACTIONS_PER_SHOPPER = 20
CHECKED_SHOPPERS = 200


def shopper_interactions(n_garments: int) -> list[pb.Interaction]:
    """SHOPPERS x INTERACTIONS_PER_SHOPPER seeded interactions (views to purchases) with random garments."""
    rng = random.Random(0)
    return [
        pb.Interaction(
            user_id=f"shopper-{shopper}",
            garment_id=f"g{rng.randrange(n_garments):0{len(str(n_garments - 1))}d}",
            type=rng.randint(1, 4),
        )
        for shopper in range(SHOPPERS)
        for _ in range(INTERACTIONS_PER_SHOPPER)
    ]


def seed_histories(stub, interactions: list[pb.Interaction]) -> None:
    """Record the interactions through the service and wait until every shopper's answer shows them all.

    Asking for each shopper also makes the service fold each history in once, as a running
    service has for shoppers it served before, so the measured rounds do not include every
    shopper's first answer (the fold-in is cached until the history changes).
    """
    for start in range(0, len(interactions), 1000):
        batch = interactions[start : start + 1000]
        stub.RecordInteractions(pb.RecordInteractionsRequest(interactions=batch), timeout=30)
    deadline = time.monotonic() + 60
    for shopper in range(SHOPPERS):
        request = pb.RecommendGarmentsRequest(user_id=f"shopper-{shopper}", k=10)
        while stub.RecommendGarments(request, timeout=10).history_size < INTERACTIONS_PER_SHOPPER:
            if time.monotonic() > deadline:
                raise TimeoutError("the seeded interactions were not applied within 60 s")
            time.sleep(0.1)


def exact_recall(stub, artifacts_dir: Path, interactions: list[pb.Interaction]) -> float:
    """Mean recall@10 of the service's answers against exact search over the same vectors and histories."""
    artifacts = ModelArtifacts.load(artifacts_dir)
    exact = Recommender(artifacts)
    exact.item_index = ItemIndex.build(artifacts.model_items, artifacts.model.item_embeddings(), "Flat")
    for interaction in interactions:
        exact.histories.record(interaction.user_id, interaction.garment_id, InteractionKind(interaction.type))
    recalls = []
    for shopper in range(CHECKED_SHOPPERS):
        user = f"shopper-{shopper}"
        served = stub.RecommendGarments(pb.RecommendGarmentsRequest(user_id=user, k=10), timeout=10)
        truth = {item.garment_id for item in exact.recommend(user, 10).garments}
        recalls.append(len(truth & {g.garment_id for g in served.garments}) / len(truth))
    return sum(recalls) / len(recalls)


def run_size(n_garments: int, factory: str, args, extra_env: dict[str, str]) -> tuple[dict[str, list[LoadResult]], float]:
    """Every row's runs, one per round, and the recall@10 of the served answers."""
    with tempfile.TemporaryDirectory(prefix="bench-recommend-") as folder:
        data_dir = Path(folder)
        serving_shaped_artifacts(n_garments, factory, data_dir)
        service = ServiceProcess(data_dir, extra_env)
        try:
            require_loopback(service.address)
            channel = grpc.insecure_channel(service.address)
            stub = pb_grpc.RecommendationServiceStub(channel)
            interactions = shopper_interactions(n_garments)
            seed_histories(stub, interactions)
            local = threading.local()

            def rng() -> random.Random:
                if not hasattr(local, "rng"):
                    local.rng = random.Random(threading.get_ident())
                return local.rng

            def recommend():
                user = f"shopper-{rng().randrange(SHOPPERS)}"
                return stub.RecommendGarments(pb.RecommendGarmentsRequest(user_id=user, k=10), timeout=10)

            def recommend_unknown_shopper():
                visitor = f"visitor-{rng().randrange(SHOPPERS)}"
                return stub.RecommendGarments(pb.RecommendGarmentsRequest(user_id=visitor, k=10), timeout=10)

            def recommend_trousers():
                user = f"shopper-{rng().randrange(SHOPPERS)}"
                return stub.RecommendGarments(pb.RecommendGarmentsRequest(user_id=user, k=10, categories=[2]), timeout=10)

            def similar():
                garment = f"g{rng().randrange(n_garments):0{len(str(n_garments - 1))}d}"
                return stub.SimilarGarments(pb.SimilarGarmentsRequest(garment_id=garment, k=10), timeout=10)

            label = f"{n_garments // 1000}k {factory}"
            rows = {"RecommendGarments k=10": recommend, "RecommendGarments trousers": recommend_trousers,
                    "RecommendGarments unknown": recommend_unknown_shopper, "SimilarGarments k=10": similar}
            rounds: dict[str, list[LoadResult]] = {f"{label}: health Check": []} | {f"{label}: {name}": [] for name in rows}
            for _ in range(args.rounds):
                rounds[f"{label}: health Check"].append(
                    health_baseline(service.address, args.requests, args.concurrency, args.time_cap)
                )
                for name, call in rows.items():
                    rounds[f"{label}: {name}"].append(measure_unary(call, args.requests, args.concurrency, args.time_cap))
            recall = exact_recall(stub, data_dir / "artifacts", interactions)
            channel.close()
            return rounds, recall
        finally:
            service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--time-cap", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3, help="times every row is measured, in turn")
    parser.add_argument("--indexes", nargs="+", choices=("Flat", "HNSW", "IVF", "IVF-SQfp16"),
                        default=["Flat", "HNSW", "IVF", "IVF-SQfp16"],
                        help="index families to measure (HNSW and IVF only at 100k garments and more)")
    add_results_option(parser)
    args = parser.parse_args()
    with recording_stdout(args.results, "bench_recommend", "RecommendGarments against the health Check"):
        plans = []
        for size in args.sizes:
            if "Flat" in args.indexes:
                plans.append((size, "Flat", {}))
            if size >= 100_000 and "HNSW" in args.indexes:
                plans.append((size, "HNSW32", {"TRYON_RECOMMENDATION_EF_SEARCH": "64"}))
            for family, storage in (("IVF", "Flat"), ("IVF-SQfp16", "SQfp16")):
                if size >= 100_000 and family in args.indexes:
                    plans.append((size, f"IVF{collection_nlist(size)},{storage}", {}))
        if args.rounds < 1:
            parser.error("--rounds must be at least 1")
        for size, factory, env in plans:
            rounds, recall = run_size(size, factory, args, env)
            health_label, recommend_label = list(rounds)[:2]
            print(format_table({label: median_run(runs) for label, runs in rounds.items()}, reference=health_label))
            ratios = [run.ratio_to(health) for run, health in zip(rounds[recommend_label], rounds[health_label])]
            print(f"{recommend_label} / health Check by round: {' '.join(f'{r:.2f}' for r in ratios)}"
                  f" (median {sorted(ratios)[(len(ratios) - 1) // 2]:.2f})")
            print(f"recall@10 of RecommendGarments against exact search, {CHECKED_SHOPPERS} shoppers: {recall:.3f}\n", flush=True)
        print("Client and server share the machine's 2 cores; figures are noisy.")


if __name__ == "__main__":
    main()
