"""RecommendOutfits and CompleteOutfit latency at 100k garments, over the learned compatibility space.

Run: ``python tests/benchmarks/bench_outfits.py [--garments 100000] [--factory IVF1024,Flat] [--requests 1000] [--results docs/results.md]``

A real gRPC server on loopback (port 0) serves serving-shaped artifacts (``rec_service.py``:
serving-size Mult-VAE over ``--garments`` garments, its item index built by ``--factory`` as a
100k catalogue is served, nprobe 64) plus a type-aware compatibility model trained
for a few epochs on simulated outfit sessions (its quality does not change the cost); 200 shoppers
get 20 purchases each before the load. The role-pair indexes are exact (Flat) up to 5,000 garments
of a role and IVF above (``outfit_index.role_index_options``). A call makes two searches of the item
index (the shopper's favourite tops and dresses) and one batched search per role pair. Rows: the health Check (reference), RecommendOutfits k=10
for those shoppers, and CompleteOutfit k=10 from one random top. Goal: RecommendOutfits p99 <= 10 ms
at 100k garments on 2 cores.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import format_table, health_baseline, measure_unary, require_loopback  # noqa: E402
from rec_service import serving_shaped_artifacts  # noqa: E402

from tryon.services.recommendation.compatibility import CompatibilityConfig, train_compatibility  # noqa: E402
from tryon.services.recommendation.domain import RecommendationDomain  # noqa: E402
from tryon.services.recommendation.history import InteractionKind  # noqa: E402
from tryon.services.recommendation.outfits import role_of  # noqa: E402
from tryon.services.recommendation.recommender import ModelArtifacts, Recommender  # noqa: E402
from tryon.services.recommendation.servicer import RecommendationServicer, registration  # noqa: E402
from tryon.services.recommendation.simulator import OutfitSessionSimulator, session_outfits  # noqa: E402
from tryon.shared.proto import recommendation_service_pb2 as pb  # noqa: E402
from tryon.shared.proto import recommendation_service_pb2_grpc as pb_grpc  # noqa: E402
from tryon.shared.results import add_results_option, recording_stdout  # noqa: E402
from tryon.shared.server import serve  # noqa: E402
from tryon.shared.settings import ServerSettings  # noqa: E402

SHOPPERS = 200


class _NoPublisher:
    def publish_interactions(self, interactions):
        raise AssertionError("the benchmark records nothing")

    def publish_user_deleted(self, user_id):
        raise AssertionError("the benchmark deletes nothing")


def main(argv: list[str] | None = None) -> None:
    """Build, serve, measure, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--garments", type=int, default=100_000)
    parser.add_argument("--factory", default="IVF1024,Flat", help="FAISS factory of the item index")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=2)
    add_results_option(parser)
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        serving_shaped_artifacts(arguments.garments, arguments.factory, Path(folder))
        artifacts = ModelArtifacts.load(Path(folder) / "artifacts", nprobe=64)
    simulator = OutfitSessionSimulator(artifacts.catalogue, seed=0)
    interactions, _ = simulator.sessions(simulator.make_shoppers(1000), sessions_per_shopper=3)
    artifacts.compatibility, _ = train_compatibility(
        artifacts.catalogue, session_outfits(interactions), CompatibilityConfig(epochs=3), progress=False
    )
    recommender = Recommender(artifacts)
    rng = random.Random(0)
    ids = artifacts.catalogue.garment_ids
    for shopper in range(SHOPPERS):
        for _ in range(20):
            recommender.apply_interaction(f"shopper-{shopper}", rng.choice(ids), InteractionKind.PURCHASE)
    tops = [g for g, c in zip(ids, artifacts.catalogue.categories) if role_of(c) == "top"]
    running = serve("recommendation", [registration(RecommendationServicer(RecommendationDomain(recommender, _NoPublisher())))], ServerSettings())
    require_loopback(running.address)
    channel = grpc.insecure_channel(running.address)
    stub = pb_grpc.RecommendationServiceStub(channel)
    title = f"RecommendOutfits and CompleteOutfit at {arguments.garments} garments"
    with recording_stdout(arguments.results, "bench_outfits", title):
        results = {
            "health Check": health_baseline(running.address, arguments.requests, arguments.concurrency),
            "RecommendOutfits k=10 (known shoppers)": measure_unary(
                lambda: stub.RecommendOutfits(
                    pb.RecommendOutfitsRequest(user_id=f"shopper-{rng.randrange(SHOPPERS)}", k=10), timeout=10
                ),
                arguments.requests, arguments.concurrency, 120,
            ),
            "CompleteOutfit k=10 (one top)": measure_unary(
                lambda: stub.CompleteOutfit(pb.CompleteOutfitRequest(garment_ids=[rng.choice(tops)], k=10), timeout=10),
                arguments.requests, arguments.concurrency, 120,
            ),
        }
        factories = sorted({index.factory for index in recommender.outfit_index.indexes.values()})
        print(f"{arguments.garments} garments, item index {arguments.factory}, role-pair indexes {', '.join(factories)}, "
              f"{arguments.concurrency} client threads, "
              f"FAISS on {'GPU' if recommender.outfit_index.indexes[(0, 1)].uses_gpu else 'CPU'}")
        print(format_table(results, "health Check"))
    channel.close()
    running.stop(grace=0)


if __name__ == "__main__":
    main()
