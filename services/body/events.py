"""BodyService's events on Kafka: BodyUpdated (the body's latent code and fit profile) and BodyDeleted.

Both go to ``tryon.bodies.v1`` keyed by body_id, so a consumer sees a body's events in
order. No measurement ever leaves the service on Kafka. Each is handed to the service's
`tryon.shared.events.EventPublisher` by the call that caused it, which returns once the event is
in the broker's log or in the outbox, and raises ``PublishError`` (UNAVAILABLE) when neither
took it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tryon.shared.contract import SEX_TO_PROTO
from tryon.shared.events import EventPublisher, new_event_id, timestamp_now
from tryon.shared.proto import common_pb2, events_pb2


class KafkaBodyEvents:
    """Publishes body events through the service's `tryon.shared.events.EventPublisher`."""

    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher

    def body_updated(
        self,
        body_id: str,
        sex: str | None,
        latent: Sequence[float],
        fit_profile: Mapping[str, tuple[Sequence[str], Sequence[float], str]] | None = None,
    ) -> None:
        """Publish BodyUpdated with the body's latent code and fit profile (chart id -> labels, probabilities,
        recommended size)."""
        event = events_pb2.BodyUpdated(
            event_id=new_event_id(),
            occurred_at=timestamp_now(),
            body_id=body_id,
            sex=SEX_TO_PROTO[sex],
            body_latent=list(latent),
            fit_profile=[
                common_pb2.ChartFit(
                    chart_id=chart_id,
                    size_labels=list(labels),
                    probabilities=list(probabilities),
                    recommended_size=recommended,
                )
                for chart_id, (labels, probabilities, recommended) in (fit_profile or {}).items()
            ],
        )
        self._publisher.publish([(event, body_id)])

    def body_deleted(self, body_id: str) -> None:
        """Publish BodyDeleted."""
        event = events_pb2.BodyDeleted(event_id=new_event_id(), occurred_at=timestamp_now(), body_id=body_id)
        self._publisher.publish([(event, body_id)])
