"""The compatibility space, its FAISS indexes, CompleteOutfit and RecommendOutfits over them."""

from __future__ import annotations

import itertools
from dataclasses import replace

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tryon.services.recommendation.catalogue import DRESS_CATEGORIES, TOP_CATEGORIES, synthetic_catalogue
from tryon.services.recommendation.compatibility import (
    CompatibilityConfig,
    CompatibilitySpace,
    embed_catalogue,
    fill_in_the_blank,
    train_compatibility,
)
from tryon.services.recommendation.domain import RecommendationDomain
from tryon.services.recommendation.history import InteractionKind
from tryon.services.recommendation.index import ItemIndex
from tryon.services.recommendation.multvae import MultVAEConfig
from tryon.services.recommendation.outfit_index import OutfitIndex
from tryon.services.recommendation.outfits import ROLES, missing_roles, role_of
from tryon.services.recommendation.recommender import ModelArtifacts, Recommender
from tryon.services.recommendation.servicer import RecommendationServicer, registration
from tryon.services.recommendation.simulator import OutfitSessionSimulator, session_outfits
from tryon.services.recommendation.train import train_artifacts
from tryon.shared.proto import recommendation_service_pb2 as pb
from tryon.shared.proto import recommendation_service_pb2_grpc as pb_grpc
from tryon.shared.server import serve
from tryon.shared.settings import ServerSettings

CATALOGUE = synthetic_catalogue(500, latent_dim=8, seed=21)
TINY_CONFIG = MultVAEConfig(hidden_dims=(16,), latent_dim=4, epochs=2, batch_size=64)


def _first(role: str) -> str:
    return next(g for g, c in zip(CATALOGUE.garment_ids, CATALOGUE.categories) if role_of(c) == role)


@pytest.fixture(scope="module")
def sessions():
    simulator = OutfitSessionSimulator(CATALOGUE, seed=5)
    interactions, _ = simulator.sessions(simulator.make_shoppers(300), sessions_per_shopper=3)
    return simulator, interactions


@pytest.fixture(scope="module")
def artifacts(sessions):
    return train_artifacts(sessions[1], CATALOGUE, TINY_CONFIG, progress=False)


@pytest.fixture(scope="module")
def recommender(artifacts):
    return Recommender(artifacts)


@pytest.fixture(scope="module")
def stub(recommender):
    class Publisher:
        def publish_interactions(self, interactions):
            return [str(i) for i in range(len(interactions))]

        def publish_user_deleted(self, user_id):
            return "deleted"

    servicer = RecommendationServicer(RecommendationDomain(recommender, Publisher()))
    running = serve("recommendation", [registration(servicer)], ServerSettings())
    channel = grpc.insecure_channel(running.address)
    yield pb_grpc.RecommendationServiceStub(channel)
    channel.close()
    running.stop(grace=0)


def test_training_lowers_the_loss_and_beats_chance_on_held_out_outfits(sessions):
    simulator, interactions = sessions
    outfits = session_outfits(interactions)
    model, losses = train_compatibility(
        CATALOGUE, outfits[:700], CompatibilityConfig(latent_dim=8, epochs=8), progress=False
    )
    assert np.isfinite(losses).all() and losses[-1] < 0.8 * losses[0]
    space = embed_catalogue(model, CATALOGUE)
    held_out = [[CATALOGUE.position[g] for g in o] for o in outfits[700:]]
    accuracy = fill_in_the_blank(held_out, space.roles, space.score, np.random.default_rng(0))
    assert accuracy > 0.4  # chance is 0.25


def test_the_saved_space_is_the_trained_one(artifacts, tmp_path):
    artifacts.save(tmp_path)
    loaded = ModelArtifacts.load(tmp_path)
    first, second = embed_catalogue(artifacts.compatibility, CATALOGUE), embed_catalogue(loaded.compatibility, CATALOGUE)
    np.testing.assert_allclose(first.general, second.general, rtol=1e-6)
    np.testing.assert_allclose(first.masks, second.masks, rtol=1e-6)


