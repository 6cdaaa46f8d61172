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

import gc

from tryon.services.recommendation.live_state import start_live_domain
from tryon.services.recommendation.servicer import RecommendationServicer, registration
from tryon.services.recommendation.settings import PREFIX, RecommendationSettings
from tryon.shared.lifecycle import Resources, exit_process, run_service
from tryon.shared.settings import settings_or_exit


def _prepare(settings: RecommendationSettings, servicer: RecommendationServicer, resources: Resources) -> None:
    """Start the live recommender (load, restore, consume, catch up), hand it to the servicer, freeze start-up's objects."""
    servicer.attach(start_live_domain(settings, resources))
    # What start-up made (the catalogue, the indexes' id maps, restored histories) lives as long as the
    # process; frozen, it is left out of every later full garbage collection, which at 100,000 garments
    # scanned 450,000 objects in about 200 ms, stalling every call in flight (tests/benchmarks/bench_outfits.py).
    gc.freeze()


def main() -> int:
    """Start the service and block until SIGTERM/SIGINT has drained it."""
    settings = settings_or_exit(RecommendationSettings, PREFIX)
    servicer = RecommendationServicer()
    return run_service(
        "recommendation", [registration(servicer)], settings, lambda resources: _prepare(settings, servicer, resources)
    )


if __name__ == "__main__":
    exit_process(main())
