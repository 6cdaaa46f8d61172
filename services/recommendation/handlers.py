"""Event handlers (Kafka events -> recommender state) and the publisher of the service's own events.

Consumed: InteractionRecorded (history, and how the garment's sizes run from a sized purchase
or a return with its reason; an unknown garment is an ``InvalidEvent`` and goes to the
dead-letter topic), GarmentRegistered (a new garment enters the index through its content
latent), UserDeleted (forget the shopper), BodyUpdated / BodyDeleted (keep / forget the body).
Every event is checked against the contract first, as an RPC request is: ids, category, sex,
names, and latents (length, finite, L2 norm at most ``contract.MAX_LATENT_NORM``); an event that
breaks a rule is an ``InvalidEvent`` and goes to the dead-letter topic with the reason.
Duplicates never reach a handler: the consumer (``tryon.shared.events.EventConsumer``) skips an
event whose id it applied before, and snapshots those ids with the state.
"""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf.message import Message

from tryon.services.recommendation.catalogue import Garment
from tryon.services.recommendation.domain import InteractionInput
from tryon.services.recommendation.fit import check_fit_profile, check_sizing
from tryon.services.recommendation.recommender import Recommender
from tryon.shared.contract import (
    BODY_LATENT_DIM,
    category_from_proto,
    check_chart_id,
    check_id,
    check_latent,
    check_name,
    check_optional_id,
    sex_from_proto,
)
from tryon.shared.errors import InvalidEvent
from tryon.shared.events import EventPublisher, new_event_id, timestamp_now
from tryon.shared.proto import events_pb2


def event_handlers(recommender: Recommender) -> dict[type[Message], callable]:
    """The handler of each consumed event type, bound to ``recommender``.

    Each checks its event against the contract (``tryon.shared.contract``) as a servicer checks a
    request: a broken rule raises ``InvalidEvent`` naming the field, and nothing is applied.
    """

    def interaction_recorded(event: events_pb2.InteractionRecorded) -> None:
        user_id = check_id(event.user_id, "user_id", InvalidEvent)
        garment_id = check_id(event.garment_id, "garment_id", InvalidEvent)
        # The session id serves the offline compatibility training; live histories need only the check.
        check_optional_id(event.session_id, "session_id", InvalidEvent)
        body_id = check_optional_id(event.body_id, "body_id", InvalidEvent)
        garment = recommender.garment(garment_id)
        if garment is not None:
            check_sizing(event.type, event.size, event.return_reason, garment.size_chart_id, "", InvalidEvent)
        recommender.apply_interaction(user_id, garment_id, event.type)
        recommender.learn_fit(user_id, garment_id, event.type, event.size, event.return_reason, body_id)

    def garment_registered(event: events_pb2.GarmentRegistered) -> None:
        garment = Garment(
            garment_id=check_id(event.garment_id, "garment_id", InvalidEvent),
            category=category_from_proto(event.category, "category", InvalidEvent),
            content_latent=check_latent(
                event.content_latent, "content_latent", recommender.cold_start_map.latent_dim, InvalidEvent
            ),
            price_minor=event.price.amount_minor,
            name=check_name(event.name, "name", InvalidEvent),
            size_chart_id=check_chart_id(event.size_chart_id, "size_chart_id", InvalidEvent) if event.size_chart_id else "",
        )
        recommender.register_garment(garment)

    def user_deleted(event: events_pb2.UserDeleted) -> None:
        recommender.forget_user(check_id(event.user_id, "user_id", InvalidEvent))

    def body_updated(event: events_pb2.BodyUpdated) -> None:
        body_id = check_id(event.body_id, "body_id", InvalidEvent)
        sex_from_proto(event.sex, "sex", InvalidEvent)
        latent = check_latent(event.body_latent, "body_latent", BODY_LATENT_DIM, InvalidEvent)
        recommender.set_body(body_id, event.sex, latent.tolist(), check_fit_profile(event.fit_profile))

    def body_deleted(event: events_pb2.BodyDeleted) -> None:
        recommender.forget_body(check_id(event.body_id, "body_id", InvalidEvent))

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
                session_id=interaction.session_id,
                size=interaction.size,
                return_reason=interaction.return_reason,
                body_id=interaction.body_id,
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
