"""The suite end to end on one machine: broker, services, models, a shopper session, pictures.

Usage: python -m tryon.services.demo [--out var/demo]

Starts the broker (unless ``KAFKA_BOOTSTRAP_SERVERS`` is set), then BodyService and
GarmentService as separate processes, which copy their shipped default models (``make
weights``) on their first start and keep them under ``<out>/state``. A shopper gives three
numbers and gets a whole body with uncertainty, a size advice and a silhouette; both garment generators draw
samples; a catalogue is registered; RecommendationService is trained on that live catalogue
with simulated shoppers and started; new garments registered afterwards become
recommendable through their content latent; the shopper's recommendations are shown before
and after a few interactions travel RecordInteractions -> Kafka -> RecommendationService;
dresses ordered in the advised size and sent back too large move the advice for the shopper's body;
and the shopper's body is dressed in the first recommended outfit. Last, the storefront starts
over the suite and headless Chromium saves a screenshot of the fitting room as that shopper sees
it (``fitting-room.png``). Everything is shut down with SIGTERM at the end.
"""

from __future__ import annotations

import argparse
import io
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import grpc
import numpy as np
from PIL import Image

from tryon.services.garment.categories import CATEGORIES
from tryon.services.garment.dataset import load_fashion_mnist
from tryon.services.recommendation.live_catalogue import train_on_live_catalogue
from tryon.services.recommendation.recommender import ModelArtifacts
from tryon.services.recommendation.train import SERVING_FAMILY
from tryon.services.storefront.up import catalogue_request, start_storefront
from tryon.shared.contract import CATEGORY_PROTO_VALUES, category_from_proto, category_to_proto
from tryon.shared.launcher import LocalSuite
from tryon.shared.proto import (
    body_service_pb2 as body_pb,
    body_service_pb2_grpc,
    common_pb2,
    garment_service_pb2 as garment_pb,
    garment_service_pb2_grpc,
    recommendation_service_pb2 as rec_pb,
    recommendation_service_pb2_grpc,
)

SHOPPER = "demo-shopper"
CATALOGUE_PER_CATEGORY = 30
NEW_ARRIVALS = 3
LIVE_CATALOGUE_SHOPPERS = 800
SAMPLES_PER_CATEGORY = 8
EVENT_DEADLINE_S = 30.0
FIT_ORDERS = 3
"""Orders in the advised size sent back too large that the demo records at most, until the advice moves."""
CHROMIUM = "/usr/bin/chromium"
SCREENSHOT_SCRIPT = Path(__file__).resolve().parent / "storefront" / "screenshot.mjs"


