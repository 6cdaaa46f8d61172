"""Run the whole suite with the storefront until Ctrl-C: ``python -m tryon.services.storefront.up``.

Usage: python -m tryon.services.storefront.up [--out var/up] [--port 8080]

Starts the broker (unless ``KAFKA_BOOTSTRAP_SERVERS`` is set), BodyService and
GarmentService; registers a catalogue of colour product pictures made from Fashion-MNIST, with size charts
unless GarmentService already holds one; trains the recommender on that live catalogue
unless a model is kept under ``<out>/state``; starts RecommendationService and the
storefront; prints the fitting room's URL and serves until Ctrl-C or SIGTERM, then stops
everything with SIGTERM. The functions here are also how the storefront's tests start it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import grpc
import numpy as np

from tryon.shared.broker import free_loopback_port
from tryon.shared.contract import CATEGORY_NAMES, category_to_proto
from tryon.shared.launcher import LocalSuite, ServiceFailedToStart, ServiceProcess
from tryon.shared.proto import common_pb2, garment_service_pb2 as garment_pb, garment_service_pb2_grpc
from tryon.shared.tls import ClientTls, https_client_context

CATALOGUE_PER_CATEGORY = 12
LIVE_CATALOGUE_SHOPPERS = 400
# Side of the catalogue's product pictures: 8 times Fashion-MNIST's, as large as a 256 x 512 try-on needs.
CATALOGUE_PICTURE_SIDE = 224
# Shipped charts by category: tops and dresses by the tops charts, trousers by the trousers
# charts, women's and men's in turn; shoes and bags have no size chart.
SIZE_CHARTS = {
    "t_shirt_top": ("eu_womens_tops", "eu_mens_tops"),
    "pullover": ("eu_womens_tops", "eu_mens_tops"),
    "coat": ("eu_womens_tops", "eu_mens_tops"),
    "shirt": ("eu_womens_tops", "eu_mens_tops"),
    "dress": ("eu_womens_tops",),
    "trouser": ("eu_womens_trousers", "us_mens_trousers"),
}


def catalogue_request(
    image: np.ndarray, position: int, label: int, number: int, name: str
) -> garment_pb.RegisterGarmentRequest:
    """The RegisterGarment request of Fashion-MNIST test picture ``position`` (category index
    ``label``) as a shop's product: a colour product picture, a price by category and, for a category
    with shipped size charts, the ``number``-th of them in turn."""
    from tryon.services.garment.product_images import product_bytes

    request = garment_pb.RegisterGarmentRequest(
        image=product_bytes(image, seed=int(position), side=CATALOGUE_PICTURE_SIDE),
        name=name,
        category=category_to_proto(label),
        price=common_pb2.Money(currency_code="EUR", amount_minor=1999 + 500 * label),
    )
    charts = SIZE_CHARTS.get(CATEGORY_NAMES[label], ())
    if charts:
        request.size_chart.chart_id = charts[number % len(charts)]
    return request


def register_catalogue(garment_address: str, per_category: int = CATALOGUE_PER_CATEGORY) -> list[str]:
    """Register Fashion-MNIST test pictures, made into colour product pictures, `per_category` of each; returns
    their ids."""
    from tryon.services.garment.dataset import load_fashion_mnist

    images, labels = load_fashion_mnist("test")
    registered = []
    with grpc.insecure_channel(garment_address) as channel:
        garments = garment_service_pb2_grpc.GarmentServiceStub(channel)
        for label, category in enumerate(CATEGORY_NAMES):
            for number, position in enumerate(np.flatnonzero(labels == label)[:per_category]):
                name = f"{category.replace('_', ' ').capitalize()} no. {position}"
                request = catalogue_request(images[position], position, label, number, name)
                registered.append(garments.RegisterGarment(request).garment.garment_id)
    return registered


def catalogue_size(garment_address: str) -> int:
    """How many garments GarmentService holds (up to 1000)."""
    with grpc.insecure_channel(garment_address) as channel:
        garments = garment_service_pb2_grpc.GarmentServiceStub(channel)
        return len(garments.ListGarments(garment_pb.ListGarmentsRequest(page_size=1000)).garments)


def start_recommender(suite: LocalSuite, shoppers: int = LIVE_CATALOGUE_SHOPPERS, epochs: int | None = None) -> None:
    """Train the recommender on the live catalogue unless its model exists, then start it.

    ``epochs``: most epochs of the served family; None trains it as the evaluation did (as the demo does).
    """
    from tryon.services.recommendation.live_catalogue import train_on_live_catalogue
    from tryon.services.recommendation.recommender import ModelArtifacts

    state = suite.data_dir / "recommendation"
    if not ModelArtifacts.exists(state / "artifacts"):
        budget = {} if epochs is None else {"epochs": epochs}
        train_on_live_catalogue(suite.address("garment"), state / "artifacts", shoppers, progress=False, **budget)
    if suite.broker is not None:
        # The embedded broker keeps its log in memory: offsets saved by an earlier run point nowhere now.
        (state / "snapshot.json").unlink(missing_ok=True)
    suite.add("recommendation")


def readiness(url: str, timeout: float = 2.0, context: ssl.SSLContext | None = None) -> int | None:
    """The HTTP status of the storefront's /readyz at `url`, or None when it does not answer."""
    try:
        with urllib.request.urlopen(url + "readyz", timeout=timeout, context=context) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def start_storefront(
    suite: LocalSuite,
    extra_env: Mapping[str, str] | None = None,
    port: int = 0,
    timeout_s: float = 60.0,
    https: ClientTls | None = None,
) -> tuple[ServiceProcess, str]:
    """Start the storefront over the suite's services; returns it and its URL once /readyz answers 200.

    With `https` (how this process trusts, and shows itself to, a storefront that `extra_env`
    sets up with ``TRYON_STOREFRONT_TLS_*``) the URL is https and readiness is asked over TLS.
    """
    port = port or free_loopback_port()
    env = dict(os.environ)
    env.update(
        {
            "TRYON_STOREFRONT_PORT": str(port),
            "TRYON_STOREFRONT_BODY_SERVICE_ADDRESS": suite.address("body"),
            "TRYON_STOREFRONT_GARMENT_SERVICE_ADDRESS": suite.address("garment"),
            "TRYON_STOREFRONT_RECOMMENDATION_SERVICE_ADDRESS": suite.address("recommendation"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra_env or {})
    log_path = suite.data_dir / "storefront.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tryon.services.storefront"], env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    storefront = ServiceProcess("storefront", f"127.0.0.1:{port}", process, log_path)
    url = f"{'http' if https is None else 'https'}://127.0.0.1:{port}/"
    context = None if https is None else https_client_context(https)
    started = time.monotonic()
    while readiness(url, context=context) != 200:
        if process.poll() is not None or time.monotonic() - started > timeout_s:
            storefront.stop(5.0)
            raise ServiceFailedToStart(
                f"the storefront was not ready (status {process.returncode}); its log {log_path} ends with:\n"
                f"{storefront.log_tail()}"
            )
        time.sleep(0.1)
    return storefront, url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("var/up"), help="folder of the services' state and logs")
    parser.add_argument("--port", type=int, default=8080, help="HTTP port of the storefront (0: a free one)")
    options = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the suite's processes are stopped rather than orphaned.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    state = options.out.resolve() / "state"
    sys.stdout.write("Starting the broker and the services (a first start copies their shipped models)\n")
    with LocalSuite(state, services=("body", "garment")) as suite:
        if catalogue_size(suite.address("garment")) == 0:
            sys.stdout.write(f"Registering a catalogue of {CATALOGUE_PER_CATEGORY * len(CATEGORY_NAMES)} garments\n")
            register_catalogue(suite.address("garment"))
        sys.stdout.write("Starting the recommender (trained on the catalogue on a first start)\n")
        start_recommender(suite)
        storefront, url = start_storefront(suite, port=options.port)
        sys.stdout.write(
            json.dumps({"fitting_room": url, "openapi": url + "openapi.json", "logs": str(state)}) + "\n"
            f"\nThe fitting room is at {url} - Ctrl-C stops everything.\n"
        )
        sys.stdout.flush()
        try:
            while storefront.process.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            storefront.stop(suite.grace_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