def test_each_role_pair_index_returns_the_exactly_most_compatible_garments(artifacts):
    outfit_index = OutfitIndex(embed_catalogue(artifacts.compatibility, CATALOGUE))
    space = outfit_index.space
    anchor = CATALOGUE.position[_first("top")]
    for target in ("bottom", "shoes"):
        members = np.flatnonzero(space.roles == ROLES.index(target))
        exact = sorted(members.tolist(), key=lambda p: -space.score(anchor, p))[:5]
        assert outfit_index.nearest(anchor, ROLES.index(target), 5) == exact


def test_batched_completion_of_many_anchors_matches_completing_each_alone(artifacts):
    outfit_index = OutfitIndex(embed_catalogue(artifacts.compatibility, CATALOGUE))
    space = outfit_index.space
    for role in ("top", "dress"):
        anchors = np.flatnonzero(space.roles == ROLES.index(role))[:6]
        batched = outfit_index.complete_anchors(anchors, 2, candidates=4)
        alone = [
            (int(anchor), completion)
            for anchor in anchors
            for completion in outfit_index.complete([int(anchor)], missing_roles([role]), 2, candidates=4)
        ]
        assert [(a, c.added) for a, c in batched] == [(a, c.added) for a, c in alone]
        np.testing.assert_allclose([c.compatibility for _, c in batched], [c.compatibility for _, c in alone], rtol=1e-5)


def test_the_nearest_table_holds_what_the_searches_return(artifacts):
    space = embed_catalogue(artifacts.compatibility, CATALOGUE)
    tabled, searched = OutfitIndex(space), OutfitIndex(space, table_roles=())
    assert set(tabled.nearest_table) == {(0, 1), (0, 3), (2, 3)} and not searched.nearest_table
    for (anchor_role, target), table in tabled.nearest_table.items():
        anchors = np.flatnonzero(space.roles == anchor_role)
        np.testing.assert_array_equal(tabled.nearest_many(anchors, target, 4), searched.nearest_many(anchors, target, 4))
        # Leaving out most of the first anchor's row makes it search for the rest.
        dropped = {space.garment_ids[p] for p in table[0, :6].tolist()}
        kept = tabled.nearest_many(anchors, target, 4, keep=lambda g: g not in dropped)
        np.testing.assert_array_equal(kept, searched.nearest_many(anchors, target, 4, keep=lambda g: g not in dropped))
        assert (kept[0] >= 0).all() and not dropped & {space.garment_ids[p] for p in kept[0].tolist()}


def test_the_best_completions_scored_at_start_are_those_each_call_would_score(artifacts):
    space = embed_catalogue(artifacts.compatibility, CATALOGUE)
    tabled, searched = OutfitIndex(space), OutfitIndex(space, table_roles=())
    assert set(tabled.best_completions) == {0, 2} and not searched.best_completions
    for role in (0, 2):
        anchors = np.flatnonzero(space.roles == role)
        for per_anchor in (1, 2):
            assert tabled.complete_anchors(anchors, per_anchor, candidates=4) == searched.complete_anchors(
                anchors, per_anchor, candidates=4
            )


def test_complete_ranks_every_combination_of_candidates_by_the_mean_compatibility_of_its_pairs(artifacts):
    outfit_index = OutfitIndex(embed_catalogue(artifacts.compatibility, CATALOGUE))
    space = outfit_index.space
    for roles in (("top",), ("shoes",), ("dress",), ("top", "shoes"), ("bottom", "shoes")):
        given = [CATALOGUE.position[_first(role)] for role in roles]
        missing = missing_roles(roles)
        pools = [
            sorted(
                sorted({p for g in given for p in outfit_index.nearest(g, ROLES.index(role), 8)}),
                key=lambda p: -sum(space.score(p, g) for g in given),
            )[:10]
            for role in missing
        ]
        expected = sorted(
            ((space.outfit_score([*given, *added]), added) for added in itertools.product(*pools)), key=lambda e: -e[0]
        )[:10]
        completions = outfit_index.complete(given, missing, 10)
        assert [c.added for c in completions] == [added for _, added in expected]
        np.testing.assert_allclose([c.compatibility for c in completions], [score for score, _ in expected], rtol=1e-5)