def say(text: str = "") -> None:
    """One line of the demo's account."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def category_name(value: int) -> str:
    return CATEGORIES[category_from_proto(value)]


def category_value(name: str) -> int:
    return category_to_proto(CATEGORIES.index(name))


def png_grid(pngs: list[bytes], columns: int, scale: int = 3) -> Image.Image:
    """Tile equally sized PNG images into one picture, scaled up for viewing."""
    tiles = [Image.open(io.BytesIO(png)).convert("L") for png in pngs]
    width, height = tiles[0].size
    rows = (len(tiles) + columns - 1) // columns
    grid = Image.new("L", (columns * width, rows * height))
    for position, tile in enumerate(tiles):
        grid.paste(tile, ((position % columns) * width, (position // columns) * height))
    return grid.resize((grid.width * scale, grid.height * scale), Image.NEAREST)


def show_body(body: body_pb.Body) -> None:
    say(f"  {'measurement':<22}{'value':>9}  {'90% interval':>19}  source")
    for estimate in body.measurements:
        interval = f"{estimate.lower_90:8.0f} - {estimate.upper_90:<8.0f}"
        source = "given" if estimate.observed else "inferred"
        say(f"  {estimate.name:<22}{estimate.value:>9.0f}  {interval:>19}  {source} ({estimate.unit})")


def body_part(channel: grpc.Channel, out: Path) -> str:
    """Create a body from three numbers, advise a size, draw the silhouette; returns the body id."""
    bodies = body_service_pb2_grpc.BodyServiceStub(channel)
    given = {"stature": 1680.0, "weight": 64.0, "waist_circumference": 760.0}
    say(f"\n== BodyService: a shopper gives stature {given['stature']:.0f} mm, weight {given['weight']:.0f} kg, "
        f"waist {given['waist_circumference']:.0f} mm (female)")
    created = bodies.CreateBody(
        body_pb.CreateBodyRequest(
            measurements=[common_pb2.MeasurementValue(name=n, value=v) for n, v in given.items()],
            sex=common_pb2.SEX_FEMALE,
        )
    ).body
    say(f"  body {created.body_id}: {len(created.measurements)} measurements, the rest inferred by the CVAE")
    show_body(created)
    advice = bodies.AdviseSize(
        body_pb.AdviseSizeRequest(body_id=created.body_id, size_chart=common_pb2.SizeChart(chart_id="eu_womens_tops"))
    )
    # Sizes that may fit at all, likeliest first: a size no sample fits tells the shopper nothing.
    ranked = sorted(advice.fits, key=lambda fit: fit.probability, reverse=True)
    likeliest = [fit for fit in ranked if fit.probability >= 0.005]
    fits = ", ".join(f"{fit.label} {fit.probability:.2f}" for fit in likeliest[:3]) or "none"
    say(f"  size advice (eu_womens_tops): {advice.recommended_size}; sizes that may fit: {fits}")
    say(f"  decided by {advice.deciding_measurement}: {advice.explanation}")
    silhouette = bodies.RenderSilhouette(body_pb.RenderSilhouetteRequest(body_id=created.body_id))
    (out / "silhouette.png").write_bytes(silhouette.png)
    say(f"  silhouette with {len(silhouette.keypoints)} keypoints -> {out / 'silhouette.png'}")
    return created.body_id


def samples_part(channel: grpc.Channel, out: Path) -> None:
    """Draw a grid of samples from each generator, one row per category."""
    garments = garment_service_pb2_grpc.GarmentServiceStub(channel)
    say("\n== GarmentService: samples of each generator, one row per category")
    for generator, label in ((common_pb2.GENERATOR_VAE, "vae"), (common_pb2.GENERATOR_GAN, "gan")):
        pngs = []
        for category in CATEGORY_PROTO_VALUES:
            reply = garments.GenerateGarments(
                garment_pb.GenerateGarmentsRequest(
                    category=category, count=SAMPLES_PER_CATEGORY, seed=7, generator=generator
                )
            )
            pngs.extend(garment.png for garment in reply.garments)
        path = out / f"samples_{label}.png"
        png_grid(pngs, SAMPLES_PER_CATEGORY).save(path)
        say(f"  {label.upper()}: {len(pngs)} garments -> {path}")


def register(garments, images: np.ndarray, labels: np.ndarray, positions) -> dict[str, str]:
    """Register Fashion-MNIST test pictures as colour product pictures, with the storefront's shipped
    size chart for their category; returns id -> category."""
    registered = {}
    for number, position in enumerate(positions):
        label = int(labels[position])
        name = f"{CATEGORIES[label].replace('_', ' ')} no. {position}"
        request = catalogue_request(images[position], int(position), label, number, name)
        registered[garments.RegisterGarment(request).garment.garment_id] = CATEGORIES[label]
    return registered


def catalogue_part(channel: grpc.Channel) -> dict[str, str]:
    """The shop's catalogue: registered once, kept by GarmentService across runs; returns id -> category."""
    garments = garment_service_pb2_grpc.GarmentServiceStub(channel)
    listed = garments.ListGarments(garment_pb.ListGarmentsRequest(page_size=1000))
    if listed.garments:
        say(f"\n== GarmentService: the catalogue already holds {len(listed.garments)} garments")
        return {g.garment_id: category_name(g.category) for g in listed.garments}
    images, labels = load_fashion_mnist("test")
    positions = [p for label in range(len(CATEGORIES)) for p in np.flatnonzero(labels == label)[:CATALOGUE_PER_CATEGORY]]
    registered = register(garments, images, labels, positions)
    say(f"\n== GarmentService: registered a catalogue of {len(registered)} garments "
        "(Fashion-MNIST test pictures made into colour product pictures, with size charts); "
        "each published GarmentRegistered on Kafka")
    return registered


def new_arrivals_part(channel: grpc.Channel, catalogue: dict[str, str]) -> dict[str, str]:
    """Register a few new garments now, after the recommender was trained; returns id -> category."""
    garments = garment_service_pb2_grpc.GarmentServiceStub(channel)
    images, labels = load_fashion_mnist("test")
    offset = CATALOGUE_PER_CATEGORY + len(catalogue) // len(CATEGORIES)
    dresses = np.flatnonzero(labels == CATEGORIES.index("dress"))[offset : offset + NEW_ARRIVALS]
    arrivals = register(garments, images, labels, dresses)
    say(f"\n== GarmentService: {len(arrivals)} new dresses registered now, after the recommender was trained")
    return arrivals


