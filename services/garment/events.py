"""GarmentRegistered events: built from catalogue garments and published on tryon.garments.v1."""

from __future__ import annotations

from typing import Protocol

from google.protobuf.message import Message

from tryon.services.garment.catalogue import Garment
from tryon.services.garment.categories import category_to_proto
from tryon.shared.proto import common_pb2, events_pb2


class EventPublisher(Protocol):
    """What publishing needs of `tryon.shared.events.EventProducer`."""

    def publish(self, event: Message, key: str) -> object: ...


def new_event_id() -> str:
    """A fresh event id (delegates to the shared event helpers)."""
    from tryon.shared.events import new_event_id as shared_new_event_id

    return shared_new_event_id()


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
    """Publishes GarmentRegistered for each registered garment, keyed by garment id."""

    def __init__(self, producer: EventPublisher) -> None:
        self._producer = producer

    def __call__(self, garment: Garment) -> None:
        """Publish the event of one garment."""
        self._producer.publish(garment_registered(garment, new_event_id()), key=garment.garment_id)
