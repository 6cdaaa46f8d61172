"""GarmentService over gRPC: converts tryon.v1 messages to domain calls and back.

Domain errors propagate to the shared error-mapping interceptor, which turns them into
INVALID_ARGUMENT, NOT_FOUND or FAILED_PRECONDITION with the domain's message. Until start-up
attaches the domain (models loaded or trained, publisher connected) the model RPCs answer
UNAVAILABLE, as in every service (`tryon.shared.server.ReadyServicer`); GetGarment, GetGarmentImage,
ListGarments, RenderTryOn and RenderTryOnModel need no model and answer during start-up already, from the catalogue.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import numpy as np
from google.protobuf import json_format

from tryon.services.garment import images
from tryon.services.garment.catalogue import Garment
from tryon.services.garment.domain import (
    GarmentDomain,
    GarmentPicture,
    GarmentReference,
    ImportSummary,
    Price,
    Registration,
)
from tryon.services.garment.tryon import GarmentFitReport, TryOnItem
from tryon.shared.contract import category_from_proto, category_to_proto
from tryon.shared.errors import InvalidArgument
from tryon.shared.interceptors import domain_error_code
from tryon.shared.proto import common_pb2, garment_service_pb2 as pb, garment_service_pb2_grpc
from tryon.shared.server import ReadyServicer, ServiceRegistration

SERVICE_FULL_NAME = pb.DESCRIPTOR.services_by_name["GarmentService"].full_name
_GENERATOR_NAMES = {common_pb2.GENERATOR_UNSPECIFIED: "vae", common_pb2.GENERATOR_VAE: "vae", common_pb2.GENERATOR_GAN: "gan"}


def _generator_name(value: int) -> str:
    try:
        return _GENERATOR_NAMES[value]
    except KeyError:
        raise InvalidArgument(
            f"generator must be GENERATOR_UNSPECIFIED (0, the VAE), GENERATOR_VAE (1) or GENERATOR_GAN (2); got {value}"
        ) from None


def _picture_message(picture: GarmentPicture) -> pb.GeneratedGarment:
    return pb.GeneratedGarment(
        png=images.encode_png(picture.levels),
        latent=picture.latent.astype(float).tolist(),
        category=category_to_proto(picture.category),
    )


def _reference(message: pb.GarmentRef, field: str) -> GarmentReference:
    kind = message.WhichOneof("garment")
    if kind == "garment_id":
        return GarmentReference(garment_id=message.garment_id)
    if kind == "image":
        return GarmentReference(image=message.image)
    raise InvalidArgument(f"{field} must give a garment_id or an image")


def _size_chart(message: common_pb2.SizeChart) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def _registration(request: pb.RegisterGarmentRequest) -> Registration:
    """The domain's registration of a RegisterGarment request (InvalidArgument for a bad category)."""
    price = Price(request.price.currency_code, request.price.amount_minor) if request.HasField("price") else None
    chart = _size_chart(request.size_chart) if request.HasField("size_chart") else None
    return Registration(request.image, request.name, category_from_proto(request.category), price, chart)


def _import_response(summary: ImportSummary) -> pb.ImportGarmentsResponse:
    results = []
    for result in summary.results:
        message = pb.ImportGarmentsResult(index=result.index, item_ref=result.item_ref)
        if result.garment is not None:
            message.garment_id = result.garment.garment_id
        if result.error is not None:
            message.error_code = domain_error_code(result.error).value[0]
            message.error_message = str(result.error)
        results.append(message)
    return pb.ImportGarmentsResponse(
        results=results,
        registered_count=summary.registered_count,
        failed_count=len(summary.results) - summary.registered_count,
        truncated=summary.truncated,
    )