def categories_of(reply: rec_pb.RecommendGarmentsResponse) -> str:
    counts = Counter(category_name(garment.category) for garment in reply.garments)
    return ", ".join(f"{name} x{count}" for name, count in counts.most_common())


def wait_for_history(recommendations, size: int) -> float:
    """Poll until the shopper's history has `size` interactions; returns the seconds it took."""
    started = time.monotonic()
    while True:
        reply = recommendations.RecommendGarments(rec_pb.RecommendGarmentsRequest(user_id=SHOPPER, k=1))
        if reply.history_size >= size:
            return time.monotonic() - started
        if time.monotonic() - started > EVENT_DEADLINE_S:
            raise TimeoutError(f"the recommender applied {reply.history_size} of {size} interactions in time")
        time.sleep(0.05)


def ranking(recommendations, user_id: str) -> list[str]:
    """Every garment in the shopper's order (up to 1000)."""
    reply = recommendations.RecommendGarments(rec_pb.RecommendGarmentsRequest(user_id=user_id, k=1000))
    return [garment.garment_id for garment in reply.garments]


def wait_until_recommendable(recommendations, garment_ids: list[str]) -> float:
    """Poll until the recommender has taken the GarmentRegistered events in; returns the seconds it took."""
    started = time.monotonic()
    while not set(garment_ids) <= set(ranking(recommendations, "demo-catalogue-check")):
        if time.monotonic() - started > EVENT_DEADLINE_S:
            raise TimeoutError("the recommender did not take the new garments in time")
        time.sleep(0.05)
    return time.monotonic() - started


def recommendation_part(channel: grpc.Channel, catalogue: dict[str, str], arrivals: dict[str, str]) -> list[str]:
    """Recommendations before and after a few events, new arrivals, outfits; returns outfit 1's garments."""
    recommendations = recommendation_service_pb2_grpc.RecommendationServiceStub(channel)
    waited = wait_until_recommendable(recommendations, list(arrivals))
    say(f"  the recommender took their GarmentRegistered events in within {waited * 1000:.0f} ms")
    say(f"\n== RecommendationService: shopper {SHOPPER}")
    before = recommendations.RecommendGarments(rec_pb.RecommendGarmentsRequest(user_id=SHOPPER, k=10))
    say(f"  before any event (cold start: {before.cold_start}): {categories_of(before)}")
    dresses = [garment_id for garment_id, name in catalogue.items() if name == "dress"][:4]
    sandals = [garment_id for garment_id, name in catalogue.items() if name == "sandal"][:2]
    session = [(garment_id, common_pb2.INTERACTION_TYPE_VIEW) for garment_id in dresses]
    session += [(dresses[0], common_pb2.INTERACTION_TYPE_TRY_ON), (dresses[0], common_pb2.INTERACTION_TYPE_PURCHASE)]
    session += [(garment_id, common_pb2.INTERACTION_TYPE_ADD_TO_CART) for garment_id in sandals]
    history_before = before.history_size
    sent = time.monotonic()
    recorded = recommendations.RecordInteractions(
        rec_pb.RecordInteractionsRequest(
            interactions=[
                rec_pb.Interaction(user_id=SHOPPER, garment_id=garment_id, type=kind) for garment_id, kind in session
            ]
        )
    )
    say(f"  RecordInteractions published {len(recorded.event_ids)} InteractionRecorded events "
        "(views, a try-on and a purchase of dresses, sandals in the cart)")
    wait_for_history(recommendations, history_before + len(session))
    say(f"  consumed from Kafka and folded in: {(time.monotonic() - sent) * 1000:.0f} ms from the call to the "
        "changed answer, no retraining")
    after = recommendations.RecommendGarments(rec_pb.RecommendGarmentsRequest(user_id=SHOPPER, k=10))
    say(f"  after the events (cold start: {after.cold_start}, history {after.history_size}): {categories_of(after)}")
    order = ranking(recommendations, SHOPPER)
    ranks = sorted(order.index(garment_id) + 1 for garment_id in arrivals)
    say(f"  the {len(arrivals)} new dresses rank {', '.join(map(str, ranks))} of {len(order)} for this shopper, "
        "with no interaction yet (cold start through their content latent and category)")
    outfits = recommendations.RecommendOutfits(rec_pb.RecommendOutfitsRequest(user_id=SHOPPER, k=3))
    for rank, outfit in enumerate(outfits.outfits, start=1):
        pieces = " + ".join(category_name(g.category) for g in outfit.garments)
        say(f"  outfit {rank}: {pieces} (score {outfit.score:.2f})")
    return [garment.garment_id for garment in outfits.outfits[0].garments]


