"""The suite end to end on one machine: broker, services, models, a shopper session, pictures.

Usage: python -m tryon.shared.demo [--out var/demo]

Starts the broker (unless ``KAFKA_BOOTSTRAP_SERVERS`` is set) and the three services as separate
processes, which train their default models on first start (kept under ``<out>/state`` for the
next run). Then a shopper gives three numbers and gets a whole body with uncertainty, a size
advice and a silhouette; the garment models draw samples; a small catalogue is registered; the
shopper's recommendations are shown before and after a few interaction events travel
RecordInteractions -> Kafka -> RecommendationService; and the shopper's body is dressed in the
recommended outfit. Everything is shut down with SIGTERM at the end.
"""

from __future__ import annotations

import argparse
import io
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import grpc
import numpy as np
from PIL import Image

from tryon.services.garment.categories import CATEGORIES
from tryon.services.garment.dataset import load_fashion_mnist
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
CATALOGUE_PER_CATEGORY = 6
SAMPLES_PER_CATEGORY = 8
EVENT_DEADLINE_S = 30.0
TOP_ROLES = ("t_shirt_top", "pullover", "shirt")
BOTTOM_ROLES = ("trouser",)
SHOE_ROLES = ("sneaker", "sandal", "ankle_boot")
DEMO_TRAINING = {
    "TRYON_GARMENT_TRAINING_EPOCHS": "3",
    "TRYON_GARMENT_TRAINING_IMAGES": "20000",
}


