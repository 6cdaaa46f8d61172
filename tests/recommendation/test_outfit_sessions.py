"""Outfit sessions of the simulator, and the session id on its way from a request to an event."""

from __future__ import annotations

import numpy as np
import pytest

from tryon.services.recommendation.catalogue import synthetic_catalogue
from tryon.services.recommendation.domain import InteractionInput, RecommendationDomain
from tryon.services.recommendation.handlers import KafkaInteractionPublisher
from tryon.services.recommendation.outfits import OUTFIT_FORMS, missing_roles, role_of
from tryon.services.recommendation.simulator import SESSION_COLUMNS, OutfitSessionSimulator, session_outfits
from tryon.shared.errors import InvalidArgument

CATALOGUE = synthetic_catalogue(600, latent_dim=8, seed=11)


@pytest.fixture(scope="module")
def simulated():
    simulator = OutfitSessionSimulator(CATALOGUE, seed=3)
    interactions, purchases = simulator.sessions(simulator.make_shoppers(150), sessions_per_shopper=2)
    return simulator, interactions, purchases


def test_each_session_buys_one_outfit_of_a_known_form(simulated):
    _, interactions, _ = simulated
    assert list(interactions.columns) == list(SESSION_COLUMNS)
    outfits = session_outfits(interactions)
    assert len(outfits) == 300
    forms = {tuple(sorted(role_of(CATALOGUE[g].category) for g in outfit)) for outfit in outfits}
    assert forms <= {tuple(sorted(form)) for form in OUTFIT_FORMS}


def test_outfits_follow_the_hidden_style_rule_but_not_always(simulated):
    simulator, interactions, _ = simulated
    outfits = session_outfits(interactions)
    kept = np.mean([simulator.compatible([CATALOGUE.position[g] for g in outfit]) for outfit in outfits])
    assert 0.6 < kept < 0.95


def test_returns_come_from_sizes_that_do_not_fit(simulated):
    _, interactions, purchases = simulated
    assert 0.1 < purchases["returned"].mean() < 0.45
    assert purchases.loc[~purchases["fits"], "returned"].all()
    assert purchases.loc[purchases["fits"], "returned"].mean() < 0.1
    assert (purchases.loc[purchases["role"] == "shoes", "size"] == "one size").all()
    assert (interactions["type"] == "RETURN").sum() == purchases["returned"].sum()


def test_roles_that_cannot_share_an_outfit_are_refused():
    assert missing_roles(["top"]) == ("bottom", "shoes")
    assert missing_roles(["dress"]) == ("shoes",)
    with pytest.raises(InvalidArgument, match="dress with a top"):
        missing_roles(["dress", "bottom"])
    with pytest.raises(InvalidArgument, match="two garments of role 'shoes'"):
        missing_roles(["shoes", "shoes"])


class _Recorder:
    def __init__(self) -> None:
        self.events = []

    def publish(self, events) -> None:
        self.events.extend(events)


class _Catalogue:
    def has_garment(self, garment_id: str) -> bool:
        return True


def test_a_session_id_is_checked_and_travels_in_the_event():
    recorder = _Recorder()
    domain = RecommendationDomain(_Catalogue(), KafkaInteractionPublisher(recorder))
    domain.record_interactions([InteractionInput("ann", "g1", 4, session_id="order-7")])
    assert recorder.events[0][0].session_id == "order-7"
    with pytest.raises(InvalidArgument, match=r"interactions\[0\].session_id must not hold control"):
        domain.record_interactions([InteractionInput("ann", "g1", 4, session_id="order\n7")])
    with pytest.raises(InvalidArgument, match=r"interactions\[0\].session_id must be at most 256"):
        domain.record_interactions([InteractionInput("ann", "g1", 4, session_id="x" * 257)])