def fit_part(channel: grpc.Channel, body_id: str) -> None:
    """Dresses ordered in the advised size and sent back too large, with the shopper's body (whose chest,
    AdviseSize said, is more likely below size 40's range than above it): the advice for another dress,
    learned from sizes and reasons alone."""
    recommendations = recommendation_service_pb2_grpc.RecommendationServiceStub(channel)
    say(f"\n== Fit: shopper {SHOPPER} orders dresses in the advised size and sends them back too large")
    request = rec_pb.RecommendGarmentsRequest(
        user_id=SHOPPER, k=1000, categories=[category_to_proto(CATEGORIES.index("dress"))], body_id=body_id,
        include_seen=True,
    )
    dresses = when_body_known(recommendations, request).garments
    watched = dresses[-1]

    def advice() -> rec_pb.ScoredGarment:
        reply = recommendations.RecommendGarments(request)
        return next(garment for garment in reply.garments if garment.garment_id == watched.garment_id)

    say(f"  dress {watched.garment_id[:8]}: advised size {watched.advised_size} (fit {watched.fit_probability:.0%})")
    history = recommendations.RecommendGarments(rec_pb.RecommendGarmentsRequest(user_id=SHOPPER, k=1)).history_size
    now, orders = watched, 0
    while orders < FIT_ORDERS and now.advised_size == watched.advised_size:
        dress = dresses[orders]
        orders += 1
        sized = {"garment_id": dress.garment_id, "size": dress.advised_size, "body_id": body_id}
        bought = rec_pb.Interaction(
            user_id=SHOPPER, type=common_pb2.INTERACTION_TYPE_PURCHASE, session_id=f"demo-order-{orders}", **sized
        )
        returned = rec_pb.Interaction(
            user_id=SHOPPER, type=common_pb2.INTERACTION_TYPE_RETURN,
            return_reason=common_pb2.RETURN_REASON_TOO_LARGE, **sized,
        )
        recommendations.RecordInteractions(rec_pb.RecordInteractionsRequest(interactions=[bought, returned]))
        wait_for_history(recommendations, history + 2 * orders)
        say(f"  order {orders}: dress {dress.garment_id[:8]} in size {dress.advised_size}, sent back too large")
        now = advice()
    if now.advised_size != watched.advised_size:
        say(f"  dress {watched.garment_id[:8]} now: advised size {now.advised_size} (fit {now.fit_probability:.0%}), "
            "learned from sizes and reasons; no measurement left BodyService")
    else:
        say(f"  dress {watched.garment_id[:8]} still: advised size {now.advised_size} after {orders} returns")


def when_body_known(recommendations, request: rec_pb.RecommendGarmentsRequest) -> rec_pb.RecommendGarmentsResponse:
    """The answer to ``request`` once the recommender has taken the body's BodyUpdated event in."""
    started = time.monotonic()
    while True:
        try:
            return recommendations.RecommendGarments(request)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND or time.monotonic() - started > EVENT_DEADLINE_S:
                raise
            time.sleep(0.05)


def tryon_part(channel: grpc.Channel, body_id: str, garment_ids: list[str], out: Path) -> None:
    garments = garment_service_pb2_grpc.GarmentServiceStub(channel)
    say("\n== GarmentService: the shopper's body wearing outfit 1, each garment at the body's own size")
    request = garment_pb.RenderTryOnRequest(body_id=body_id, garment_ids=garment_ids)
    # BodyService loads its mesh model in the background; until then try-on answers UNAVAILABLE.
    deadline = time.monotonic() + 120
    while True:
        try:
            picture = garments.RenderTryOn(request, timeout=60)
            break
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                raise
            time.sleep(1.0)
    verdicts = {value: name.removeprefix("FIT_VERDICT_").lower() for name, value in garment_pb.FitVerdict.items()}
    for fit in picture.fits:
        judged = ", ".join(
            f"{m.measurement} {verdicts[m.verdict]} ({m.ease_mm:+.0f} mm)" for m in fit.measurements
        )
        say(f"  {fit.garment_id[:8]}: size {fit.size_label or '- (no size chart)'} {judged}".rstrip())
    (out / "tryon.png").write_bytes(picture.png)
    say(f"  -> {out / 'tryon.png'}")