def say(text: str = "") -> None:
    """One line of the demo's account."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def category_name(value: int) -> str:
    return CATEGORIES[value - 1]


def category_value(name: str) -> int:
    return CATEGORIES.index(name) + 1


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
    fits = ", ".join(f"{fit.label} {fit.probability:.2f}" for fit in advice.fits if fit.probability >= 0.01)
    say(f"  size advice (eu_womens_tops): {advice.recommended_size}; fit probabilities {fits}")
    say(f"  decided by {advice.deciding_measurement}: {advice.explanation}")
    silhouette = bodies.RenderSilhouette(body_pb.RenderSilhouetteRequest(body_id=created.body_id))
    (out / "silhouette.png").write_bytes(silhouette.png)
    say(f"  silhouette with {len(silhouette.keypoints)} keypoints -> {out / 'silhouette.png'}")
    return created.body_id


def garment_part(channel: grpc.Channel, out: Path) -> dict[str, str]:
    """Draw samples of both generators and register a small catalogue; returns id -> category."""
    garments = garment_service_pb2_grpc.GarmentServiceStub(channel)
    say("\n== GarmentService: samples of each generator, one row per category")
    for generator, label in ((common_pb2.GENERATOR_VAE, "vae"), (common_pb2.GENERATOR_GAN, "gan")):
        pngs = []
        for category in range(1, len(CATEGORIES) + 1):
            reply = garments.GenerateGarments(
                garment_pb.GenerateGarmentsRequest(
                    category=category, count=SAMPLES_PER_CATEGORY, seed=7, generator=generator
                )
            )
            pngs.extend(garment.png for garment in reply.garments)
        path = out / f"samples_{label}.png"
        png_grid(pngs, SAMPLES_PER_CATEGORY).save(path)
        say(f"  {label.upper()}: {len(pngs)} garments -> {path}")
    images, labels = load_fashion_mnist("test")
    registered = {}
    for label in range(len(CATEGORIES)):
        for position in np.flatnonzero(labels == label)[:CATALOGUE_PER_CATEGORY]:
            picture = Image.fromarray(images[position]).resize((112, 112), Image.BILINEAR)
            buffer = io.BytesIO()
            picture.save(buffer, format="PNG")
            reply = garments.RegisterGarment(
                garment_pb.RegisterGarmentRequest(
                    image=buffer.getvalue(),
                    name=f"{CATEGORIES[label].replace('_', ' ')} no. {position}",
                    category=label + 1,
                    price=common_pb2.Money(currency_code="EUR", amount_minor=1999 + 500 * label),
                )
            )
            registered[reply.garment.garment_id] = CATEGORIES[label]
    say(f"  registered {len(registered)} catalogue garments; each published GarmentRegistered on Kafka")
    return registered


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


def recommendation_part(channel: grpc.Channel, registered: dict[str, str]) -> list[str]:
    """Recommendations before and after a few events; returns registered garments for the try-on."""
    recommendations = recommendation_service_pb2_grpc.RecommendationServiceStub(channel)
    say(f"\n== RecommendationService: shopper {SHOPPER}")
    before = recommendations.RecommendGarments(rec_pb.RecommendGarmentsRequest(user_id=SHOPPER, k=10))
    say(f"  before any event (cold start: {before.cold_start}): {categories_of(before)}")
    dresses = recommendations.RecommendGarments(
        rec_pb.RecommendGarmentsRequest(user_id="demo-catalogue-browser", k=4, categories=[category_value("dress")])
    )
    sandals = recommendations.RecommendGarments(
        rec_pb.RecommendGarmentsRequest(user_id="demo-catalogue-browser", k=2, categories=[category_value("sandal")])
    )
    session = [(g.garment_id, common_pb2.INTERACTION_TYPE_VIEW) for g in dresses.garments]
    session += [(dresses.garments[0].garment_id, common_pb2.INTERACTION_TYPE_TRY_ON)]
    session += [(dresses.garments[0].garment_id, common_pb2.INTERACTION_TYPE_PURCHASE)]
    session += [(g.garment_id, common_pb2.INTERACTION_TYPE_ADD_TO_CART) for g in sandals.garments]
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
    waited = wait_for_history(recommendations, len(session))
    say(f"  consumed from Kafka and folded in {waited * 1000:.0f} ms after publishing "
        f"({(time.monotonic() - sent) * 1000:.0f} ms round trip)")
    after = recommendations.RecommendGarments(rec_pb.RecommendGarmentsRequest(user_id=SHOPPER, k=10))
    say(f"  after the events (cold start: {after.cold_start}, history {after.history_size}): {categories_of(after)}")
    changed = [g.garment_id for g in before.garments] != [g.garment_id for g in after.garments]
    say(f"  the answer {'changed' if changed else 'did not change'} without retraining")
    wide = recommendations.RecommendGarments(rec_pb.RecommendGarmentsRequest(user_id=SHOPPER, k=1000))
    newcomers = [g for g in wide.garments if g.garment_id in registered]
    say(f"  {len(newcomers)} of the {len(registered)} garments registered minutes ago are among the shopper's "
        f"top 1000 with no interaction yet (cold start through their content latent)")
    outfits = recommendations.RecommendOutfits(rec_pb.RecommendOutfitsRequest(user_id=SHOPPER, k=3))
    for rank, outfit in enumerate(outfits.outfits, start=1):
        pieces = " + ".join(category_name(g.category) for g in outfit.garments)
        say(f"  outfit {rank}: {pieces} (score {outfit.score:.2f})")
    ranked = [g.garment_id for g in newcomers]

    def best_registered(roles: tuple[str, ...]) -> str:
        candidates = ranked + list(registered)
        return next(garment_id for garment_id in candidates if registered[garment_id] in roles)

    return [best_registered(roles) for roles in (BOTTOM_ROLES, TOP_ROLES, SHOE_ROLES)]


def tryon_part(channel: grpc.Channel, body_id: str, garment_ids: list[str], out: Path) -> None:
    garments = garment_service_pb2_grpc.GarmentServiceStub(channel)
    say("\n== GarmentService: try-on of the shopper's best-ranked registered trousers, top and shoes")
    picture = garments.RenderTryOn(garment_pb.RenderTryOnRequest(body_id=body_id, garment_ids=garment_ids))
    (out / "tryon.png").write_bytes(picture.png)
    say(f"  -> {out / 'tryon.png'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("var/demo"), help="folder of the pictures and state")
    options = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the suite's processes are stopped rather than orphaned.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    out = options.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    say("== Starting the broker and the three services (first start trains the default models)")
    with LocalSuite(out / "state", extra_env=DEMO_TRAINING) as suite:
        say(f"  Kafka at {suite.bootstrap_servers}"
            f"{' (embedded Tansu)' if suite.broker else ''}; all SERVING after {time.monotonic() - started:.0f} s")
        for name, service in suite.running.items():
            say(f"  {service.grpc_service} at {service.address}, log {service.log_path}")
        with grpc.insecure_channel(suite.address("body")) as body_channel, grpc.insecure_channel(
            suite.address("garment")
        ) as garment_channel, grpc.insecure_channel(suite.address("recommendation")) as rec_channel:
            body_id = body_part(body_channel, out)
            registered = garment_part(garment_channel, out)
            outfit = recommendation_part(rec_channel, registered)
            tryon_part(garment_channel, body_id, outfit, out)
        say("\n== Shutting down with SIGTERM")
        statuses = suite.stop()
    say("  " + ", ".join(f"{name} exited {status}" for name, status in statuses.items()) + "; broker stopped")
    say(f"\nDone in {time.monotonic() - started:.0f} s. Pictures: {out}")
    return 0 if all(status == 0 for status in statuses.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
