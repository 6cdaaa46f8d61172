"""Run RecommendationService: ``python -m tryon.services.recommendation``.

Reads ``TRYON_RECOMMENDATION_*`` settings, logs JSON lines to stdout and serves at once with
health NOT_SERVING. It then loads the artifacts under ``<data_dir>/artifacts`` (or, when
there are none, trains them on a simulated catalogue and shoppers and saves them there),
restores the last state snapshot, starts consuming the interaction, garment, user and body
topics from the snapshot's offsets, and turns SERVING once the consumer has reached the end
of the topics as they were at start. State is snapshotted with the consumer's offsets
(``snapshot_interval_seconds``) and once more on SIGTERM, after the calls have drained.
Events go to ``KAFKA_BOOTSTRAP_SERVERS`` or, when it is unset, to an embedded broker.
"""

from __future__ import annotations

import logging

from tryon.services.recommendation.domain import RecommendationDomain
from tryon.services.recommendation.handlers import KafkaInteractionPublisher
from tryon.services.recommendation.index import disable_interrupt_checks, set_search_threads
from tryon.services.recommendation.live_state import follow_events
from tryon.services.recommendation.models_store import load_or_train_artifacts
from tryon.services.recommendation.recommender import Recommender
from tryon.services.recommendation.servicer import RecommendationServicer, registration
from tryon.services.recommendation.settings import PREFIX, RecommendationSettings
from tryon.shared.broker import ensure_topics
from tryon.shared.lifecycle import Resources, connect_kafka, event_publisher, exit_process, run_service
from tryon.shared.settings import settings_or_exit
from tryon.shared.topics import BODIES, GARMENTS, INTERACTIONS, USERS

logger = logging.getLogger("tryon.services.recommendation")

CONSUMED_TOPICS = (INTERACTIONS, GARMENTS, USERS, BODIES)


def prepare(
    settings: RecommendationSettings,
    servicer: RecommendationServicer,
    resources: Resources,
    bootstrap_servers: str | None = None,
) -> Recommender:
    """Load, restore, consume and catch up, then hand the domain to the servicer.

    At shutdown the consumer stops and a last snapshot is written before the producer
    and an embedded broker are released.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    set_search_threads(settings.faiss_threads)
    disable_interrupt_checks()
    recommender = Recommender(load_or_train_artifacts(settings))
    if bootstrap_servers is None:
        bootstrap_servers = connect_kafka(resources, CONSUMED_TOPICS)
    else:
        ensure_topics(bootstrap_servers, CONSUMED_TOPICS)
    publisher = event_publisher(resources, bootstrap_servers, "tryon-recommendation", settings.data_dir)
    follow_events(recommender, settings, bootstrap_servers, CONSUMED_TOPICS, resources)
    servicer.attach(RecommendationDomain(recommender, KafkaInteractionPublisher(publisher)))
    logger.info(
        "recommendation service ready",
        extra={"garments": recommender.garment_count, "shoppers": len(recommender.histories)},
    )
    return recommender


def main() -> int:
    """Start the service and block until SIGTERM/SIGINT has drained it."""
    settings = settings_or_exit(RecommendationSettings, PREFIX)
    servicer = RecommendationServicer()
    return run_service(
        "recommendation", [registration(servicer)], settings, lambda resources: prepare(settings, servicer, resources)
    )


if __name__ == "__main__":
    exit_process(main())