def test_outfit_anchors_are_each_roles_favourites_from_one_search(artifacts):
    recommender = Recommender(artifacts)
    ids = CATALOGUE.garment_ids
    # Two tastes along two axes: the catalogue in a random order, and the same order with every dress last.
    scores = np.random.default_rng(0).normal(size=len(ids))
    dresses_last = np.where(np.isin(CATALOGUE.categories, list(DRESS_CATEGORIES)), scores - 100.0, scores)
    index = ItemIndex.build(ids, np.stack([scores, dresses_last], axis=1))
    disliked = {g for g, _ in index.search(np.array([[1.0, 0.0]]), 3, keep=lambda g: CATALOGUE[g].category in TOP_CATEGORIES)[0]}
    searches = []
    recommender.item_index = ItemIndex.build(ids, np.stack([scores, dresses_last], axis=1))
    for name in ("search", "search_ids"):
        method = getattr(recommender.item_index, name)
        setattr(
            recommender.item_index, name,
            lambda *args, method=method, **options: searches.append(args) or method(*args, **options),
        )
    for query, searches_made in (([1.0, 0.0], 1), ([0.0, 1.0], 2)):
        searches.clear()
        anchors = recommender._outfit_anchors(np.array(query, dtype=np.float32), disliked)
        assert len(searches) == searches_made
        expected = [
            g
            for allowed in (TOP_CATEGORIES, DRESS_CATEGORIES)
            for g, _ in index.search(
                np.array([query]), 12, keep=lambda g, allowed=allowed: g not in disliked and CATALOGUE[g].category in allowed
            )[0]
        ]
        assert anchors == expected and len(anchors) == 24


def test_outfit_anchors_follow_registered_garments_and_changed_categories(artifacts, tmp_path):
    # Its own copy of the indexes: registrations add to them.
    artifacts.save(tmp_path)
    recommender = Recommender(ModelArtifacts.load(tmp_path))
    dress = next(g for g, c in zip(CATALOGUE.garment_ids, CATALOGUE.categories) if c in DRESS_CATEGORIES)
    # A new dress far out in content space gets a vector of the largest trained norm: the best garment of its own direction.
    far = CATALOGUE[dress].content_latent * 50
    recommender.register_garment(replace(CATALOGUE[dress], garment_id="new-dress", content_latent=far))
    query = recommender._item_vector("new-dress")[0]

    def expected() -> list[str]:
        return [
            g
            for allowed in (TOP_CATEGORIES, DRESS_CATEGORIES)
            for g, _ in recommender.item_index.search(
                query[None, :], 12, keep=lambda g, allowed=allowed: recommender.garment(g).category in allowed
            )[0]
        ]

    anchors = recommender._outfit_anchors(query, set())
    assert "new-dress" in anchors and anchors == expected()
    # A top registered again as trousers keeps its place in the item index but is no anchor any more.
    first_top = anchors[0]
    recommender.register_garment(replace(CATALOGUE[first_top], category=1))
    anchors = recommender._outfit_anchors(query, set())
    assert first_top not in anchors and anchors == expected()


