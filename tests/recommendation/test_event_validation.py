"""Events are checked like RPC requests: on a real broker, each event that breaks the contract goes
to its dead-letter topic with the reason, and the good events around it are applied."""

from __future__ import annotations

import time

import pytest

from tryon.services.recommendation.catalogue import synthetic_catalogue
from tryon.services.recommendation.handlers import event_handlers
from tryon.services.recommendation.multvae import MultVAEConfig
from tryon.services.recommendation.recommender import Recommender
from tryon.services.recommendation.simulator import ShopperSimulator
from tryon.services.recommendation.train import train_artifacts
from tryon.shared.broker import ensure_topics
from tryon.shared.contract import BODY_LATENT_DIM, MAX_LATENT_NORM
from tryon.shared.events import EventConsumer, EventPublisher, new_event_id, read_dlq
from tryon.shared.outbox import Outbox
from tryon.shared.proto import common_pb2, events_pb2
from tryon.shared.topics import BODIES, GARMENTS, INTERACTIONS, USERS

pytestmark = pytest.mark.integration

CATALOGUE = synthetic_catalogue(150, latent_dim=4, seed=31)
TINY_CONFIG = MultVAEConfig(hidden_dims=(16,), latent_dim=4, epochs=2, batch_size=64)
LATENT = [0.5, -0.25, 1.0, 0.75]
BODY = [0.1] * BODY_LATENT_DIM


@pytest.fixture(scope="module")
def artifacts():
    simulator = ShopperSimulator(CATALOGUE, seed=2)
    return train_artifacts(simulator.interactions_table(simulator.make_shoppers(60), 10), CATALOGUE, TINY_CONFIG, progress=False)


def garment(garment_id: str, **fields) -> events_pb2.GarmentRegistered:
    values = {"category": common_pb2.GARMENT_CATEGORY_SNEAKER, "name": "sneaker", "content_latent": LATENT} | fields
    return events_pb2.GarmentRegistered(event_id=new_event_id(), garment_id=garment_id, **values)


def body(body_id: str, **fields) -> events_pb2.BodyUpdated:
    values = {"sex": common_pb2.SEX_FEMALE, "body_latent": BODY} | fields
    return events_pb2.BodyUpdated(event_id=new_event_id(), body_id=body_id, **values)


# (event, key, words the dead-letter reason holds), in publishing order per topic.
BAD_GARMENTS = [
    (garment("g-huge", content_latent=[1e6, 1e6, 1e6, 1e6]), f"content_latent must have an L2 norm of at most {MAX_LATENT_NORM:g}"),
    (garment("g-nan", content_latent=[0.1, float("nan"), 0.1, 0.1]), "content_latent must hold finite numbers"),
    (garment("g-inf", content_latent=[0.1, float("inf"), 0.1, 0.1]), "content_latent must hold finite numbers"),
    (garment("g-short", content_latent=[0.1, 0.2]), "content_latent must hold 4 numbers; got 2"),
    (garment("g-uncategorised", category=0), "category must be one of 1 (GARMENT_CATEGORY_T_SHIRT_TOP)"),
    (garment("g-category-11", category=11), "got 11"),
    (garment("g\nnewline"), "garment_id must not hold control characters; character 1 is U+000A"),
    (garment(""), "garment_id is required"),
    (garment("g" * 257), "garment_id must be at most 256 characters; got 257"),
    (garment("g-nul-name", name="sneaker\x00"), "name must not hold control characters"),
]
BAD_BODIES = [
    (body("b-nan", body_latent=[float("nan")] * BODY_LATENT_DIM), "body_latent must hold finite numbers"),
    (body("b-short", body_latent=[0.1, 0.2]), f"body_latent must hold {BODY_LATENT_DIM} numbers; got 2"),
    (body("b-huge", body_latent=[1e3] * BODY_LATENT_DIM), "body_latent must have an L2 norm of at most"),
    (body("b-sex", sex=7), "sex must be SEX_UNSPECIFIED (0), SEX_FEMALE (1) or SEX_MALE (2); got 7"),
    (body(""), "body_id is required"),
    (body("b\u202eflipped"), "body_id must not hold control characters; character 1 is U+202E"),
    (events_pb2.BodyDeleted(event_id=new_event_id(), body_id="b\x00"), "body_id must not hold control characters"),
]
BAD_INTERACTIONS = [
    (events_pb2.InteractionRecorded(event_id=new_event_id(), user_id="", garment_id=CATALOGUE.garment_ids[0], type=1), "user_id is required"),
    (events_pb2.InteractionRecorded(event_id=new_event_id(), user_id="ann\t", garment_id=CATALOGUE.garment_ids[0], type=1), "user_id must not hold control characters"),
    (events_pb2.InteractionRecorded(event_id=new_event_id(), user_id="ann", garment_id="", type=1), "garment_id is required"),
]
BAD_USERS = [(events_pb2.UserDeleted(event_id=new_event_id(), user_id="x" * 300), "user_id must be at most 256 characters")]


