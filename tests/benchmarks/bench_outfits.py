"""RecommendOutfits and CompleteOutfit latency at 100k garments, over the learned compatibility space.

Run: ``python tests/benchmarks/bench_outfits.py [--garments 100000] [--factory IVF1024,Flat] [--requests 1000] [--results docs/results.md]``

A real gRPC server on loopback (port 0) serves serving-shaped artifacts (``rec_service.py``:
serving-size Mult-VAE over ``--garments`` garments, its item index built by ``--factory`` as a
100k catalogue is served, nprobe 64) plus a type-aware compatibility model trained
for a few epochs on simulated outfit sessions (its quality does not change the cost); 200 shoppers
get 20 purchases each before the load. The role-pair indexes are exact (Flat) up to 5,000 garments
of a role and IVF above (``outfit_index.role_index_options``). A RecommendOutfits call makes one
search of the item index (the shopper's favourite tops and dresses together), reads each anchor's
nearest garments of the missing roles from the table the outfit index looked up when it was built,
and scores the combinations as arrays. Rows: the health Check (reference), RecommendOutfits k=10
for those shoppers, and CompleteOutfit k=10 from one random top. Goal: RecommendOutfits p99 <= 10 ms
at 100k garments on 2 cores.

The client runs in a process of its own, as a storefront's would (``--same-process`` puts it beside the
server, sharing its interpreter lock, as this benchmark did before). The server starts as the service
does: FAISS searches without interrupt checks (``index.disable_interrupt_checks``), start-up's objects
frozen out of the garbage collector (``gc.freeze``), each call logged at INFO (here to nowhere).
Client and server share the machine's 2 cores.

Beside the latencies: how long the recommender (the outfit index and its table included) took to
build, the server's garbage collections during the load, whether the table and the one taste search
give the same garments as a search per anchor and per role (answer agreement), and where one call
spends its processor time (each stage's function clocked by ``time.thread_time`` over
``--profile-calls`` calls of the servicer in one thread, without gRPC).
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import LoadResult, format_table, health_baseline, measure_unary, require_loopback  # noqa: E402
from rec_service import serving_shaped_artifacts  # noqa: E402

from tryon.services.recommendation.catalogue import DRESS_CATEGORIES, TOP_CATEGORIES  # noqa: E402
from tryon.services.recommendation.compatibility import CompatibilityConfig, train_compatibility  # noqa: E402
from tryon.services.recommendation.domain import RecommendationDomain  # noqa: E402
from tryon.services.recommendation.history import InteractionKind  # noqa: E402
from tryon.services.recommendation.index import disable_interrupt_checks  # noqa: E402
from tryon.services.recommendation.outfits import ROLES, role_of  # noqa: E402
from tryon.services.recommendation.recommender import ModelArtifacts, Recommender  # noqa: E402
from tryon.services.recommendation.servicer import RecommendationServicer, registration  # noqa: E402
from tryon.services.recommendation.simulator import OutfitSessionSimulator, session_outfits  # noqa: E402
from tryon.shared.proto import recommendation_service_pb2 as pb  # noqa: E402
from tryon.shared.proto import recommendation_service_pb2_grpc as pb_grpc  # noqa: E402
from tryon.shared.logs import configure_logging  # noqa: E402
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
    parser.add_argument("--profile-calls", type=int, default=300, help="RecommendOutfits calls profiled without gRPC")
    parser.add_argument("--same-process", action="store_true", help="run the client threads in the server's process")
    parser.add_argument("--client", nargs=2, metavar=("ADDRESS", "TOPS_FILE"), help=argparse.SUPPRESS)
    add_results_option(parser)
    arguments = parser.parse_args(argv)
    if arguments.client:
        address, tops_file = arguments.client
        tops = json.loads(Path(tops_file).read_text(encoding="utf-8"))
        rows = measure_rows(address, tops, arguments.requests, arguments.concurrency)
        print(json.dumps({label: dataclasses.asdict(result) for label, result in rows.items()}))
        return
    with tempfile.TemporaryDirectory() as folder:
        serving_shaped_artifacts(arguments.garments, arguments.factory, Path(folder))
        artifacts = ModelArtifacts.load(Path(folder) / "artifacts", nprobe=64)
    simulator = OutfitSessionSimulator(artifacts.catalogue, seed=0)
    interactions, _ = simulator.sessions(simulator.make_shoppers(1000), sessions_per_shopper=3)
    artifacts.compatibility, _ = train_compatibility(
        artifacts.catalogue, session_outfits(interactions), CompatibilityConfig(epochs=3), progress=False
    )
    started, processor = time.perf_counter(), time.process_time()
    recommender = Recommender(artifacts)
    built = (time.perf_counter() - started, time.process_time() - processor)
    rng = random.Random(0)
    ids = artifacts.catalogue.garment_ids
    for shopper in range(SHOPPERS):
        for _ in range(20):
            recommender.apply_interaction(f"shopper-{shopper}", rng.choice(ids), InteractionKind.PURCHASE)
    tops = [g for g, c in zip(ids, artifacts.catalogue.categories) if role_of(c) == "top"]
    servicer = RecommendationServicer(RecommendationDomain(recommender, _NoPublisher()))
    # As the service's start-up ends: FAISS searches without interrupt checks, start-up's objects frozen.
    disable_interrupt_checks()
    collection = _full_collection_ms()
    gc.freeze()
    frozen_collection = _full_collection_ms()
    # As the service logs (its default LOG_LEVEL and LOG_FLUSH_SECONDS), to nowhere.
    configure_logging("recommendation", "INFO", stream=open(os.devnull, "w"), flush_seconds=0.2)
    running = serve("recommendation", [registration(servicer)], ServerSettings())
    require_loopback(running.address)
    title = f"RecommendOutfits and CompleteOutfit at {arguments.garments} garments"
    with recording_stdout(arguments.results, "bench_outfits", title):
        with _CollectionClock() as collections:
            if arguments.same_process:
                results = measure_rows(running.address, tops, arguments.requests, arguments.concurrency)
            else:
                results = _measure_in_client_process(running.address, tops, arguments)
        factories = sorted({index.factory for index in recommender.outfit_index.indexes.values()})
        client = "the server's process" if arguments.same_process else "a process of their own"
        print(f"{arguments.garments} garments, item index {arguments.factory}, role-pair indexes {', '.join(factories)}, "
              f"{arguments.concurrency} client threads in {client}, "
              f"FAISS on {'GPU' if recommender.outfit_index.indexes[(0, 1)].uses_gpu else 'CPU'}")
        print(format_table(results, "health Check"))
        print(f"recommender built in {built[0]:.1f} s ({built[1]:.1f} s of processor time), its outfit index's "
              f"nearest table of {sum(len(t) for t in recommender.outfit_index.nearest_table.values())} rows included")
        print(f"a full garbage collection took {collection:.1f} ms over the server's objects after start-up, "
              f"{frozen_collection:.2f} ms once gc.freeze() had set them aside (as the service's start-up does)")
        print(collections.summary())
        print(agreement(recommender, random.Random(1)))
        print(profile(recommender, servicer, arguments.profile_calls, random.Random(2)))
    running.stop(grace=0)


def measure_rows(address: str, tops: list[str], requests: int, concurrency: int) -> dict[str, LoadResult]:
    """The three rows of the table, measured by closed-loop client threads of this process against ``address``."""
    rng = random.Random(0)
    channel = grpc.insecure_channel(address)
    stub = pb_grpc.RecommendationServiceStub(channel)
    try:
        return {
            "health Check": health_baseline(address, requests, concurrency),
            "RecommendOutfits k=10 (known shoppers)": measure_unary(
                lambda: stub.RecommendOutfits(
                    pb.RecommendOutfitsRequest(user_id=f"shopper-{rng.randrange(SHOPPERS)}", k=10), timeout=10
                ),
                requests, concurrency, 120,
            ),
            "CompleteOutfit k=10 (one top)": measure_unary(
                lambda: stub.CompleteOutfit(pb.CompleteOutfitRequest(garment_ids=[rng.choice(tops)], k=10), timeout=10),
                requests, concurrency, 120,
            ),
        }
    finally:
        channel.close()


def _measure_in_client_process(address: str, tops: list[str], arguments: argparse.Namespace) -> dict[str, LoadResult]:
    """``measure_rows`` in a child process of this script, so that client and server hold separate interpreter locks."""
    with tempfile.TemporaryDirectory() as folder:
        tops_file = Path(folder) / "tops.json"
        tops_file.write_text(json.dumps(tops), encoding="utf-8")
        finished = subprocess.run(
            [sys.executable, __file__, "--client", address, str(tops_file),
             "--requests", str(arguments.requests), "--concurrency", str(arguments.concurrency)],
            capture_output=True, text=True, check=True,
        )
    rows = json.loads(finished.stdout.strip().splitlines()[-1])
    return {label: LoadResult(**fields) for label, fields in rows.items()}


def _full_collection_ms() -> float:
    """Milliseconds one full garbage collection of this process takes now."""
    started = time.perf_counter()
    gc.collect()
    return 1000 * (time.perf_counter() - started)


class _CollectionClock:
    """Counts this process's garbage collections by generation, and times the longest, while the block runs."""

    def __init__(self) -> None:
        self.counts = [0, 0, 0]
        self.longest = 0.0
        self._started = 0.0

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        self.counts[info["generation"]] += 1
        self.longest = max(self.longest, time.perf_counter() - self._started)

    def __enter__(self) -> _CollectionClock:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *_: object) -> None:
        gc.callbacks.remove(self._callback)

    def summary(self) -> str:
        """One line: collections per generation and the longest pause."""
        return (
            f"server's garbage collections during the load: {sum(self.counts)} (generations 0/1/2: "
            f"{'/'.join(map(str, self.counts))}), the longest {1000 * self.longest:.2f} ms"
        )


