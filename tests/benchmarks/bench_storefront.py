"""The storefront's feed, sized try-on and 3D models over HTTP against direct gRPC, and the time until the feed shows.

Run: ``python tests/benchmarks/bench_storefront.py [--requests N] [--time-cap S] [--concurrency C] [--data-dir D]``

Starts the suite on loopback (broker, three services, a catalogue of 120 garments unless the
data folder holds one, the recommender trained on it unless it holds that model) and the storefront, gives a few shoppers a history, then measures
in closed loops from --concurrency client threads:

- ``gRPC RecommendGarments``: the bare call, k = 12;
- ``gRPC RecommendGarments + 12 GetGarment``: the same answer a browser needs (names, prices,
  pictures), fetched over gRPC as a storefront would, the 12 lookups in parallel;
- ``HTTP recommendations``: ``GET /v1/shoppers/{id}/recommendations?k=12``, the storefront's
  feed, which makes those same calls and answers JSON.

The goal of issue 13 is p99 at most 1.5x and QPS at least 0.5x of gRPC's; the ratios are printed
against both gRPC rows. Then the fitting room's heavier routes, each beside the gRPC call it makes,
for one body wearing a top and trousers at chosen sizes:

- ``RenderTryOn`` against ``GET /v1/bodies/{id}/try-on.png?garment=ID:SIZE&...`` (256 x 512, front);
- ``RenderTryOnModel`` against ``GET /v1/bodies/{id}/try-on.glb`` (texture 512, the page's);
- ``GetBodyMesh`` against ``GET /v1/bodies/{id}/mesh.glb``.
 Then headless Chromium opens the fitting room --page-loads times, each
in a fresh browser context, and the time from navigation until the feed is drawn is reported;
last, the browser tests' shopper visit (``tests/storefront/fitting_room.mjs``) runs once for the
time from each interaction to the changed feed and a screenshot of the fitting room, which
--results copies next to the document.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import tempfile
import threading
import urllib.parse
from concurrent import futures
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import grpc  # noqa: E402
import numpy as np  # noqa: E402

from loadgen import LoadResult, format_table, measure_unary, median_run, require_loopback  # noqa: E402
from tryon.services.storefront.up import (  # noqa: E402
    catalogue_size,
    register_catalogue,
    start_recommender,
    start_storefront,
)
from tryon.shared.launcher import LocalSuite  # noqa: E402
from tryon.shared.proto import (  # noqa: E402
    body_service_pb2 as body_pb,
    body_service_pb2_grpc,
    common_pb2,
    garment_service_pb2 as garment_pb,
    garment_service_pb2_grpc,
    recommendation_service_pb2 as rec_pb,
    recommendation_service_pb2_grpc,
)
from tryon.shared.results import add_results_option, record  # noqa: E402

REPOSITORY = Path(__file__).resolve().parents[2]
FEED_SIZE = 12
SHOPPERS = 8
MODEL_TEXTURE = 512
FEED_TIME_SCRIPT = """
import { chromium } from "playwright-core";
const [url, loads] = [process.argv[1], Number(process.argv[2])];
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"] });
const times = [];
for (let i = 0; i < loads; i += 1) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForSelector("body[data-ready=true]", { timeout: 30000 });
  times.push(Math.round(await page.evaluate(() => performance.getEntriesByName("feed-shown")[0].startTime)));
  await context.close();
}
await browser.close();
process.stdout.write(JSON.stringify(times) + "\\n");
"""


def seed_shoppers(recommendations, garment_ids: list[str]) -> list[str]:
    """Give each shopper a few interactions, so every call folds a real history in."""
    rng = np.random.default_rng(0)
    shoppers = [f"bench-shopper-{n}" for n in range(SHOPPERS)]
    interactions = [
        rec_pb.Interaction(user_id=user, garment_id=str(g), type=common_pb2.INTERACTION_TYPE_VIEW)
        for user in shoppers
        for g in rng.choice(garment_ids, size=5, replace=False)
    ]
    recommendations.RecordInteractions(rec_pb.RecordInteractionsRequest(interactions=interactions), timeout=30)
    return shoppers


def shopper_visit(url: str, out: Path) -> dict:
    """What the browser tests' shopper saw, with the screenshot written to `out`."""
    run = subprocess.run(
        ["node", str(REPOSITORY / "tests" / "storefront" / "fitting_room.mjs"), url, str(out)],
        capture_output=True, text=True, timeout=300, cwd=REPOSITORY, check=True,
    )
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    if "error" in seen:
        raise RuntimeError(f"the shopper's visit stopped after {seen['steps']}: {seen['error']}")
    return seen