def garment_message(garment: Garment) -> pb.Garment:
    """The proto of a catalogue garment."""
    message = pb.Garment(
        garment_id=garment.garment_id,
        name=garment.name,
        category=category_to_proto(garment.category),
        price=common_pb2.Money(currency_code=garment.currency_code, amount_minor=garment.amount_minor),
        content_latent=np.asarray(garment.content_latent, dtype=float).tolist(),
        image_png=garment.image_png,
        has_original_image=garment.has_original_image,
    )
    if garment.size_chart is not None:
        json_format.ParseDict(garment.size_chart, message.size_chart)
    message.create_time.FromDatetime(garment.create_time)
    return message


class GarmentServicer(ReadyServicer[GarmentDomain], garment_service_pb2_grpc.GarmentServiceServicer):
    """The tryon.v1.GarmentService RPCs over the attached `GarmentDomain`.

    ``catalogue`` is a domain without models over the same catalogue: until `attach`, the RPCs
    that need no model answer from it.
    """

    def __init__(self, domain: GarmentDomain | None = None, *, catalogue: GarmentDomain | None = None) -> None:
        super().__init__(domain)
        self._catalogue = catalogue

    @property
    def catalogue(self) -> GarmentDomain:
        """The domain of the RPCs that need no model: the attached one, else the start-up catalogue."""
        if self._domain is None and self._catalogue is not None:
            return self._catalogue
        return self.domain

    def GenerateGarments(self, request: pb.GenerateGarmentsRequest, context: grpc.ServicerContext) -> pb.GenerateGarmentsResponse:
        """Generate garments of a category, deterministic per seed."""
        pictures = self.domain.generate(
            category_from_proto(request.category), request.count, request.seed, _generator_name(request.generator)
        )
        return pb.GenerateGarmentsResponse(garments=[_picture_message(p) for p in pictures])

    def EncodeGarment(self, request: pb.EncodeGarmentRequest, context: grpc.ServicerContext) -> pb.EncodeGarmentResponse:
        """Encode a garment picture into the content latent space."""
        category = None if request.category == common_pb2.GARMENT_CATEGORY_UNSPECIFIED else category_from_proto(request.category)
        encoding = self.domain.encode(request.image, category)
        return pb.EncodeGarmentResponse(
            latent=encoding.latent.astype(float).tolist(),
            category=category_to_proto(encoding.category),
            reconstruction_png=images.encode_png(encoding.reconstruction),
        )

    def InterpolateGarments(
        self, request: pb.InterpolateGarmentsRequest, context: grpc.ServicerContext
    ) -> pb.InterpolateGarmentsResponse:
        """Interpolate between two garments in latent space."""
        pictures = self.domain.interpolate(
            _reference(request.start, "start"), _reference(request.end, "end"), request.steps
        )
        return pb.InterpolateGarmentsResponse(frames=[_picture_message(p) for p in pictures])

    def RegisterGarment(self, request: pb.RegisterGarmentRequest, context: grpc.ServicerContext) -> pb.RegisterGarmentResponse:
        """Register a catalogue garment and publish GarmentRegistered."""
        wanted = _registration(request)
        garment = self.domain.register(wanted.image, wanted.name, wanted.category, wanted.price, wanted.size_chart)
        return pb.RegisterGarmentResponse(garment=garment_message(garment))

    def ImportGarments(
        self, request_iterator: Iterator[pb.ImportGarmentsRequest], context: grpc.ServicerContext
    ) -> pb.ImportGarmentsResponse:
        """Register every garment of the stream; refused ones are reported, not fatal."""
        domain = self.domain
        items = ((request.item_ref, lambda request=request: _registration(request.garment)) for request in request_iterator)
        return _import_response(domain.import_garments(items))

    def GetGarment(self, request: pb.GetGarmentRequest, context: grpc.ServicerContext) -> pb.GetGarmentResponse:
        """Return a catalogue garment."""
        return pb.GetGarmentResponse(garment=garment_message(self.catalogue.get(request.garment_id)))

    def GetGarmentImage(self, request: pb.GetGarmentImageRequest, context: grpc.ServicerContext) -> pb.GetGarmentImageResponse:
        """Return the picture a garment was registered with, whole or scaled down."""
        picture = self.catalogue.picture(request.garment_id, request.max_side)
        return pb.GetGarmentImageResponse(
            image=picture.data, media_type=picture.media_type, width=picture.width, height=picture.height,
            original=picture.original,
        )

    def ListGarments(self, request: pb.ListGarmentsRequest, context: grpc.ServicerContext) -> pb.ListGarmentsResponse:
        """List catalogue garments page by page."""
        categories = [category_from_proto(value) for value in request.categories]
        garments, next_token = self.catalogue.list(request.page_size, request.page_token, categories)
        return pb.ListGarmentsResponse(garments=[garment_message(g) for g in garments], next_page_token=next_token)

    def RenderTryOn(self, request: pb.RenderTryOnRequest, context: grpc.ServicerContext) -> pb.RenderTryOnResponse:
        """Render a body wearing garments at their sizes, front or back, with the fit of each size."""
        if request.garment_ids and request.garments:
            raise InvalidArgument("give garment_ids (each at the body's own size) or garments (with sizes), not both")
        items = [TryOnItem(garment_id) for garment_id in request.garment_ids] or _try_on_items(request.garments)
        result = self.catalogue.render_try_on(
            request.body_id, items, _view(request.view), request.width, request.height
        )
        return pb.RenderTryOnResponse(png=result.data, fits=[_fit_message(report) for report in result.fits])

    def RenderTryOnModel(
        self, request: pb.RenderTryOnModelRequest, context: grpc.ServicerContext
    ) -> pb.RenderTryOnModelResponse:
        """The body's mesh wearing garments at their sizes as textures (GLB), with the fit of each size."""
        result = self.catalogue.render_try_on_model(request.body_id, _try_on_items(request.garments), request.texture_size)
        return pb.RenderTryOnModelResponse(glb=result.data, fits=[_fit_message(report) for report in result.fits])


