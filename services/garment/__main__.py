"""Run GarmentService: ``python -m tryon.services.garment``.

Reads ``TRYON_GARMENT_*`` settings, logs JSON lines to stdout and starts serving at once with
health NOT_SERVING, so probes can tell "starting" from "down"; the catalogue RPCs answer
already. The garment models are loaded from ``<data_dir>/models``, or trained on
Fashion-MNIST and saved there when missing (minutes on a CPU); once the models and the
event publisher are ready, health turns SERVING. Events go to ``KAFKA_BOOTSTRAP_SERVERS`` or,
when it is unset, to an embedded broker owned by this process. SIGTERM drains in-flight
calls and exits.
"""

from __future__ import annotations

import logging

from tryon.services.garment.body_client import BodyServiceClient
from tryon.services.garment.catalogue import Catalogue
from tryon.services.garment.domain import GarmentDomain
from tryon.services.garment.events import GarmentEventPublisher
from tryon.services.garment.models_store import load_or_train_models
from tryon.services.garment.servicer import registration
from tryon.services.garment.settings import PREFIX, GarmentSettings
from tryon.shared.lifecycle import Resources, connect_kafka, event_publisher, exit_process, run_service
from tryon.shared.settings import settings_or_exit
from tryon.shared.topics import GARMENTS

logger = logging.getLogger("tryon.services.garment")

def _prepare(settings: GarmentSettings, domain: GarmentDomain, resources: Resources) -> None:
    """Connect the publisher, then load or train the models and hand them to the domain."""
    bootstrap_servers = connect_kafka(resources, [GARMENTS])
    publisher = event_publisher(resources, bootstrap_servers, "tryon-garment", settings.data_dir)
    domain.set_publisher(GarmentEventPublisher(publisher))
    domain.set_models(load_or_train_models(settings))
    logger.info("garment service ready", extra={"bootstrap_servers": bootstrap_servers})


def main() -> int:
    """Start the service and block until SIGTERM/SIGINT has drained it."""
    settings = settings_or_exit(GarmentSettings, PREFIX)
    silhouettes = None
    if settings.body_service_address:
        silhouettes = BodyServiceClient(
            settings.body_service_address, settings.body_service_timeout_seconds, settings.body_service_auth_token
        )
    domain = GarmentDomain(Catalogue(settings.data_dir), silhouettes=silhouettes)
    status = run_service(
        "garment", [registration(domain)], settings, lambda resources: _prepare(settings, domain, resources)
    )
    if silhouettes is not None:
        silhouettes.close()
    return status


if __name__ == "__main__":
    exit_process(main())