def dressed_body(bodies, catalogue) -> tuple[str, list]:
    """A body and a top and trousers from the catalogue, each at the size one above the advised one."""
    body_id = bodies.CreateBody(body_pb.CreateBodyRequest(
        measurements=[common_pb2.MeasurementValue(name="stature", value=1680),
                      common_pb2.MeasurementValue(name="weight", value=64)],
        sex=common_pb2.SEX_FEMALE), timeout=30).body.body_id
    sized = []
    for category in (common_pb2.GARMENT_CATEGORY_T_SHIRT_TOP, common_pb2.GARMENT_CATEGORY_TROUSER):
        garment = next(g for g in catalogue if g.category == category and g.HasField("size_chart"))
        advice = bodies.AdviseSize(body_pb.AdviseSizeRequest(body_id=body_id, size_chart=garment.size_chart), timeout=30)
        labels = [fit.label for fit in advice.fits]
        label = labels[min(len(labels) - 1, labels.index(advice.recommended_size) + 1)]
        sized.append(garment_pb.TryOnGarment(garment_id=garment.garment_id, size_label=label))
    return body_id, sized


def feed_times(url: str, loads: int) -> list[int]:
    """Milliseconds from the start of navigation until the page drew the feed (its "feed-shown" mark),
    one per page load in a fresh browser context."""
    run = subprocess.run(
        ["node", "--input-type=module", "-e", FEED_TIME_SCRIPT, url, str(loads)],
        capture_output=True, text=True, timeout=300, cwd=REPOSITORY, check=True,
    )
    return json.loads(run.stdout.strip().splitlines()[-1])


