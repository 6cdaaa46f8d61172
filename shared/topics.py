"""Kafka topics of the suite and the event types each carries."""

from __future__ import annotations

from tryon.shared.proto import events_pb2

INTERACTIONS = "tryon.interactions.v1"
GARMENTS = "tryon.garments.v1"
BODIES = "tryon.bodies.v1"
USERS = "tryon.users.v1"
DLQ_SUFFIX = ".dlq"

TOPIC_BY_EVENT = {
    events_pb2.InteractionRecorded: INTERACTIONS,
    events_pb2.GarmentRegistered: GARMENTS,
    events_pb2.BodyUpdated: BODIES,
    events_pb2.BodyDeleted: BODIES,
    events_pb2.UserDeleted: USERS,
}
EVENT_TYPES_BY_NAME = {event.DESCRIPTOR.full_name: event for event in TOPIC_BY_EVENT}


def dlq_topic(topic: str) -> str:
    """The dead-letter topic of a topic."""
    return topic + DLQ_SUFFIX


def topic_of(event_type: type) -> str:
    """The topic an event type is published to."""
    try:
        return TOPIC_BY_EVENT[event_type]
    except KeyError:
        raise ValueError(f"{event_type.__name__} is not an event of tryon.v1") from None
