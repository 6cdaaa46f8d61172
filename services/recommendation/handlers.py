"""Event handlers (Kafka events -> recommender state) and the publisher of the service's own events.

Consumed: InteractionRecorded (history; an unknown garment is an ``InvalidEvent`` and goes to
the dead-letter topic), GarmentRegistered (a new garment enters the index through its content
latent), UserDeleted (forget the shopper), BodyUpdated / BodyDeleted (keep / forget the body).
Duplicates never reach a handler: the consumer (``tryon.shared.events.EventConsumer``) skips an
event whose id it applied before, and snapshots those ids with the state.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from google.protobuf.message import Message

from tryon.services.recommendation.catalogue import Garment
from tryon.services.recommendation.domain import InteractionInput
from tryon.services.recommendation.recommender import Recommender
from tryon.shared.errors import InvalidEvent
from tryon.shared.events import EventPublisher, new_event_id, timestamp_now
from tryon.shared.proto import events_pb2


def event_handlers(recommender: Recommender) -> dict[type[Message], callable]:
    """The handler of each consumed event type, bound to ``recommender``."""

    def interaction_recorded(event: events_pb2.InteractionRecorded) -> None:
        recommender.apply_interaction(event.user_id, event.garment_id, event.type)

    def garment_registered(event: events_pb2.GarmentRegistered) -> None:
        if not event.category:
            raise InvalidEvent("category is GARMENT_CATEGORY_UNSPECIFIED")
        garment = Garment(
            garment_id=event.garment_id,
            category=event.category - 1,
            content_latent=np.asarray(event.content_latent, dtype=np.float32),
            price_minor=event.price.amount_minor,
            name=event.name,
        )
        recommender.register_garment(garment)

    def user_deleted(event: events_pb2.UserDeleted) -> None:
        recommender.forget_user(event.user_id)

    def body_updated(event: events_pb2.BodyUpdated) -> None:
        recommender.set_body(event.body_id, event.sex, list(event.body_latent))

    def body_deleted(event: events_pb2.BodyDeleted) -> None:
        recommender.forget_body(event.body_id)

    return {
        events_pb2.InteractionRecorded: interaction_recorded,
        events_pb2.GarmentRegistered: garment_registered,
        events_pb2.UserDeleted: user_deleted,
        events_pb2.BodyUpdated: body_updated,
        events_pb2.BodyDeleted: body_deleted,
    }


class KafkaInteractionPublisher:
    """Publishes InteractionRecorded and UserDeleted, keyed by user id, through the service's
    `tryon.shared.events.EventPublisher`: each call returns once its events are in the broker's log
    or in the outbox, and raises ``PublishError`` (UNAVAILABLE) when neither took them."""

    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher

    def publish_interactions(self, interactions: Sequence[InteractionInput]) -> list[str]:
        """Publish one event per interaction, in order, all or none; returns their event ids."""
        events = []
        for interaction in interactions:
            event = events_pb2.InteractionRecorded(
                event_id=new_event_id(),
                user_id=interaction.user_id,
                garment_id=interaction.garment_id,
                type=interaction.kind,
            )
            if interaction.occurred_at is None:
                event.occurred_at.CopyFrom(timestamp_now())
            else:
                event.occurred_at.FromDatetime(interaction.occurred_at)
            events.append((event, interaction.user_id))
        self._publisher.publish(events)
        return [event.event_id for event, _ in events]

    def publish_user_deleted(self, user_id: str) -> str:
        """Publish UserDeleted for ``user_id``; returns its event id."""
        event = events_pb2.UserDeleted(event_id=new_event_id(), user_id=user_id)
        event.occurred_at.CopyFrom(timestamp_now())
        self._publisher.publish([(event, user_id)])
        return event.event_id
