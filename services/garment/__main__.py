"""Run GarmentService: ``python -m tryon.services.garment``.

Reads ``TRYON_GARMENT_*`` settings, logs JSON lines to stdout and starts serving at once with
health NOT_SERVING, so probes can tell "starting" from "down"; the catalogue RPCs answer
already. The garment models are loaded from ``<data_dir>/models``, or trained on
Fashion-MNIST and saved there when missing (minutes on a CPU); once the models and the
event publisher are ready, health turns SERVING. Events go to ``KAFKA_BOOTSTRAP_SERVERS`` or,
when it is unset, to an embedded broker owned by this process. SIGTERM drains in-flight
calls, closes the catalogue and exits.
"""

from __future__ import annotations

import logging

from tryon.services.garment.body_client import BodyServiceClient
from tryon.services.garment.catalogue import Catalogue
from tryon.services.garment.domain import GarmentDomain
from tryon.services.garment.tryon import MeshSource
from tryon.services.garment.events import GarmentEventPublisher
from tryon.services.garment.models_store import load_or_train_models
from tryon.services.garment.servicer import GarmentServicer, registration
from tryon.services.garment.settings import PREFIX, GarmentSettings
from tryon.shared.lifecycle import Resources, connect_kafka, event_publisher, exit_process, run_service
from tryon.shared.settings import settings_or_exit
from tryon.shared.tls import ClientTls
from tryon.shared.topics import GARMENTS

logger = logging.getLogger("tryon.services.garment")


def _prepare(
    settings: GarmentSettings,
    servicer: GarmentServicer,
    resources: Resources,
    catalogue: Catalogue,
    bodies: MeshSource | None,
) -> None:
    """Connect the publisher, load or train the models, and hand the domain to the servicer."""
    bootstrap_servers = connect_kafka(resources, [GARMENTS])
    publisher = event_publisher(resources, bootstrap_servers, "tryon-garment", settings.data_dir)
    models = load_or_train_models(settings)
    servicer.attach(GarmentDomain(catalogue, models, GarmentEventPublisher(publisher), bodies))
    logger.info("garment service ready", extra={"bootstrap_servers": bootstrap_servers})


def main() -> int:
    """Start the service and block until SIGTERM/SIGINT has drained it."""
    settings = settings_or_exit(GarmentSettings, PREFIX)
    bodies = None
    if settings.body_service_address:
        bodies = BodyServiceClient(
            settings.body_service_address,
            settings.body_service_timeout_seconds,
            settings.body_service_auth_token,
            tls=ClientTls.from_settings(settings),
        )
    catalogue = Catalogue(settings.data_dir)
    # The catalogue RPCs need no model: they answer from this domain while the models load.
    servicer = GarmentServicer(catalogue=GarmentDomain(catalogue, bodies=bodies))
    status = run_service(
        "garment",
        [registration(servicer)],
        settings,
        lambda resources: _prepare(settings, servicer, resources, catalogue, bodies),
    )
    # The server has drained by now; a handler still running past the grace answers UNAVAILABLE.
    catalogue.close()
    if bodies is not None:
        bodies.close()
    return status


if __name__ == "__main__":
    exit_process(main())
