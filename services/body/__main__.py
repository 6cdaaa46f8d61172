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
import threading
import time

from tryon.services.body.domain import BodyDomain
from tryon.services.body.servicer import SERVICE_FULL_NAME, BodyServicer, add_to_server
from tryon.services.body.settings import PREFIX, BodySettings
from tryon.services.body.store import BodyStore
from tryon.shared.logs import configure_logging
from tryon.shared.server import ServiceRegistration, serve
from tryon.shared.settings import settings_or_exit
from tryon.shared.topics import BODIES

logger = logging.getLogger("tryon.services.body")


def load_or_train_model(settings: BodySettings):
    """The body model saved under the data folder, or the default one trained and saved there."""
    from tryon.services.body.body_model import CONFIG_FILE, BodyModel, BodyModelConfig
    from tryon.services.body.dataset import load_subset

    if (settings.model_dir / CONFIG_FILE).exists():
        model = BodyModel.load(settings.model_dir)
        logger.info("body model loaded", extra={"model_dir": str(settings.model_dir)})
        return model
    logger.info(
        "no body model found; training the default one",
        extra={"model_dir": str(settings.model_dir), "epochs": settings.train_epochs},
    )
    started = time.monotonic()
    model = BodyModel.train(
        load_subset(),
        BodyModelConfig(),
        epochs=settings.train_epochs,
        seed=settings.train_seed,
        progress=False,
        gan_epochs=settings.gan_epochs,
    )
    model.save(settings.model_dir)
    logger.info("body model trained and saved", extra={"seconds": round(time.monotonic() - started, 1)})
    return model


class _Resources:
    """What start-up acquires and shutdown must release: the event producer and the broker."""

    def __init__(self) -> None:
        self.events = None
        self.broker = None
        self.closed = False
        self.failed = False
        self._lock = threading.Lock()

    def adopt(self, events=None, broker=None) -> bool:
        """Keep what start-up acquired; False (and release it) when shutdown came first."""
        with self._lock:
            self.events = events or self.events
            self.broker = broker or self.broker
            closed = self.closed
        if closed:
            self.close()
        return not closed

    def close(self) -> None:
        """Flush and close the producer, then stop the embedded broker; safe to call twice."""
        with self._lock:
            self.closed = True
            events, broker = self.events, self.broker
            self.events = self.broker = None
        if events is not None:
            events.close()
        if broker is not None:
            broker.stop()


def _prepare(settings: BodySettings, servicer: BodyServicer, running, resources: _Resources) -> None:
    """Load the model, open the store and the publisher, then report SERVING."""
    try:
        model = load_or_train_model(settings)
        events = None
        if settings.publish_events:
            from tryon.services.body.events import KafkaBodyEvents
            from tryon.shared.broker import ensure_topics, resolve_bootstrap
            from tryon.shared.events import EventProducer

            bootstrap, broker = resolve_bootstrap()
            if not resources.adopt(broker=broker):
                return
            ensure_topics(bootstrap, [BODIES])
            events = KafkaBodyEvents(EventProducer(bootstrap, client_id="tryon-body"))
            if not resources.adopt(events=events):
                return
        store = BodyStore(settings.bodies_dir)
        servicer.attach(BodyDomain(model, store, events, advice_samples=settings.advice_samples))
        if resources.closed:
            return
        running.set_serving(True)
        logger.info("body service ready", extra={"bodies": len(store)})
    except Exception:
        logger.exception("body service failed to start; stopping")
        resources.failed = True
        running.stop(grace=0)


def main() -> int:
    """Start the service and block until SIGTERM/SIGINT has drained it."""
    settings = settings_or_exit(BodySettings, PREFIX)
    configure_logging("body", settings.log_level)
    servicer = BodyServicer()
    running = serve("body", [ServiceRegistration(SERVICE_FULL_NAME, lambda server: add_to_server(servicer, server))],
                    settings)
    running.set_serving(False)
    resources = _Resources()
    running.install_signal_handlers(on_shutdown=resources.close)
    # Training can take minutes; doing it off the main thread keeps SIGTERM prompt meanwhile.
    threading.Thread(
        target=_prepare, args=(settings, servicer, running, resources), name="body-startup", daemon=True
    ).start()
    running.wait()
    resources.close()
    return 1 if resources.failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
