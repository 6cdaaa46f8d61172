"""Live personalization: events on a real broker change the next answers, without retraining."""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest

from tryon.services.recommendation.catalogue import synthetic_catalogue
from tryon.services.recommendation.live_state import start_live_domain
from tryon.services.recommendation.multvae import MultVAEConfig
from tryon.services.recommendation.servicer import RecommendationServicer, registration
from tryon.services.recommendation.settings import RecommendationSettings
from tryon.services.recommendation.simulator import ShopperSimulator
from tryon.services.recommendation.train import train_artifacts
from tryon.shared.contract import BODY_LATENT_DIM, category_to_proto
from tryon.shared.events import EventPublisher, new_event_id, read_dlq, timestamp_now
from tryon.shared.lifecycle import Resources
from tryon.shared.outbox import Outbox
from tryon.shared.proto import common_pb2, events_pb2
from tryon.shared.proto import recommendation_service_pb2 as pb
from tryon.shared.proto import recommendation_service_pb2_grpc as pb_grpc
from tryon.shared.server import serve
from tryon.shared.topics import INTERACTIONS

pytestmark = pytest.mark.integration

TINY_CONFIG = MultVAEConfig(hidden_dims=(32,), latent_dim=8, epochs=2, batch_size=64)
CATALOGUE = synthetic_catalogue(200, latent_dim=4, seed=21)


@pytest.fixture(scope="module")
def artifacts_dir(tmp_path_factory):
    simulator = ShopperSimulator(CATALOGUE, seed=3)
    directory = tmp_path_factory.mktemp("recommendation")
    train_artifacts(
        simulator.interactions_table(simulator.make_shoppers(80), 10), CATALOGUE, TINY_CONFIG, progress=False
    ).save(directory / "artifacts")
    return directory


@pytest.fixture
def service(artifacts_dir, fresh_kafka_bootstrap, tmp_path):
    # Each test gets its own state (snapshot) beside the shared trained artifacts.
    (tmp_path / "artifacts").symlink_to(artifacts_dir / "artifacts")
    settings = RecommendationSettings(data_dir=tmp_path, snapshot_interval_seconds=0.5)
    servicer = RecommendationServicer()
    running = serve("recommendation", [registration(servicer)], settings)
    resources = Resources()
    servicer.attach(start_live_domain(settings, resources, bootstrap_servers=fresh_kafka_bootstrap))
    channel = grpc.insecure_channel(running.address)
    publisher = EventPublisher(
        fresh_kafka_bootstrap, "test-live", Outbox(tmp_path / "test-outbox.sqlite"), ack_wait_s=0
    ).start()
    yield pb_grpc.RecommendationServiceStub(channel), publisher, fresh_kafka_bootstrap
    publisher.close()
    channel.close()
    running.stop(grace=0)
    resources.close()


def wait_for(condition, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError("condition not met within the timeout")


def ids(response):
    return [g.garment_id for g in response.garments]


def test_recorded_interactions_change_the_next_answer(service):
    stub, _, _ = service
    request = pb.RecommendGarmentsRequest(user_id="ann", k=10)
    before = stub.RecommendGarments(request)
    assert before.cold_start
    trousers = [g for g in CATALOGUE.garment_ids if CATALOGUE[g].category == 1][:3]
    stub.RecordInteractions(pb.RecordInteractionsRequest(interactions=[
        pb.Interaction(user_id="ann", garment_id=g, type=common_pb2.INTERACTION_TYPE_PURCHASE) for g in trousers
    ]))
    after = wait_for(lambda: (r := stub.RecommendGarments(request)).history_size == 3 and r)
    assert not after.cold_start and ids(after) != ids(before)
    assert not set(trousers) & set(ids(after))
    stub.DeleteUser(pb.DeleteUserRequest(user_id="ann"))
    assert stub.RecommendGarments(request).cold_start


def test_registered_garment_is_served_before_any_interaction(service):
    stub, publisher, _ = service
    twin = CATALOGUE.garment_ids[5]
    event = events_pb2.GarmentRegistered(
        event_id=new_event_id(), garment_id="fresh-arrival", category=category_to_proto(CATALOGUE[twin].category),
        name="fresh arrival", content_latent=list(np.asarray(CATALOGUE[twin].content_latent) + 0.01),
    )
    event.occurred_at.CopyFrom(timestamp_now())
    publisher.publish([(event, event.garment_id)])
    assert publisher.wait_until_sent(timeout=10)
    request = pb.RecommendGarmentsRequest(user_id="bea", k=len(CATALOGUE) + 1)
    wait_for(lambda: "fresh-arrival" in ids(stub.RecommendGarments(request)))
    similar = stub.SimilarGarments(pb.SimilarGarmentsRequest(garment_id="fresh-arrival", k=3))
    assert len(similar.garments) == 3


def test_bad_event_goes_to_the_dead_letter_topic_and_consumption_goes_on(service):
    stub, publisher, bootstrap = service
    bad = events_pb2.InteractionRecorded(event_id=new_event_id(), user_id="cy", garment_id="no-such-garment", type=1)
    good = events_pb2.InteractionRecorded(event_id=new_event_id(), user_id="cy", garment_id=CATALOGUE.garment_ids[0], type=1)
    publisher.publish([(bad, "cy"), (good, "cy"), (good, "cy")])
    assert publisher.wait_until_sent(timeout=10)
    wait_for(lambda: stub.RecommendGarments(pb.RecommendGarmentsRequest(user_id="cy", k=3)).history_size == 1)
    letters = wait_for(lambda: [d for d in read_dlq(bootstrap, INTERACTIONS) if "no-such-garment" in d.reason])
    assert letters[0].source_topic == INTERACTIONS
    time.sleep(0.3)
    assert stub.RecommendGarments(pb.RecommendGarmentsRequest(user_id="cy", k=3)).history_size == 1


def test_body_events_gate_outfits(service):
    stub, publisher, _ = service
    request = pb.RecommendOutfitsRequest(user_id="dee", k=2, body_id="body-7")
    with pytest.raises(grpc.RpcError) as unknown:
        stub.RecommendOutfits(request)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    publisher.publish([(events_pb2.BodyUpdated(event_id=new_event_id(), body_id="body-7", body_latent=[0.1] * BODY_LATENT_DIM), "body-7")])
    assert publisher.wait_until_sent(timeout=10)

    def served():
        try:
            return len(stub.RecommendOutfits(request).outfits) == 2
        except grpc.RpcError:
            return False

    wait_for(served)
    publisher.publish([(events_pb2.BodyDeleted(event_id=new_event_id(), body_id="body-7"), "body-7")])
    assert publisher.wait_until_sent(timeout=10)
    wait_for(lambda: not served())
