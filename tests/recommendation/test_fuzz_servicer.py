"""Hypothesis fuzzing of RecommendationService: no request yields INTERNAL (bounded run).

The calls that read the model are fuzzed against a tiny model of each servable family (``family_config``).
"""

from __future__ import annotations


import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tryon.services.recommendation.catalogue import synthetic_catalogue
from tryon.services.recommendation.domain import RecommendationDomain
from tryon.services.recommendation.fit import ChartFit
from tryon.services.recommendation.recommender import Recommender
from tryon.services.recommendation.servicer import RecommendationServicer, registration
from tryon.services.recommendation.simulator import ShopperSimulator
from tryon.services.recommendation.train import train_artifacts
from tryon.shared.proto import recommendation_service_pb2 as pb
from tryon.shared.proto import recommendation_service_pb2_grpc as pb_grpc
from tryon.shared.server import serve
from tryon.shared.settings import ServerSettings

CATALOGUE = synthetic_catalogue(120, latent_dim=4, seed=9)
INT32 = st.integers(-(2**31), 2**31 - 1)
IDS = st.one_of(st.sampled_from(CATALOGUE.garment_ids[:20]), st.text(max_size=300))
BODIES = st.one_of(st.sampled_from(["", "known-body"]), st.text(max_size=300))
USERS = st.one_of(st.sampled_from(["ann", "bob", ""]), st.text(max_size=300))
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


class CountingPublisher:
    """Returns an event id per published item."""

    def publish_interactions(self, interactions):
        return [str(i) for i in range(len(interactions))]

    def publish_user_deleted(self, user_id):
        return "deleted"


def serving(config):
    """A loopback server over a tiny model of ``config``'s family and a known body; yields its stub."""
    simulator = ShopperSimulator(CATALOGUE, seed=0)
    artifacts = train_artifacts(
        simulator.interactions_table(simulator.make_shoppers(40), 10), CATALOGUE, config, progress=False
    )
    recommender = Recommender(artifacts)
    # A known body with a fit profile, so that fuzzing reaches the fit-aware ranking too.
    recommender.set_body("known-body", 1, [0.0] * 16, {"eu_mens_tops": ChartFit(("44", "46"), (0.3, 0.7))})
    servicer = RecommendationServicer(RecommendationDomain(recommender, CountingPublisher()))
    running = serve("recommendation", [registration(servicer)], ServerSettings())
    channel = grpc.insecure_channel(running.address)
    yield pb_grpc.RecommendationServiceStub(channel)
    channel.close()
    running.stop(grace=0)


@pytest.fixture(scope="module")
def stub(family_config):
    """A server over each servable family, for the calls that read the model."""
    yield from serving(family_config)


@pytest.fixture(scope="module")
def served_family_stub(served_family_config):
    """A server over the served family alone, for the calls that never read the model."""
    yield from serving(served_family_config)


def call_without_internal(call, request):
    try:
        call(request, timeout=10)
    except grpc.RpcError as error:
        assert error.code() in {
            grpc.StatusCode.INVALID_ARGUMENT,
            grpc.StatusCode.NOT_FOUND,
            grpc.StatusCode.FAILED_PRECONDITION,
        }, f"{error.code()}: {error.details()}"
        assert error.details()


@FUZZ
@given(
    user_id=USERS,
    k=INT32 | st.integers(0, 1001),
    categories=st.lists(INT32 | st.integers(0, 11), max_size=4),
    include_seen=st.booleans(),
    body_id=BODIES,
)
def test_recommend_garments(stub, user_id, k, categories, include_seen, body_id):
    call_without_internal(stub.RecommendGarments, pb.RecommendGarmentsRequest(
        user_id=user_id, k=k, categories=categories, include_seen=include_seen, body_id=body_id))


@FUZZ
@given(user_id=USERS, k=INT32 | st.integers(0, 101), body_id=BODIES)
def test_recommend_outfits(stub, user_id, k, body_id):
    call_without_internal(stub.RecommendOutfits, pb.RecommendOutfitsRequest(user_id=user_id, k=k, body_id=body_id))


@FUZZ
@given(garment_id=IDS, k=INT32 | st.integers(0, 1001))
def test_similar_garments(stub, garment_id, k):
    call_without_internal(stub.SimilarGarments, pb.SimilarGarmentsRequest(garment_id=garment_id, k=k))


INTERACTIONS = st.builds(
    lambda user_id, garment_id, kind, seconds, nanos, stamped: pb.Interaction(
        user_id=user_id, garment_id=garment_id, type=kind,
        **({"occurred_at": {"seconds": seconds, "nanos": nanos}} if stamped else {}),
    ),
    USERS, IDS, st.integers(-3, 8), st.integers(-(2**62), 2**62), INT32, st.booleans(),
)


@FUZZ
@given(interactions=st.lists(INTERACTIONS, max_size=5), user_id=USERS)
def test_record_interactions_and_delete_user(served_family_stub, interactions, user_id):
    call_without_internal(served_family_stub.RecordInteractions, pb.RecordInteractionsRequest(interactions=interactions))
    call_without_internal(served_family_stub.DeleteUser, pb.DeleteUserRequest(user_id=user_id))