def measure(suite: LocalSuite, url: str, args) -> dict[str, list[LoadResult]]:
    """Every row, --rounds times in turn."""
    require_loopback(suite.address("recommendation"))
    rec_channel = grpc.insecure_channel(suite.address("recommendation"))
    garment_channel = grpc.insecure_channel(suite.address("garment"))
    recommendations = recommendation_service_pb2_grpc.RecommendationServiceStub(rec_channel)
    garments = garment_service_pb2_grpc.GarmentServiceStub(garment_channel)
    listed = garments.ListGarments(garment_pb.ListGarmentsRequest(page_size=1000), timeout=30).garments
    shoppers = seed_shoppers(recommendations, [g.garment_id for g in listed])
    turn = iter(range(1 << 62))
    turn_lock = threading.Lock()
    lookups = futures.ThreadPoolExecutor(max_workers=FEED_SIZE * args.concurrency)
    local = threading.local()

    def shopper() -> str:
        with turn_lock:
            return shoppers[next(turn) % len(shoppers)]

    def grpc_recommend():
        request = rec_pb.RecommendGarmentsRequest(user_id=shopper(), k=FEED_SIZE)
        return recommendations.RecommendGarments(request, timeout=10)

    def grpc_feed():
        reply = grpc_recommend()
        calls = [
            lookups.submit(garments.GetGarment, garment_pb.GetGarmentRequest(garment_id=g.garment_id), timeout=10)
            for g in reply.garments
        ]
        return [call.result() for call in calls]

    host, port = urllib.parse.urlsplit(url).hostname, urllib.parse.urlsplit(url).port

    def http_feed():
        # http.client, one kept-alive connection per thread: the lightest Python client, so that the row
        # measures the storefront more than the client (through httpx the same row reached 0.24x to
        # 0.40x of the bare call's QPS on two cores, through http.client 0.72x).
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = http.client.HTTPConnection(host, port, timeout=10)
        connection.request("GET", f"/v1/shoppers/{shopper()}/recommendations?k={FEED_SIZE}")
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {body[:200]!r}")
        return body

    def http_get(path: str):
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = http.client.HTTPConnection(host, port, timeout=10)
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {body[:200]!r}")
        return body

    body_channel = grpc.insecure_channel(suite.address("body"))
    bodies = body_service_pb2_grpc.BodyServiceStub(body_channel)
    body_id, sized = dressed_body(bodies, listed)
    query = urllib.parse.urlencode([("garment", f"{g.garment_id}:{g.size_label}") for g in sized])
    rows = {
        "gRPC RecommendGarments": grpc_recommend,
        f"gRPC RecommendGarments + {FEED_SIZE} GetGarment": grpc_feed,
        "HTTP recommendations (storefront)": http_feed,
        "gRPC RenderTryOn, 2 sized garments": lambda: garments.RenderTryOn(garment_pb.RenderTryOnRequest(
            body_id=body_id, garments=sized, width=256, height=512), timeout=10),
        "HTTP try-on.png (storefront)": lambda: http_get(f"/v1/bodies/{body_id}/try-on.png?{query}&width=256&height=512"),
        "gRPC RenderTryOnModel, 2 sized garments": lambda: garments.RenderTryOnModel(garment_pb.RenderTryOnModelRequest(
            body_id=body_id, garments=sized, texture_size=MODEL_TEXTURE), timeout=10),
        "HTTP try-on.glb (storefront)": lambda: http_get(f"/v1/bodies/{body_id}/try-on.glb?{query}&texture_size={MODEL_TEXTURE}"),
        "gRPC GetBodyMesh": lambda: bodies.GetBodyMesh(body_pb.GetBodyMeshRequest(body_id=body_id), timeout=10),
        "HTTP mesh.glb (storefront)": lambda: http_get(f"/v1/bodies/{body_id}/mesh.glb"),
    }
    runs: dict[str, list[LoadResult]] = {label: [] for label in rows}
    try:
        for _ in range(args.rounds):
            for label, call in rows.items():
                runs[label].append(measure_unary(call, args.requests, args.concurrency, args.time_cap))
    finally:
        lookups.shutdown()
        body_channel.close()
        rec_channel.close()
        garment_channel.close()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--time-cap", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=1, help="times every row is measured, in turn")
    parser.add_argument("--page-loads", type=int, default=5)
    parser.add_argument("--data-dir", type=Path, help="the services' state, kept across runs (default: a new temporary folder)")
    add_results_option(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        with LocalSuite(args.data_dir or Path(folder) / "state", services=("body", "garment")) as suite:
            if catalogue_size(suite.address("garment")) == 0:
                register_catalogue(suite.address("garment"))
            start_recommender(suite)
            storefront, url = start_storefront(suite)
            try:
                runs = measure(suite, url, args)
                times = feed_times(url, args.page_loads)
                visit = shopper_visit(url, Path(folder))
            finally:
                storefront.stop(suite.grace_s)
        report = "\n".join(report_lines(args, runs, times, visit))
        print(report)
        record(args.results, "bench_storefront",
               "The storefront's feed, sized try-on and 3D models over HTTP against direct gRPC", report,
               fenced=True, pictures=[Path(folder) / "fitting-room.png", Path(folder) / "fitting-room-tryon.png"])


def report_lines(args, runs: dict[str, list[LoadResult]], times: list[int], visit: dict) -> list[str]:
    """The figures as printed and recorded."""
    results = {label: median_run(rounds) for label, rounds in runs.items()}
    lines = [f"{label}: {result.errors} errors, first {result.first_error}"
             for label, result in results.items() if result.errors]
    labels = list(results)
    lines.append(f"concurrency {args.concurrency}, {args.requests} calls or {args.time_cap:g} s per row, "
                 f"{args.rounds} round(s), k = {FEED_SIZE}")
    lines.append(format_table(results, reference=labels[0]))
    http = results[labels[2]]
    for reference in labels[:2]:
        base = results[reference]
        lines.append(f"HTTP against '{reference}': p99 {http.p99_ms / base.p99_ms:.2f}x (goal <= 1.5), "
                     f"QPS {http.qps / base.qps:.2f}x (goal >= 0.5)")
    for grpc_label, http_label in zip(labels[3::2], labels[4::2]):
        base, route = results[grpc_label], results[http_label]
        lines.append(f"'{http_label}' against '{grpc_label}': p99 {route.p99_ms / base.p99_ms:.2f}x, "
                     f"QPS {route.qps / base.qps:.2f}x")
    lines.append(f"\ntime from navigation until the feed is drawn, headless Chromium on loopback, {len(times)} fresh page loads: "
                 f"median {sorted(times)[(len(times) - 1) // 2]} ms, all {times}")
    lines.append("time from an interaction to the changed feed in the page (event through Kafka, fold-in, "
                 f"new feed drawn): like {visit['likeFeedChangeMs']} ms, try on {visit['tryOnFeedChangeMs']} ms, "
                 f"add to cart {visit['cartFeedChangeMs']} ms, dislike {visit['dislikeFeedChangeMs']} ms")
    lines.append(f"fitting room: another size changed {visit['sizeChange']['pictureChange']:.1%} of the try-on picture's pixels, "
                 f"the back view {visit['backView']['change']:.1%}; the 3D body covers {visit['model']['painted']:.0%} of its "
                 f"canvas, a turn changes {visit['model']['turnChange']:.0%} of it; one paint took {visit['model']['paintMs']:.1f} ms "
                 f"in {visit['model']['viewer']}, {visit['painterModel']['paintMs']:.0f} ms in the 2D painter "
                 f"(a page without WebGL)")
    lines.append("Client, storefront and services share the machine's cores; figures are noisy.")
    return lines


if __name__ == "__main__":
    main()
