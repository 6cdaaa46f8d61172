"""GarmentRegistered events: built from catalogue garments and published on tryon.garments.v1."""

from __future__ import annotations

from typing import Protocol

from google.protobuf.message import Message
from kafka.errors import KafkaError

from tryon.services.garment.catalogue import Garment
from tryon.shared.contract import category_to_proto
from tryon.shared.errors import FailedPrecondition
from tryon.shared.events import PublishError, new_event_id
from tryon.shared.proto import common_pb2, events_pb2

PUBLISH_TIMEOUT_SECONDS = 10.0


class EventPublisher(Protocol):
    """What publishing needs of `tryon.shared.events.EventProducer`."""

    def publish(self, event: Message, key: str) -> None: ...

    def flush(self, timeout: float | None = None) -> None: ...


def garment_registered(garment: Garment, event_id: str) -> events_pb2.GarmentRegistered:
    """The GarmentRegistered event of a newly registered garment."""
    event = events_pb2.GarmentRegistered(
        event_id=event_id,
        garment_id=garment.garment_id,
        category=category_to_proto(garment.category),
        name=garment.name,
        content_latent=[float(value) for value in garment.content_latent],
        price=common_pb2.Money(currency_code=garment.currency_code, amount_minor=garment.amount_minor),
    )
    event.occurred_at.FromDatetime(garment.create_time)
    return event


class GarmentEventPublisher:
    """Publishes GarmentRegistered for a garment, keyed by garment id, and waits for the broker's
    acknowledgement, so that a registration the caller sees succeed is known to every consumer."""

    def __init__(self, producer: EventPublisher, timeout_seconds: float = PUBLISH_TIMEOUT_SECONDS) -> None:
        self._producer = producer
        self._timeout = timeout_seconds

    def __call__(self, garment: Garment) -> None:
        """Publish the event of one garment; FailedPrecondition when the broker does not acknowledge it."""
        self._producer.publish(garment_registered(garment, new_event_id()), key=garment.garment_id)
        try:
            self._producer.flush(timeout=self._timeout)
        except (PublishError, KafkaError) as error:
            raise FailedPrecondition(
                f"the event broker did not accept GarmentRegistered ({error}); nothing was registered, retry later"
            ) from None