def test_large_roles_get_ivf_indexes_that_find_the_exact_neighbours():
    rng = np.random.default_rng(3)
    count = 4 * 6_000
    roles = np.repeat(np.arange(len(ROLES)), count // len(ROLES))
    general = rng.normal(size=(count, 16)).astype(np.float32)
    masks = np.abs(rng.normal(size=(4, 16))).astype(np.float32)
    space = CompatibilitySpace([f"g{i}" for i in range(count)], roles, general, masks)
    approximate, exact = OutfitIndex(space, table_roles=()), OutfitIndex(space, "Flat", table_roles=())
    assert approximate.indexes[(0, 1)].factory.startswith("IVF")
    anchors = np.flatnonzero(roles == 0)[:100]
    found, truth = approximate.nearest_many(anchors, 1, 4), exact.nearest_many(anchors, 1, 4)
    recall = np.mean([len(set(a) & set(b)) / 4 for a, b in zip(found.tolist(), truth.tolist())])
    assert recall >= 0.9


def test_complete_outfit_fills_the_missing_roles_around_the_given_garment(stub, artifacts):
    top = _first("top")
    response = stub.CompleteOutfit(pb.CompleteOutfitRequest(garment_ids=[top], k=5), timeout=10)
    assert len(response.outfits) == 5
    scores = [o.score for o in response.outfits]
    assert scores == sorted(scores, reverse=True)
    for outfit in response.outfits:
        ids = [g.garment_id for g in outfit.garments]
        assert ids[0] == top
        assert sorted(role_of(CATALOGUE[g].category) for g in ids) == ["bottom", "shoes", "top"]
    space = embed_catalogue(artifacts.compatibility, CATALOGUE)
    best = [CATALOGUE.position[g.garment_id] for g in response.outfits[0].garments]
    random_outfits = [
        [best[0], *(int(rng.choice(np.flatnonzero(space.roles == ROLES.index(r)))) for r in ("bottom", "shoes"))]
        for rng in [np.random.default_rng(0)]
        for _ in range(20)
    ]
    assert space.outfit_score(best) >= max(space.outfit_score(o) for o in random_outfits)


def test_recommend_outfits_come_from_the_compatibility_space(stub, recommender):
    recommender.apply_interaction("ann", _first("top"), InteractionKind.PURCHASE)
    response = stub.RecommendOutfits(pb.RecommendOutfitsRequest(user_id="ann", k=6), timeout=10)
    assert len(response.outfits) == 6 and not response.cold_start
    for outfit in response.outfits:
        roles = sorted(role_of(CATALOGUE[g.garment_id].category) for g in outfit.garments)
        assert roles in (["bottom", "shoes", "top"], ["dress", "shoes"])


def test_recommend_outfits_rank_best_first_and_spread_over_different_garments(recommender):
    for garment_id in CATALOGUE.garment_ids[20:26]:
        recommender.apply_interaction("cam", garment_id, InteractionKind.TRY_ON)
    outfits, _ = recommender.outfits("cam", 10)
    assert len(outfits) == 10
    assert [o.score for o in outfits] == sorted((o.score for o in outfits), reverse=True)
    pieces = [item.garment_id for outfit in outfits for item in outfit.garments]
    assert len(pieces) == len(set(pieces))


@pytest.mark.parametrize(
    ("garment_ids", "k", "code", "words"),
    [
        (["no-such-garment"], 3, grpc.StatusCode.NOT_FOUND, "not in the catalogue"),
        ([_first("dress"), _first("top")], 3, grpc.StatusCode.INVALID_ARGUMENT, "mixes a dress"),
        ([_first("shoes"), _first("shoes")], 3, grpc.StatusCode.INVALID_ARGUMENT, "two garments of role"),
        ([_first("top")], 0, grpc.StatusCode.INVALID_ARGUMENT, "k must be between 1 and 100"),
        ([_first("top")], 101, grpc.StatusCode.INVALID_ARGUMENT, "k must be between 1 and 100"),
        ([], 3, grpc.StatusCode.INVALID_ARGUMENT, "garment_ids must hold 1 to 3"),
    ],
)
def test_bad_complete_outfit_requests_get_a_status_that_says_what_to_fix(stub, garment_ids, k, code, words):
    with pytest.raises(grpc.RpcError) as caught:
        stub.CompleteOutfit(pb.CompleteOutfitRequest(garment_ids=garment_ids, k=k), timeout=10)
    assert caught.value.code() == code
    assert words in caught.value.details()


IDS = st.one_of(st.sampled_from(CATALOGUE.garment_ids[:30]), st.text(max_size=300))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(garment_ids=st.lists(IDS, max_size=5), k=st.integers(-(2**31), 2**31 - 1) | st.integers(0, 101),
       user_id=st.one_of(st.just(""), st.text(max_size=300)))
def test_complete_outfit_never_answers_internal(stub, garment_ids, k, user_id):
    try:
        stub.CompleteOutfit(pb.CompleteOutfitRequest(garment_ids=garment_ids, k=k, user_id=user_id), timeout=10)
    except grpc.RpcError as error:
        assert error.code() in {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}, error.details()
        assert error.details()
