"""Shopper histories: weights per interaction type, order independence, snapshots."""

from __future__ import annotations

import random

import pytest

from tryon.services.recommendation.history import (
    INTERACTION_WEIGHTS,
    HistoryStore,
    InteractionKind,
    fold_interactions,
    kind_from_name,
)


def test_weights_sum_per_garment_and_return_counts_against_it():
    store = HistoryStore()
    for kind in (InteractionKind.VIEW, InteractionKind.PURCHASE, InteractionKind.RETURN):
        store.record("ann", "coat-1", kind)
    store.record("ann", "shoe-2", InteractionKind.TRY_ON)
    history = store.get("ann")
    assert history.weights == {"coat-1": 1.0, "shoe-2": 2.0}
    assert history.interaction_count == 4 and history.seen == {"coat-1", "shoe-2"}
    assert INTERACTION_WEIGHTS[InteractionKind.RETURN] < 0 < INTERACTION_WEIGHTS[InteractionKind.VIEW]


def test_version_changes_on_every_update_and_forget():
    store = HistoryStore()
    assert store.version("ann") == 0
    store.record("ann", "a", InteractionKind.VIEW)
    first = store.version("ann")
    store.record("bob", "a", InteractionKind.VIEW)
    assert store.version("ann") == first
    assert store.forget("ann") and store.version("ann") != first
    assert store.get("ann").interaction_count == 0 and not store.forget("nobody-here")


def test_a_history_handed_out_keeps_its_state_and_cannot_be_changed():
    store = HistoryStore()
    store.record("ann", "coat-1", InteractionKind.VIEW)
    before = store.get("ann")
    assert store.get("ann") is before
    with pytest.raises(TypeError):
        before.weights["coat-1"] = 9.0
    store.record("ann", "coat-1", InteractionKind.PURCHASE)
    store.record("ann", "shoe-2", InteractionKind.VIEW)
    assert before.weights == {"coat-1": 1.0} and before.seen == {"coat-1"} and before.interaction_count == 1
    after = store.get("ann")
    assert after.weights == {"coat-1": 6.0, "shoe-2": 1.0} and after.seen == {"coat-1", "shoe-2"}
    assert after.interaction_count == 3


def test_fold_does_not_depend_on_order_and_snapshot_round_trips():
    events = [(f"u{i % 7}", f"g{i % 11}", InteractionKind(1 + i % 5)) for i in range(300)]
    reference = fold_interactions(events, deleted_users=["u3"])
    shuffled = events[:]
    random.Random(1).shuffle(shuffled)
    assert fold_interactions(shuffled, deleted_users=["u3"]) == reference
    assert "u3" not in reference
    store = HistoryStore()
    for event in events:
        store.record(*event)
    restored = HistoryStore.from_state(store.to_state())
    assert restored.get("u1") == store.get("u1")


@pytest.mark.parametrize("name", ["PURCHASE", "purchase", "INTERACTION_TYPE_PURCHASE"])
def test_kind_from_name(name):
    assert kind_from_name(name) is InteractionKind.PURCHASE


def test_kind_from_name_lists_accepted_names():
    with pytest.raises(ValueError, match="VIEW, TRY_ON"):
        kind_from_name("LIKE")