def agreement(recommender: Recommender, rng: random.Random, anchors_per_pair: int = 2000) -> str:
    """How often the table and the one taste search answer as a search per anchor and per role does."""
    outfit_index = recommender.outfit_index
    space = outfit_index.space
    same_rows = rows = 0
    for (anchor_role, target), table in outfit_index.nearest_table.items():
        members = np.flatnonzero(space.roles == anchor_role)
        anchors = np.sort(np.asarray(rng.sample(members.tolist(), min(anchors_per_pair, len(members)))))
        searched = outfit_index._searched(anchors, target, 4, None)
        same_rows += int((outfit_index.nearest_many(anchors, target, 4) == searched).all(axis=1).sum())
        rows += len(anchors)
    same_anchors = 0
    for shopper in range(SHOPPERS):
        query = recommender.user_query(f"shopper-{shopper}")
        per_role = [
            g
            for allowed in (TOP_CATEGORIES, DRESS_CATEGORIES)
            for g, _ in recommender.item_index.search(
                query[None, :], 12, keep=lambda g, allowed=allowed: recommender.garment(g).category in allowed,
                keep_rate=0.5,
            )[0]
        ]
        same_anchors += recommender._outfit_anchors(query, set()) == per_role
    return (
        f"answer agreement: table rows equal to a search of 4 per anchor {same_rows} of {rows} "
        f"({', '.join(f'{ROLES[a]}->{ROLES[t]}' for a, t in outfit_index.nearest_table)}); "
        f"anchors of one taste search equal to a search per role {same_anchors} of {SHOPPERS} shoppers"
    )


