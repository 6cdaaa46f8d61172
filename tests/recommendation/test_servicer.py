"""RecommendationService over gRPC on loopback: answers, validation and status codes.

The server is the real shared server with a tiny trained model of each servable family (Mult-VAE,
RecVAE, CFGAN: ``family_config``); the event publisher is an in-memory recorder (the Kafka path
is covered by test_live_personalization.py).
"""

from __future__ import annotations


import grpc
import pytest

from tryon.services.recommendation.catalogue import synthetic_catalogue
from tryon.services.recommendation.domain import RecommendationDomain
from tryon.services.recommendation.recommender import Recommender
from tryon.services.recommendation.servicer import RecommendationServicer, registration
from tryon.services.recommendation.simulator import ShopperSimulator
from tryon.services.recommendation.train import train_artifacts
from tryon.shared.proto import common_pb2
from tryon.shared.proto import recommendation_service_pb2 as pb
from tryon.shared.proto import recommendation_service_pb2_grpc as pb_grpc
from tryon.shared.server import STARTING_MESSAGE, serve
from tryon.shared.settings import ServerSettings


class RecordingPublisher:
    """Keeps what would be published."""

    def __init__(self) -> None:
        self.interactions = []
        self.deleted = []

    def publish_interactions(self, interactions):
        self.interactions.extend(interactions)
        return [f"event-{len(self.interactions) - len(interactions) + i}" for i in range(len(interactions))]

    def publish_user_deleted(self, user_id):
        self.deleted.append(user_id)
        return f"deleted-{user_id}"


@pytest.fixture(scope="module")
def catalogue():
    return synthetic_catalogue(200, latent_dim=4, seed=2)


@pytest.fixture(scope="module")
def served(catalogue, family_config):
    simulator = ShopperSimulator(catalogue, seed=1)
    artifacts = train_artifacts(
        simulator.interactions_table(simulator.make_shoppers(80), 10), catalogue, family_config, progress=False
    )
    publisher = RecordingPublisher()
    servicer = RecommendationServicer()
    running = serve("recommendation", [registration(servicer)], ServerSettings())
    channel = grpc.insecure_channel(running.address)
    stub = pb_grpc.RecommendationServiceStub(channel)
    with pytest.raises(grpc.RpcError) as not_ready:
        stub.RecommendGarments(pb.RecommendGarmentsRequest(user_id="ann", k=3))
    assert not_ready.value.code() == grpc.StatusCode.UNAVAILABLE
    recommender = Recommender(artifacts)
    servicer.attach(RecommendationDomain(recommender, publisher))
    yield stub, recommender, publisher
    channel.close()
    running.stop(grace=0)


def code_of(call, request):
    with pytest.raises(grpc.RpcError) as error:
        call(request)
    return error.value.code(), error.value.details()


def test_calls_before_start_up_attaches_the_domain_answer_unavailable():
    running = serve("recommendation", [registration(RecommendationServicer())], ServerSettings())
    try:
        with grpc.insecure_channel(running.address) as channel:
            stub = pb_grpc.RecommendationServiceStub(channel)
            for call, request in (
                (stub.RecommendGarments, pb.RecommendGarmentsRequest(user_id="ann", k=3)),
                (stub.RecordInteractions, pb.RecordInteractionsRequest()),
                (stub.DeleteUser, pb.DeleteUserRequest(user_id="ann")),
            ):
                assert code_of(call, request) == (grpc.StatusCode.UNAVAILABLE, STARTING_MESSAGE)
    finally:
        running.stop(grace=0)


def test_recommend_garments_for_new_and_known_shoppers(served, catalogue):
    stub, recommender, _ = served
    cold = stub.RecommendGarments(pb.RecommendGarmentsRequest(user_id="newcomer", k=5))
    assert cold.cold_start and len(cold.garments) == 5
    recommender.apply_interaction("ann", catalogue.garment_ids[0], 4)
    warm = stub.RecommendGarments(pb.RecommendGarmentsRequest(user_id="ann", k=5, categories=[2, 3]))
    assert not warm.cold_start and warm.history_size == 1 and len(warm.garments) == 5
    assert {g.category for g in warm.garments} <= {2, 3}
    assert catalogue.garment_ids[0] not in {g.garment_id for g in warm.garments}
    assert [g.score for g in warm.garments] == sorted((g.score for g in warm.garments), reverse=True)


def test_similar_and_outfits(served, catalogue):
    stub, _, _ = served
    similar = stub.SimilarGarments(pb.SimilarGarmentsRequest(garment_id=catalogue.garment_ids[1], k=4))
    assert len(similar.garments) == 4
    outfits = stub.RecommendOutfits(pb.RecommendOutfitsRequest(user_id="ann", k=3))
    assert len(outfits.outfits) == 3 and all(len(o.garments) in (2, 3) for o in outfits.outfits)


