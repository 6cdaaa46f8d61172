"""BodyService's events on Kafka: BodyUpdated (the body's latent code only) and BodyDeleted.

Both go to ``tryon.bodies.v1`` keyed by body_id, so a consumer sees a body's events in
order. No measurement ever leaves the service on Kafka. A deletion is flushed before the
call returns, so a caller told "deleted" can rely on the event being on its way to the
broker.
"""

from __future__ import annotations

from collections.abc import Sequence

from tryon.shared.contract import SEX_TO_PROTO
from tryon.shared.events import EventProducer, new_event_id, timestamp_now
from tryon.shared.proto import events_pb2

# How long DeleteBody waits for the broker to acknowledge BodyDeleted before reporting a failure.
DELETE_FLUSH_TIMEOUT_S = 10.0


class KafkaBodyEvents:
    """Publishes body events through a `tryon.shared.events.EventProducer`."""

    def __init__(self, producer: EventProducer) -> None:
        self._producer = producer

    def body_updated(self, body_id: str, sex: str | None, latent: Sequence[float]) -> None:
        """Publish BodyUpdated with the body's latent code."""
        event = events_pb2.BodyUpdated(
            event_id=new_event_id(),
            occurred_at=timestamp_now(),
            body_id=body_id,
            sex=SEX_TO_PROTO[sex],
            body_latent=list(latent),
        )
        self._producer.publish(event, key=body_id)

    def body_deleted(self, body_id: str) -> None:
        """Publish BodyDeleted and wait until the broker has it."""
        event = events_pb2.BodyDeleted(event_id=new_event_id(), occurred_at=timestamp_now(), body_id=body_id)
        self._producer.publish(event, key=body_id)
        self._producer.flush(timeout=DELETE_FLUSH_TIMEOUT_S)

    def close(self) -> None:
        """Send what is pending and close the producer."""
        self._producer.flush()
        self._producer.close()