def profile(recommender: Recommender, servicer: RecommendationServicer, calls: int, rng: random.Random) -> str:
    """Processor time per RecommendOutfits call by stage (one thread, no gRPC), and one fold-in's.

    Each stage's function is wrapped, on its instance, by a processor-time clock (a profiler
    would add its own overhead to every line of Python).
    """
    spent: dict[str, list[float]] = {}

    def clocked(owner, name: str, label: str) -> None:
        function = getattr(owner, name)

        def wrapper(*args, **options):
            started = time.thread_time()
            try:
                return function(*args, **options)
            finally:
                spent.setdefault(label, []).append(time.thread_time() - started)

        setattr(owner, name, wrapper)

    stages = [
        (servicer, "RecommendOutfits", "RecommendOutfits in the servicer"),
        (recommender, "_outfit_anchors", "  taste search (tops and dresses)"),
        (recommender.item_index, "search_ids", "    of which ItemIndex.search_ids"),
        (recommender.outfit_index, "complete_anchors", "  completions (table and scores)"),
        (recommender, "_rank_outfits", "  ranking (taste, spread)"),
    ]
    for owner, name, label in stages:
        spent[label] = []
        clocked(owner, name, label)
    try:
        for _ in range(calls):
            servicer.RecommendOutfits(pb.RecommendOutfitsRequest(user_id=f"shopper-{rng.randrange(SHOPPERS)}", k=10), None)
    finally:
        for owner, name, _ in stages:
            delattr(owner, name)
    spent["fold-in after a new interaction"] = []
    clocked(recommender, "user_query", "fold-in after a new interaction")
    try:
        for number in range(calls):
            recommender.apply_interaction(f"profiled-{number}", recommender.item_index.garment_ids()[number], InteractionKind.VIEW)
            recommender.user_query(f"profiled-{number}")
    finally:
        delattr(recommender, "user_query")
    lines = [f"processor time of one RecommendOutfits call by stage, in ms ({calls} calls, one thread, no gRPC):", ""]
    lines.append(f"{'stage':36s} {'per call':>9s} {'p50':>7s} {'p99':>7s}")
    for label, seconds in spent.items():
        values = 1000 * np.asarray(seconds)
        lines.append(
            f"{label:36s} {values.sum() / calls:9.3f} {np.percentile(values, 50):7.3f} {np.percentile(values, 99):7.3f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