def test_record_interactions_and_delete_user_publish(served, catalogue):
    stub, recommender, publisher = served
    response = stub.RecordInteractions(pb.RecordInteractionsRequest(interactions=[
        pb.Interaction(user_id="bob", garment_id=catalogue.garment_ids[2], type=common_pb2.INTERACTION_TYPE_VIEW),
        pb.Interaction(user_id="bob", garment_id=catalogue.garment_ids[3], type=4),
    ]))
    assert len(response.event_ids) == 2 and [i.kind for i in publisher.interactions[-2:]] == [1, 4]
    recommender.apply_interaction("bob", catalogue.garment_ids[2], 1)
    assert stub.DeleteUser(pb.DeleteUserRequest(user_id="bob")).event_id == "deleted-bob"
    assert recommender.histories.get("bob").interaction_count == 0


@pytest.mark.parametrize(
    ("method", "request_message", "code", "phrase"),
    [
        ("RecommendGarments", pb.RecommendGarmentsRequest(user_id="a", k=0), "INVALID_ARGUMENT", "k must be between 1 and 1000"),
        ("RecommendGarments", pb.RecommendGarmentsRequest(user_id="a", k=1001), "INVALID_ARGUMENT", "k must be"),
        ("RecommendGarments", pb.RecommendGarmentsRequest(user_id="", k=3), "INVALID_ARGUMENT", "user_id is required"),
        ("RecommendGarments", pb.RecommendGarmentsRequest(user_id="a", k=3, categories=[0]), "INVALID_ARGUMENT", "categories"),
        ("RecommendGarments", pb.RecommendGarmentsRequest(user_id="a", k=3, categories=[99]), "INVALID_ARGUMENT", "categories"),
        ("SimilarGarments", pb.SimilarGarmentsRequest(garment_id="nope", k=3), "NOT_FOUND", "garment_id"),
        ("SimilarGarments", pb.SimilarGarmentsRequest(garment_id="", k=3), "INVALID_ARGUMENT", "garment_id is required"),
        ("RecommendOutfits", pb.RecommendOutfitsRequest(user_id="a", k=101), "INVALID_ARGUMENT", "between 1 and 100"),
        ("RecommendOutfits", pb.RecommendOutfitsRequest(user_id="a", k=2, body_id="ghost"), "NOT_FOUND", "body_id"),
        ("RecordInteractions", pb.RecordInteractionsRequest(), "INVALID_ARGUMENT", "1 to 1000"),
        ("RecordInteractions", pb.RecordInteractionsRequest(interactions=[pb.Interaction(user_id="a", garment_id="g001")]),
         "INVALID_ARGUMENT", "type must be one of"),
        ("RecordInteractions", pb.RecordInteractionsRequest(interactions=[pb.Interaction(user_id="a", garment_id="zz", type=1)]),
         "NOT_FOUND", "not in the catalogue"),
        ("DeleteUser", pb.DeleteUserRequest(), "INVALID_ARGUMENT", "user_id is required"),
        ("DeleteUser", pb.DeleteUserRequest(user_id="a\r\nb"), "INVALID_ARGUMENT", "user_id must not hold control characters"),
        ("RecommendGarments", pb.RecommendGarmentsRequest(user_id="u" * 257, k=3), "INVALID_ARGUMENT", "at most 256"),
        ("RecordInteractions", pb.RecordInteractionsRequest(interactions=[pb.Interaction(user_id="a\u200b", garment_id="g001", type=1)]),
         "INVALID_ARGUMENT", "interactions[0].user_id must not hold control characters; character 1 is U+200B"),
    ],
)
def test_bad_requests_get_actionable_statuses(served, method, request_message, code, phrase):
    stub, _, publisher = served
    published_before = len(publisher.interactions)
    status, details = code_of(getattr(stub, method), request_message)
    assert status == getattr(grpc.StatusCode, code) and phrase in details
    assert len(publisher.interactions) == published_before


def test_too_many_interactions_are_rejected_whole(served, catalogue):
    stub, _, publisher = served
    before = len(publisher.interactions)
    many = [pb.Interaction(user_id="c", garment_id=catalogue.garment_ids[0], type=1)] * 1001
    status, details = code_of(stub.RecordInteractions, pb.RecordInteractionsRequest(interactions=many))
    assert status == grpc.StatusCode.INVALID_ARGUMENT and "got 1001" in details
    assert len(publisher.interactions) == before
