"""RecommendationService use cases: validate requests, ask the recommender, publish events.

No grpc or kafka here: the servicer converts protobuf to these calls and maps the domain
errors to status codes; the event publisher is injected (``InteractionPublisher``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from tryon.services.recommendation.fit import check_sizing
from tryon.services.recommendation.history import InteractionKind
from tryon.services.recommendation.recommender import OutfitChoice, Recommendation, Recommender, ScoredItem
from tryon.shared.contract import check_id, check_label, check_optional_id
from tryon.shared.errors import InvalidArgument, NotFound

MAX_GARMENTS = 1000
"""Largest k of RecommendGarments and SimilarGarments."""
MAX_OUTFITS = 100
"""Largest k of RecommendOutfits."""
MAX_GIVEN_GARMENTS = 3
"""Most garments CompleteOutfit starts from (an outfit has at most three roles)."""
MAX_INTERACTIONS = 1000
"""Most interactions in one RecordInteractions call."""


@dataclass(frozen=True)
class InteractionInput:
    """One interaction to record, as a caller gave it."""

    user_id: str
    garment_id: str
    kind: int
    occurred_at: datetime | None = None
    session_id: str = ""
    size: str = ""
    return_reason: int = 0
    body_id: str = ""


class InteractionPublisher(Protocol):
    """Where recorded interactions and deletions go (the Kafka topics, in the service)."""

    def publish_interactions(self, interactions: Sequence[InteractionInput]) -> list[str]:
        """Publish InteractionRecorded events (waiting for the broker) and return their event ids."""

    def publish_user_deleted(self, user_id: str) -> str:
        """Publish UserDeleted (waiting for the broker) and return its event id."""


def check_k(k: int, field_name: str, maximum: int) -> int:
    """A result count in 1..maximum."""
    if not 1 <= k <= maximum:
        raise InvalidArgument(f"{field_name} must be between 1 and {maximum}; got {k}")
    return k


def check_categories(labels: Sequence[int]) -> frozenset[int]:
    """Category labels in 0..9."""
    return frozenset(check_label(label, "categories") for label in labels)


class RecommendationDomain:
    """The use cases of RecommendationService over one recommender and one publisher."""

    def __init__(self, recommender: Recommender, publisher: InteractionPublisher) -> None:
        self.recommender = recommender
        self.publisher = publisher

    def recommend_garments(
        self, user_id: str, k: int, categories: Sequence[int] = (), include_seen: bool = False, body_id: str = ""
    ) -> Recommendation:
        """The shopper's best garments, from their history as it is now (and by fit, with a body)."""
        check_id(user_id, "user_id")
        check_k(k, "k", MAX_GARMENTS)
        check_optional_id(body_id, "body_id")
        return self.recommender.recommend(
            user_id, k, check_categories(categories) or None, include_seen, body_id=body_id
        )

    def recommend_outfits(self, user_id: str, k: int, body_id: str = "") -> tuple[list[OutfitChoice], bool]:
        """The shopper's best outfits and whether they came from popularity."""
        check_id(user_id, "user_id")
        check_k(k, "k", MAX_OUTFITS)
        if body_id:
            check_id(body_id, "body_id")
        return self.recommender.outfits(user_id, k, body_id)

    def complete_outfit(self, garment_ids: Sequence[str], k: int, user_id: str = "") -> list[OutfitChoice]:
        """Complete an outfit around 1 to 3 given garments, by the learned compatibility space."""
        if not 1 <= len(garment_ids) <= MAX_GIVEN_GARMENTS:
            raise InvalidArgument(
                f"garment_ids must hold 1 to {MAX_GIVEN_GARMENTS} garments of different roles; got {len(garment_ids)}"
            )
        for position, garment_id in enumerate(garment_ids):
            check_id(garment_id, f"garment_ids[{position}]")
        check_k(k, "k", MAX_OUTFITS)
        check_optional_id(user_id, "user_id")
        return self.recommender.complete_outfit(list(garment_ids), k, user_id)

    def similar_garments(self, garment_id: str, k: int) -> list[ScoredItem]:
        """Garments close to ``garment_id`` in the item space."""
        check_id(garment_id, "garment_id")
        check_k(k, "k", MAX_GARMENTS)
        return self.recommender.similar(garment_id, k)

    def record_interactions(self, interactions: Sequence[InteractionInput]) -> list[str]:
        """Validate every interaction, then publish them all; nothing is published if one is invalid."""
        if not 1 <= len(interactions) <= MAX_INTERACTIONS:
            raise InvalidArgument(f"interactions must hold 1 to {MAX_INTERACTIONS} items; got {len(interactions)}")
        for position, interaction in enumerate(interactions):
            where = f"interactions[{position}]"
            check_id(interaction.user_id, f"{where}.user_id")
            check_id(interaction.garment_id, f"{where}.garment_id")
            check_optional_id(interaction.session_id, f"{where}.session_id")
            if interaction.kind not in set(InteractionKind):
                accepted = ", ".join(f"{kind.value} ({kind.name})" for kind in InteractionKind)
                raise InvalidArgument(f"{where}.type must be one of {accepted}; got {interaction.kind}")
            check_optional_id(interaction.body_id, f"{where}.body_id")
            if not self.recommender.has_garment(interaction.garment_id):
                raise NotFound(f"{where}.garment_id {interaction.garment_id!r} is not in the catalogue")
            chart_id = self.recommender.garment(interaction.garment_id).size_chart_id if interaction.size else ""
            check_sizing(interaction.kind, interaction.size, interaction.return_reason, chart_id, f"{where}.", InvalidArgument)
        return self.publisher.publish_interactions(interactions)

    def delete_user(self, user_id: str) -> str:
        """Forget the shopper here at once and publish UserDeleted for every consumer."""
        check_id(user_id, "user_id")
        event_id = self.publisher.publish_user_deleted(user_id)
        self.recommender.histories.forget(user_id)
        return event_id