_VIEWS_FROM_PROTO = {pb.TRY_ON_VIEW_UNSPECIFIED: "front", pb.TRY_ON_VIEW_FRONT: "front", pb.TRY_ON_VIEW_BACK: "back"}
_SIZE_CHOICES = {"requested": pb.SIZE_CHOICE_REQUESTED, "body_size": pb.SIZE_CHOICE_BODY_SIZE, "no_chart": pb.SIZE_CHOICE_NO_CHART}
_VERDICTS = {
    "tight": pb.FIT_VERDICT_TIGHT,
    "fitting": pb.FIT_VERDICT_FITTING,
    "loose": pb.FIT_VERDICT_LOOSE,
    "short": pb.FIT_VERDICT_SHORT,
    "long": pb.FIT_VERDICT_LONG,
}


def _view(value: int) -> str:
    if value in _VIEWS_FROM_PROTO:
        return _VIEWS_FROM_PROTO[value]
    raise InvalidArgument(
        f"view must be TRY_ON_VIEW_UNSPECIFIED (0, the front), TRY_ON_VIEW_FRONT (1) or TRY_ON_VIEW_BACK (2); got {value}"
    )


def _try_on_items(garments: Any) -> list[TryOnItem]:
    return [TryOnItem(garment.garment_id, garment.size_label) for garment in garments]


def _fit_message(report: GarmentFitReport) -> pb.GarmentFit:
    return pb.GarmentFit(
        garment_id=report.garment_id,
        size_label=report.size_label,
        size_choice=_SIZE_CHOICES[report.size_choice],
        measurements=[
            pb.MeasurementFit(
                measurement=m.measurement, body_mm=m.body_mm, garment_mm=m.garment_mm, ease_mm=m.ease_mm, verdict=_VERDICTS[m.fit]
            )
            for m in report.measurements
        ],
    )


def registration(servicer: GarmentServicer) -> ServiceRegistration:
    """What `tryon.shared.server.serve` needs to host ``servicer`` as tryon.v1.GarmentService."""
    return ServiceRegistration(
        SERVICE_FULL_NAME, lambda server: garment_service_pb2_grpc.add_GarmentServiceServicer_to_server(servicer, server)
    )
