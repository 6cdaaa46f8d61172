"""Run BodyService: ``python -m tryon.services.body``.

Reads ``TRYON_BODY_*`` settings, logs JSON lines to stdout and starts serving at once with
health NOT_SERVING, so probes can tell "starting" from "down". The body model is then
loaded from ``<data_dir>/model``, or trained on the committed ANSUR II subset and saved
there when missing (minutes on a CPU); once the model, the store and the event publisher
are ready, health turns SERVING. Events go to ``KAFKA_BOOTSTRAP_SERVERS`` or, when it is
unset, to an embedded broker owned by this process. SIGTERM drains in-flight calls and exits.
"""

from __future__ import annotations

import logging

from tryon.services.body.domain import BodyDomain
from tryon.services.body.events import KafkaBodyEvents
from tryon.services.body.meshes import BodyMeshes
from tryon.services.body.models_store import load_or_train_model
from tryon.services.body.servicer import BodyServicer, registration
from tryon.services.body.settings import PREFIX, BodySettings
from tryon.services.body.store import BodyStore
from tryon.shared.lifecycle import Resources, connect_kafka, event_publisher, exit_process, run_service
from tryon.shared.settings import settings_or_exit
from tryon.shared.topics import BODIES

logger = logging.getLogger("tryon.services.body")


def _prepare(settings: BodySettings, servicer: BodyServicer, resources: Resources) -> None:
    """Load the model, open the store and the publisher, and hand them to the servicer."""
    meshes = BodyMeshes(settings.mesh_cache_dir, settings.mesh_cache_size)
    meshes.start_if_cached()
    model = load_or_train_model(settings)
    events = None
    if settings.publish_events:
        bootstrap_servers = connect_kafka(resources, [BODIES])
        events = KafkaBodyEvents(event_publisher(resources, bootstrap_servers, "tryon-body", settings.data_dir))
    store = BodyStore(settings.bodies_dir)
    servicer.attach(BodyDomain(model, store, events, advice_samples=settings.advice_samples, meshes=meshes))
    logger.info("body service ready", extra={"bodies": len(store)})


def main() -> int:
    """Start the service and block until SIGTERM/SIGINT has drained it."""
    settings = settings_or_exit(BodySettings, PREFIX)
    servicer = BodyServicer()
    return run_service(
        "body", [registration(servicer)], settings, lambda resources: _prepare(settings, servicer, resources)
    )


if __name__ == "__main__":
    exit_process(main())
