"""GarmentRegistered events: built from catalogue garments and published on tryon.garments.v1."""

from __future__ import annotations

from tryon.services.garment.catalogue import Garment
from tryon.shared.contract import category_to_proto
from tryon.shared.events import EventPublisher, new_event_id
from tryon.shared.proto import common_pb2, events_pb2


def garment_registered(garment: Garment, event_id: str) -> events_pb2.GarmentRegistered:
    """The GarmentRegistered event of a newly registered garment."""
    event = events_pb2.GarmentRegistered(
        event_id=event_id,
        garment_id=garment.garment_id,
        category=category_to_proto(garment.category),
        name=garment.name,
        content_latent=[float(value) for value in garment.content_latent],
        price=common_pb2.Money(currency_code=garment.currency_code, amount_minor=garment.amount_minor),
        # Only a shipped chart's id: the recommender ranks by fit through bodies' profiles per chart id.
        size_chart_id=(garment.size_chart or {}).get("chart_id", ""),
    )
    event.occurred_at.FromDatetime(garment.create_time)
    return event


class GarmentEventPublisher:
    """Publishes GarmentRegistered for a garment, keyed by garment id, through the service's
    `tryon.shared.events.EventPublisher`: it returns once the event is in the broker's log or in
    the outbox, so a registration the caller sees succeed reaches every consumer."""

    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher

    def __call__(self, garment: Garment) -> None:
        """Publish the event of one garment; ``PublishError`` (UNAVAILABLE) when it was not kept."""
        self._publisher.publish([(garment_registered(garment, new_event_id()), garment.garment_id)])