def key_of(event) -> str:
    for field in ("garment_id", "body_id", "user_id"):
        if hasattr(event, field):
            return getattr(event, field) or "empty"
    raise AssertionError(event)


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met within the timeout"
        time.sleep(0.05)


def dead_letters(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> list:
    """The dead letters of ``topic`` in source order, once at least ``count`` are there."""
    deadline = time.monotonic() + timeout
    while True:
        letters = read_dlq(bootstrap, topic, timeout=2)
        if len(letters) >= count or time.monotonic() > deadline:
            return sorted(letters, key=lambda letter: letter.source_offset)


def test_each_bad_event_is_dead_lettered_with_its_reason_and_the_good_ones_are_applied(artifacts, fresh_kafka_bootstrap, tmp_path):
    recommender = Recommender(artifacts)
    ensure_topics(fresh_kafka_bootstrap, [INTERACTIONS, GARMENTS, BODIES, USERS], partitions=1)
    consumer = EventConsumer(fresh_kafka_bootstrap, "validation-test", event_handlers(recommender))
    consumer.start()
    try:
        consumer.wait_until_ready(30)
        first_garment = CATALOGUE.garment_ids[1]
        outbox = Outbox(tmp_path / "outbox.sqlite")
        with EventPublisher(fresh_kafka_bootstrap, "validation-test", outbox, ack_wait_s=0) as publisher:
            stream = [
                garment("g-before"), *(event for event, _ in BAD_GARMENTS), garment("g-after"),
                body("b-before"), *(event for event, _ in BAD_BODIES), body("b-after", sex=common_pb2.SEX_UNSPECIFIED),
                *(event for event, _ in BAD_INTERACTIONS),
                events_pb2.InteractionRecorded(event_id=new_event_id(), user_id="ann", garment_id=first_garment, type=1),
                *(event for event, _ in BAD_USERS),
                events_pb2.UserDeleted(event_id=new_event_id(), user_id="bob"),
            ]
            publisher.publish([(event, key_of(event)) for event in stream])
            assert publisher.wait_until_sent(timeout=10)

        wait_for(lambda: recommender.has_garment("g-after") and recommender.has_body("b-after"))
        wait_for(lambda: recommender.histories.get("ann").interaction_count == 1)
        expected = {GARMENTS: BAD_GARMENTS, BODIES: BAD_BODIES, INTERACTIONS: BAD_INTERACTIONS, USERS: BAD_USERS}
        letters = {topic: dead_letters(fresh_kafka_bootstrap, topic, len(bad)) for topic, bad in expected.items()}
    finally:
        consumer.stop()

    for topic, bad in expected.items():
        reasons = [letter.reason for letter in letters[topic]]
        assert len(reasons) == len(bad), (topic, reasons)
        for reason, (event, words) in zip(reasons, bad):
            assert words in reason, (event, reason)
    assert recommender.has_garment("g-before") and recommender.has_body("b-before")
    assert not any(recommender.has_garment(event.garment_id) for event, _ in BAD_GARMENTS)
    assert not any(recommender.has_body(event.body_id) for event, _ in BAD_BODIES)
    assert recommender.histories.get("ann").seen == {first_garment}
