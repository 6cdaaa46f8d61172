"""gRPC servicer of tryon.v1.RecommendationService: protobuf <-> domain calls, nothing more.

Domain errors become status codes in the shared server's interceptor. Until start-up attaches
the domain (model loaded, consumer caught up), every call answers UNAVAILABLE, as in every
service (`tryon.shared.server.ReadyServicer`).
"""

from __future__ import annotations

from datetime import timezone

import grpc

from tryon.services.recommendation.domain import InteractionInput, RecommendationDomain
from tryon.services.recommendation.recommender import ScoredItem
from tryon.shared.contract import CATEGORY_PROTO_VALUES, category_from_proto
from tryon.shared.errors import InvalidArgument
from tryon.shared.proto import recommendation_service_pb2 as pb
from tryon.shared.proto import recommendation_service_pb2_grpc as pb_grpc
from tryon.shared.server import ReadyServicer, ServiceRegistration

SERVICE_FULL_NAME = pb.DESCRIPTOR.services_by_name["RecommendationService"].full_name

_MAX_TIMESTAMP_SECONDS = 253402300799  # 9999-12-31T23:59:59Z, the largest google.protobuf.Timestamp


def _labels_of(categories) -> list[int]:
    return [category_from_proto(value, "categories") for value in categories]


def _add_scored(garments, items: list[ScoredItem]) -> None:
    """Append ``items`` to a repeated ScoredGarment field in place (no message built twice)."""
    add = garments.add
    proto_value = CATEGORY_PROTO_VALUES
    for garment_id, score, category, advised_size, fit_probability, size_offset in items:
        add(
            garment_id=garment_id,
            score=score,
            category=proto_value[category],
            advised_size=advised_size,
            fit_probability=fit_probability,
            size_offset=size_offset,
        )


def _interaction(position: int, message: pb.Interaction) -> InteractionInput:
    occurred_at = None
    if message.HasField("occurred_at"):
        stamp = message.occurred_at
        if not 0 <= stamp.seconds <= _MAX_TIMESTAMP_SECONDS or not 0 <= stamp.nanos <= 999_999_999:
            raise InvalidArgument(
                f"interactions[{position}].occurred_at must be between 1970-01-01 and 9999-12-31 with nanos in 0..999999999"
            )
        occurred_at = stamp.ToDatetime(tzinfo=timezone.utc)
    return InteractionInput(
        message.user_id, message.garment_id, int(message.type), occurred_at, message.session_id,
        message.size, int(message.return_reason), message.body_id,
    )


class RecommendationServicer(ReadyServicer[RecommendationDomain], pb_grpc.RecommendationServiceServicer):
    """Serves RecommendationService from the attached ``RecommendationDomain``."""

    def RecommendGarments(self, request: pb.RecommendGarmentsRequest, context: grpc.ServicerContext):
        answer = self.domain.recommend_garments(
            request.user_id, request.k, _labels_of(request.categories), request.include_seen, request.body_id
        )
        response = pb.RecommendGarmentsResponse(cold_start=answer.cold_start, history_size=answer.history_size)
        _add_scored(response.garments, answer.garments)
        return response

    def RecommendOutfits(self, request: pb.RecommendOutfitsRequest, context: grpc.ServicerContext):
        outfits, cold_start = self.domain.recommend_outfits(request.user_id, request.k, request.body_id)
        response = pb.RecommendOutfitsResponse(cold_start=cold_start)
        for outfit in outfits:
            _add_scored(response.outfits.add(score=outfit.score).garments, outfit.garments)
        return response

    def CompleteOutfit(self, request: pb.CompleteOutfitRequest, context: grpc.ServicerContext):
        outfits = self.domain.complete_outfit(list(request.garment_ids), request.k, request.user_id)
        response = pb.CompleteOutfitResponse()
        for outfit in outfits:
            _add_scored(response.outfits.add(score=outfit.score).garments, outfit.garments)
        return response

    def SimilarGarments(self, request: pb.SimilarGarmentsRequest, context: grpc.ServicerContext):
        similar = self.domain.similar_garments(request.garment_id, request.k)
        response = pb.SimilarGarmentsResponse()
        _add_scored(response.garments, similar)
        return response

    def RecordInteractions(self, request: pb.RecordInteractionsRequest, context: grpc.ServicerContext):
        interactions = [_interaction(i, message) for i, message in enumerate(request.interactions)]
        return pb.RecordInteractionsResponse(event_ids=self.domain.record_interactions(interactions))

    def DeleteUser(self, request: pb.DeleteUserRequest, context: grpc.ServicerContext):
        return pb.DeleteUserResponse(event_id=self.domain.delete_user(request.user_id))


def registration(servicer: RecommendationServicer) -> ServiceRegistration:
    """What `tryon.shared.server.serve` needs to host ``servicer`` as tryon.v1.RecommendationService."""
    return ServiceRegistration(
        SERVICE_FULL_NAME, lambda server: pb_grpc.add_RecommendationServiceServicer_to_server(servicer, server)
    )