def storefront_part(suite: LocalSuite, body_id: str, out: Path) -> int:
    """Start the storefront over the suite and screenshot the fitting room as the demo shopper; its exit status."""
    say("\n== Storefront: the fitting room as the demo shopper sees it")
    storefront, url = start_storefront(suite)
    say(f"  HTTP/JSON API and fitting room at {url} (OpenAPI at {url}openapi.json)")
    try:
        if Path(CHROMIUM).exists() and shutil.which("node"):
            picture = out / "fitting-room.png"
            subprocess.run(["node", str(SCREENSHOT_SCRIPT), url, str(picture), SHOPPER, body_id],
                           check=True, timeout=120, cwd=Path(__file__).resolve().parents[1])
            say(f"  the shopper's body, feed with size advice, outfit 1 tried on -> {picture}")
        else:
            say(f"  no screenshot: it needs node and {CHROMIUM} (make setup installs both)")
    finally:
        status = storefront.stop(suite.grace_s)
    return status


def recommender_part(suite: LocalSuite) -> None:
    """Train the recommender on the live catalogue unless a model exists, then start it."""
    state = suite.data_dir / "recommendation"
    if ModelArtifacts.exists(state / "artifacts"):
        say("\n== RecommendationService: reusing the model trained on this catalogue before")
    else:
        say(f"\n== RecommendationService: training a {SERVING_FAMILY.name} on the live catalogue with "
            f"{LIVE_CATALOGUE_SHOPPERS} simulated shoppers")
        trained = time.monotonic()
        train_on_live_catalogue(suite.address("garment"), state / "artifacts", LIVE_CATALOGUE_SHOPPERS, progress=True)
        say(f"  trained in {time.monotonic() - trained:.0f} s")
    if suite.broker is not None:
        # The embedded broker keeps its log in memory: offsets saved by an earlier run point nowhere now.
        (state / "snapshot.json").unlink(missing_ok=True)
    started = time.monotonic()
    service = suite.add("recommendation")
    say(f"  {service.grpc_service} at {service.address} SERVING after {time.monotonic() - started:.0f} s "
        "(model loaded, Kafka topics replayed)")


def show_progress(service: str, line: dict) -> None:
    """One line of a service's training progress: what it trains, how far, and the time left."""
    done = f"{line['percent']:.0f}% ({line['step']}/{line['total']} {line['unit']})" if "total" in line else (
        f"{line['step']} {line['unit']}")
    left = f", about {line['eta_seconds']:.0f} s left" if "eta_seconds" in line else ""
    say(f"  [{service}] training {line['task']}: {done}{left}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("var/demo"), help="folder of the pictures and state")
    options = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the suite's processes are stopped rather than orphaned.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    out = options.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    say("== Starting the broker and BodyService, then GarmentService (a first start copies their shipped models)")
    with LocalSuite(out / "state", services=("body",), on_progress=show_progress) as suite:
        say(f"  Kafka at {suite.bootstrap_servers}{' (embedded Tansu)' if suite.broker else ''}")
        say(f"  {suite.running['body'].grpc_service} at {suite.address('body')} SERVING after "
            f"{time.monotonic() - started:.0f} s")
        garment_started = time.monotonic()
        suite.add("garment")
        say(f"  {suite.running['garment'].grpc_service} at {suite.address('garment')} SERVING after "
            f"{time.monotonic() - garment_started:.0f} s; logs in {suite.data_dir}")
        with grpc.insecure_channel(suite.address("body")) as body_channel, grpc.insecure_channel(
            suite.address("garment")
        ) as garment_channel:
            body_id = body_part(body_channel, out)
            samples_part(garment_channel, out)
            catalogue = catalogue_part(garment_channel)
            recommender_part(suite)
            arrivals = new_arrivals_part(garment_channel, catalogue)
            with grpc.insecure_channel(suite.address("recommendation")) as rec_channel:
                outfit = recommendation_part(rec_channel, catalogue, arrivals)
                fit_part(rec_channel, body_id)
            tryon_part(garment_channel, body_id, outfit, out)
        storefront_status = storefront_part(suite, body_id, out)
        say("\n== Shutting down with SIGTERM")
        statuses = {"storefront": storefront_status, **suite.stop()}
    say("  " + ", ".join(f"{name} exited {status}" for name, status in statuses.items()) + "; broker stopped")
    say(f"\nDone in {time.monotonic() - started:.0f} s. Pictures: {out}")
    return 0 if all(status == 0 for status in statuses.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
