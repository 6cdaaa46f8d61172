"""The storefront's HTTP/JSON API over the three services, and the fitting-room page.

A thin layer: each route turns its JSON or query into a ``tryon.v1`` request, awaits the
service(s) through `Backends`, and turns the answer back into JSON. A service's status
becomes the HTTP status google.rpc.Code documents for it, with the service's message, as
``{"code", "message", "request_id"}``. Recommendation answers are joined with the garments'
catalogue entries and, when a body is named, with one size advice per distinct size chart.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote, urlencode

from fastapi import FastAPI, Path as PathParam, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from tryon.services.storefront import schemas
from tryon.services.storefront.backends import Backends, CallContext, StatusError
from tryon.services.storefront.middleware import HttpMetrics, RequestMiddleware, request_id_of
from tryon.shared.contract import (
    CATEGORY_NAMES,
    MAX_ID_LENGTH,
    SEX_FROM_PROTO,
    SEX_TO_PROTO,
    category_from_proto,
    category_to_proto,
)
from tryon.shared.proto import (
    body_service_pb2 as body_pb,
    common_pb2,
    garment_service_pb2 as garment_pb,
    recommendation_service_pb2 as rec_pb,
)

STATIC_DIR = Path(__file__).parent / "static"

# google.rpc.Code's HTTP mapping (as grpc-gateway applies it).
HTTP_STATUS_OF_CODE = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
_CODE_OF_HTTP_STATUS = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 405: "UNIMPLEMENTED", 413: "RESOURCE_EXHAUSTED"}

# tryon.v1 has no feedback types: a like counts as a purchase, a dislike as a return (its only negative).
INTERACTION_TYPES = {
    "view": common_pb2.INTERACTION_TYPE_VIEW,
    "try_on": common_pb2.INTERACTION_TYPE_TRY_ON,
    "add_to_cart": common_pb2.INTERACTION_TYPE_ADD_TO_CART,
    "purchase": common_pb2.INTERACTION_TYPE_PURCHASE,
    "return": common_pb2.INTERACTION_TYPE_RETURN,
    "like": common_pb2.INTERACTION_TYPE_PURCHASE,
    "dislike": common_pb2.INTERACTION_TYPE_RETURN,
}
RETURN_REASONS = {
    "too_small": common_pb2.RETURN_REASON_TOO_SMALL,
    "too_large": common_pb2.RETURN_REASON_TOO_LARGE,
    "other": common_pb2.RETURN_REASON_OTHER,
}

ERROR_RESPONSES = {
    status: {"model": schemas.ErrorBody, "description": description}
    for status, description in (
        (400, "The request is malformed (INVALID_ARGUMENT, FAILED_PRECONDITION)"),
        (401, "A token is needed (UNAUTHENTICATED)"),
        (404, "No such body or garment (NOT_FOUND)"),
        (503, "A service cannot answer now (UNAVAILABLE)"),
    )
}

logger = logging.getLogger("tryon.services.storefront")

GLB_MEDIA_TYPE = "model/gltf-binary"
ORIGINAL_HEADER = "x-original-picture"
MAX_TRY_ON_GARMENTS = 8
VIEWS = {"front": garment_pb.TRY_ON_VIEW_FRONT, "back": garment_pb.TRY_ON_VIEW_BACK}
VERDICTS = {
    garment_pb.FIT_VERDICT_TIGHT: "tight",
    garment_pb.FIT_VERDICT_FITTING: "fitting",
    garment_pb.FIT_VERDICT_LOOSE: "loose",
    garment_pb.FIT_VERDICT_SHORT: "short",
    garment_pb.FIT_VERDICT_LONG: "long",
}
SIZE_CHOICES = {
    garment_pb.SIZE_CHOICE_REQUESTED: "requested",
    garment_pb.SIZE_CHOICE_BODY_SIZE: "body_size",
    garment_pb.SIZE_CHOICE_NO_CHART: "no_chart",
}

BodyId = Annotated[str, PathParam(min_length=1, max_length=MAX_ID_LENGTH)]
GarmentId = Annotated[str, PathParam(min_length=1, max_length=MAX_ID_LENGTH)]
UserId = Annotated[str, PathParam(min_length=1, max_length=MAX_ID_LENGTH)]
GarmentIdsQuery = Annotated[list[str], Query(
    max_length=MAX_TRY_ON_GARMENTS, description="Garments to put on at the body's own size, later ones on top")]
SizedGarmentsQuery = Annotated[list[str], Query(
    max_length=MAX_TRY_ON_GARMENTS,
    description="Garments with a size each, as ID:SIZE (split at the last colon, e.g. g-1:M or g-2:32/32), later "
    "ones on top; ID alone means the body's own size. Give garment or garment_id, 1 to 8 in all",
)]
ViewQuery = Annotated[Literal["front", "back"], Query(description="Side the body is seen from")]
OptionalBodyId = Annotated[
    str | None, Query(min_length=1, max_length=MAX_ID_LENGTH, description="Body for size advice")
]


def error_response(status: int, code: str, message: str, request_id: str) -> JSONResponse:
    """The JSON error answer every failure shares."""
    return JSONResponse(
        schemas.ErrorBody(code=code, message=message, request_id=request_id).model_dump(), status_code=status
    )


def call_context(request: Request) -> CallContext:
    """The request id and bearer credentials the request hands on to the services."""
    authorization = request.headers.get("authorization")
    if authorization is not None and not (authorization.isascii() and authorization.isprintable()):
        # gRPC metadata is printable ASCII; anything else cannot be a token the services issued.
        raise StatusError("UNAUTHENTICATED", "the authorization header must be printable ASCII")
    return CallContext(request_id_of(request.scope), authorization)


def _time(timestamp) -> str:
    return timestamp.ToJsonString() if timestamp.seconds or timestamp.nanos else ""


def body_json(body: body_pb.Body) -> schemas.Body:
    """A stored body as JSON, with the address of its silhouette."""
    return schemas.Body(
        body_id=body.body_id,
        sex=SEX_FROM_PROTO.get(body.sex),
        measurements=[
            schemas.Measurement(
                name=m.name, unit=m.unit, value=m.value, stddev=m.stddev, lower_90=m.lower_90,
                upper_90=m.upper_90, observed=m.observed,
            )
            for m in body.measurements
        ],
        created_at=_time(body.create_time),
        silhouette_url=f"/v1/bodies/{body.body_id}/silhouette.png",
    )


def garment_json(garment: garment_pb.Garment) -> schemas.Garment:
    """A catalogue garment as JSON; its picture is served apart."""
    chart = garment.size_chart if garment.HasField("size_chart") else None
    return schemas.Garment(
        garment_id=garment.garment_id,
        name=garment.name,
        category=CATEGORY_NAMES[category_from_proto(garment.category)],
        price=schemas.Money(currency_code=garment.price.currency_code, amount_minor=garment.price.amount_minor)
        if garment.HasField("price")
        else None,
        size_chart_id=chart.chart_id or None if chart is not None else None,
        has_size_chart=chart is not None and bool(chart.chart_id or chart.sizes),
        image_url=f"/v1/garments/{quote(garment.garment_id, safe='')}/image.png",
        picture_url=f"/v1/garments/{quote(garment.garment_id, safe='')}/picture",
        created_at=_time(garment.create_time),
    )


def advice_json(advice: body_pb.AdviseSizeResponse) -> schemas.SizeAdvice:
    """A size advice as JSON, with the fit probability of the advised size."""
    fits = [schemas.SizeFit(label=fit.label, probability=fit.probability) for fit in advice.fits]
    chosen = next((fit.probability for fit in fits if fit.label == advice.recommended_size), 0.0)
    return schemas.SizeAdvice(
        recommended_size=advice.recommended_size, probability=chosen, fits=fits,
        deciding_measurement=advice.deciding_measurement, explanation=advice.explanation,
    )


def try_on_garments(garment_ids: list[str], sized: list[str]) -> list[garment_pb.TryOnGarment]:
    """The garments of a try-on query: ``garment_id=ID`` at the body's size, or ``garment=ID:SIZE``."""
    if garment_ids and sized:
        raise StatusError("INVALID_ARGUMENT", "give garments as garment=ID:SIZE or as garment_id=ID, not both")
    garments = [garment_pb.TryOnGarment(garment_id=garment_id) for garment_id in garment_ids]
    for value in sized:
        garment_id, colon, size_label = value.rpartition(":")
        if not colon:
            garment_id, size_label = value, ""
        if not garment_id:
            raise StatusError("INVALID_ARGUMENT", f"garment={value!r} names no garment; write garment=ID:SIZE")
        garments.append(garment_pb.TryOnGarment(garment_id=garment_id, size_label=size_label))
    if not 1 <= len(garments) <= MAX_TRY_ON_GARMENTS:
        raise StatusError(
            "INVALID_ARGUMENT",
            f"give 1 to {MAX_TRY_ON_GARMENTS} garments as garment=ID:SIZE (or garment_id=ID); got {len(garments)}",
        )
    return garments


def fit_json(fit: garment_pb.GarmentFit) -> schemas.GarmentFit:
    """How one garment at its size fits, as JSON."""
    return schemas.GarmentFit(
        garment_id=fit.garment_id,
        size_label=fit.size_label,
        size_choice=SIZE_CHOICES.get(fit.size_choice, "unspecified"),
        measurements=[
            schemas.MeasurementFit(
                measurement=m.measurement, body_mm=m.body_mm, garment_mm=m.garment_mm, ease_mm=m.ease_mm,
                verdict=VERDICTS.get(m.verdict, "unspecified"),
            )
            for m in fit.measurements
        ],
    )


@dataclass(frozen=True)
class CatalogueEntry:
    """A garment as GarmentService keeps it and as the API shows it, converted once."""

    garment: garment_pb.Garment
    json: schemas.Garment


class Storefront:
    """The joins that need several calls: garments with their catalogue entries and size advice.

    Catalogue entries are kept in a bounded cache (least recently used out first): tryon.v1 can
    register a garment but never change one, so an entry once read stays true, and a feed of 12
    garments then costs one call instead of 13. Only these joins use it, after the call that
    picked the garments went through the services' auth; the garment routes always ask.
    """

    def __init__(self, backends: Backends, garment_cache_size: int = 10_000) -> None:
        self.backends = backends
        self.garment_cache_size = garment_cache_size
        self._garment_cache: OrderedDict[str, CatalogueEntry] = OrderedDict()

    def _remember(self, entry: CatalogueEntry) -> None:
        if self.garment_cache_size == 0:
            return
        self._garment_cache[entry.garment.garment_id] = entry
        self._garment_cache.move_to_end(entry.garment.garment_id)
        while len(self._garment_cache) > self.garment_cache_size:
            self._garment_cache.popitem(last=False)

    async def _fetch(self, garment_id: str, context: CallContext) -> CatalogueEntry | None:
        try:
            reply = await self.backends.call(
                self.backends.garment.GetGarment, garment_pb.GetGarmentRequest(garment_id=garment_id), context
            )
        except StatusError as error:
            if error.code != "NOT_FOUND":
                raise
            return None
        entry = CatalogueEntry(reply.garment, garment_json(reply.garment))
        self._remember(entry)
        return entry

    async def garments(self, garment_ids: Iterable[str], context: CallContext) -> dict[str, CatalogueEntry]:
        """The catalogue entries of these garments, the uncached ones asked at once; ids the catalogue
        lacks are left out."""
        unique = list(dict.fromkeys(garment_ids))
        found: dict[str, CatalogueEntry] = {}
        for garment_id in unique:
            entry = self._garment_cache.get(garment_id)
            if entry is not None:
                self._garment_cache.move_to_end(garment_id)
                found[garment_id] = entry
        asked = [garment_id for garment_id in unique if garment_id not in found]
        fetched = await asyncio.gather(*(self._fetch(garment_id, context) for garment_id in asked))
        found.update((garment_id, entry) for garment_id, entry in zip(asked, fetched) if entry is not None)
        missing = len(unique) - len(found)
        if missing:
            # The recommender knows garments the catalogue does not: it was trained on another catalogue.
            logger.warning("recommended garments missing from the catalogue", extra={"missing": missing})
        return {garment_id: found[garment_id] for garment_id in unique if garment_id in found}

    async def advice(
        self, body_id: str | None, garments: Iterable[garment_pb.Garment], context: CallContext
    ) -> dict[str, schemas.SizeAdvice]:
        """Size advice of each garment with a size chart for the body, one AdviseSize per distinct chart."""
        if body_id is None:
            return {}
        charts: dict[bytes, common_pb2.SizeChart] = {}
        chart_of_garment: dict[str, bytes] = {}
        for garment in garments:
            chart = garment.size_chart
            if garment.HasField("size_chart") and (chart.chart_id or chart.sizes):
                key = chart.SerializeToString(deterministic=True)
                charts[key] = chart
                chart_of_garment[garment.garment_id] = key
        replies = await asyncio.gather(
            *(
                self.backends.call(
                    self.backends.body.AdviseSize, body_pb.AdviseSizeRequest(body_id=body_id, size_chart=chart), context
                )
                for chart in charts.values()
            )
        )
        advice_of_chart = {key: advice_json(reply) for key, reply in zip(charts, replies)}
        return {garment_id: advice_of_chart[key] for garment_id, key in chart_of_garment.items()}

    async def scored(
        self, scored: Iterable[rec_pb.ScoredGarment], body_id: str | None, context: CallContext
    ) -> list[schemas.RecommendedGarment]:
        """Scored garments joined with their catalogue entries and size advice, in the given order."""
        scored = list(scored)
        catalogue = await self.garments((item.garment_id for item in scored), context)
        advice = await self.advice(body_id, (entry.garment for entry in catalogue.values()), context)
        return [
            schemas.RecommendedGarment(
                score=item.score,
                garment=catalogue[item.garment_id].json,
                size_advice=advice.get(item.garment_id),
            )
            for item in scored
            if item.garment_id in catalogue
        ]


def create_app(backends: Backends, cors_origins: Iterable[str] = (), max_request_bytes: int = 1024 * 1024,
               metrics: HttpMetrics | None = None, garment_cache_size: int = 10_000) -> FastAPI:
    """The storefront's ASGI app over `backends`, which it opens when it starts and closes when it stops."""
    metrics = HttpMetrics() if metrics is None else metrics
    store = Storefront(backends, garment_cache_size)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        backends.open()
        yield
        await backends.close()

    # No /docs or /redoc: their pages load scripts from a CDN, and the storefront works offline.
    app = FastAPI(
        title="tryon storefront",
        version="1",
        summary="Bodies, size advice, garments, try-on, recommendations and outfits for browser storefronts.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
        # Operation ids are the handlers' names (create_body, recommendations): what generated clients call.
        generate_unique_id_function=lambda route: route.name,
    )

    @app.exception_handler(StatusError)
    async def status_error(request: Request, error: StatusError) -> JSONResponse:
        return error_response(
            HTTP_STATUS_OF_CODE.get(error.code, 500), error.code, error.message, request_id_of(request.scope)
        )

    @app.exception_handler(Exception)
    async def unexpected_error(request: Request, error: Exception) -> JSONResponse:
        logger.error("request failed", exc_info=error)
        return error_response(500, "INTERNAL", "the storefront failed to answer", request_id_of(request.scope))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        message = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}" for problem in error.errors()
        )
        return error_response(400, "INVALID_ARGUMENT", message, request_id_of(request.scope))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = _CODE_OF_HTTP_STATUS.get(error.status_code, "UNKNOWN")
        return error_response(error.status_code, code, str(error.detail), request_id_of(request.scope))

    @app.get("/healthz", tags=["operations"], response_model=schemas.Health)
    async def liveness() -> schemas.Health:
        """The process is up and answering."""
        return schemas.Health(status="ok")

    @app.get("/readyz", tags=["operations"], response_model=schemas.Health,
             responses={503: {"model": schemas.Health, "description": "A service is not SERVING"}})
    async def readiness() -> JSONResponse:
        """Ready when every service's gRPC health answers SERVING."""
        services = await backends.serving()
        ready = all(services.values())
        health = schemas.Health(status="ok" if ready else "unavailable", services=services)
        return JSONResponse(health.model_dump(), status_code=200 if ready else 503)

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def prometheus_metrics() -> Response:
        """Prometheus text exposition of the request counters and latencies."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/v1/bodies", tags=["bodies"], status_code=201, response_model=schemas.Body)
    async def create_body(payload: schemas.CreateBody, request: Request) -> schemas.Body:
        """Create a body from a few measurements and infer the others with 90% intervals."""
        reply = await backends.call(
            backends.body.CreateBody,
            body_pb.CreateBodyRequest(
                measurements=[common_pb2.MeasurementValue(name=n, value=v) for n, v in payload.measurements.items()],
                sex=SEX_TO_PROTO[payload.sex],
            ),
            call_context(request),
        )
        return body_json(reply.body)

    @app.get("/v1/bodies/{body_id}", tags=["bodies"], response_model=schemas.Body)
    async def get_body(body_id: BodyId, request: Request) -> schemas.Body:
        """A stored body."""
        reply = await backends.call(backends.body.GetBody, body_pb.GetBodyRequest(body_id=body_id), call_context(request))
        return body_json(reply.body)

    @app.delete("/v1/bodies/{body_id}", tags=["bodies"], response_model=schemas.DeletedBody)
    async def delete_body(body_id: BodyId, request: Request) -> schemas.DeletedBody:
        """Delete a body and every stored trace of it."""
        reply = await backends.call(
            backends.body.DeleteBody, body_pb.DeleteBodyRequest(body_id=body_id), call_context(request)
        )
        return schemas.DeletedBody(body_id=reply.body_id)

    @app.get("/v1/bodies/{body_id}/silhouette.png", tags=["bodies"], response_class=Response,
             responses={200: {"content": {"image/png": {}}}})
    async def silhouette(
        body_id: BodyId, request: Request,
        width: Annotated[int, Query(ge=64, le=2048)] = 256, height: Annotated[int, Query(ge=128, le=4096)] = 512,
    ) -> Response:
        """The body's front-view silhouette as a PNG."""
        reply = await backends.call(
            backends.body.RenderSilhouette,
            body_pb.RenderSilhouetteRequest(body_id=body_id, width=width, height=height),
            call_context(request),
        )
        return Response(reply.png, media_type="image/png")

    @app.get("/v1/bodies/{body_id}/size-advice", tags=["bodies"], response_model=schemas.SizeAdvice)
    async def size_advice(
        body_id: BodyId, request: Request,
        garment_id: Annotated[str | None, Query(min_length=1, max_length=MAX_ID_LENGTH,
                                                 description="Advise from this garment's size chart")] = None,
        chart_id: Annotated[str | None, Query(min_length=1, max_length=MAX_ID_LENGTH,
                                               description="Advise from this shipped size chart")] = None,
    ) -> schemas.SizeAdvice:
        """The size most likely to fit, from a garment's chart or a shipped chart, with every size's probability."""
        context = call_context(request)
        if (garment_id is None) == (chart_id is None):
            raise StatusError("INVALID_ARGUMENT", "give exactly one of garment_id and chart_id")
        if garment_id is not None:
            garment = (
                await backends.call(backends.garment.GetGarment, garment_pb.GetGarmentRequest(garment_id=garment_id),
                                    context)
            ).garment
            if not garment.HasField("size_chart"):
                raise StatusError("FAILED_PRECONDITION", f"garment {garment_id} has no size chart")
            chart = garment.size_chart
        else:
            chart = common_pb2.SizeChart(chart_id=chart_id)
        reply = await backends.call(
            backends.body.AdviseSize, body_pb.AdviseSizeRequest(body_id=body_id, size_chart=chart), context
        )
        return advice_json(reply)

    @app.get("/v1/bodies/{body_id}/mesh", tags=["bodies"], response_model=schemas.BodyMesh)
    async def body_mesh(body_id: BodyId, request: Request) -> schemas.BodyMesh:
        """The body's fitted 3D mesh: its landmarks and the dimensions measured on it; the mesh itself is at glb_url."""
        reply = await backends.call(
            backends.body.GetBodyMesh, body_pb.GetBodyMeshRequest(body_id=body_id), call_context(request)
        )
        return schemas.BodyMesh(
            body_id=body_id,
            glb_url=f"/v1/bodies/{quote(body_id, safe='')}/mesh.glb",
            vertex_count=reply.vertex_count,
            triangle_count=reply.triangle_count,
            keypoints=[
                schemas.Keypoint3D(name=k.name, x_mm=k.x_mm, y_mm=k.y_mm, z_mm=k.z_mm) for k in reply.keypoints
            ],
            mesh_measurements={m.name: m.value for m in reply.mesh_measurements},
        )

    @app.get("/v1/bodies/{body_id}/mesh.glb", tags=["bodies"], response_class=Response,
             responses={200: {"content": {GLB_MEDIA_TYPE: {}}}})
    async def body_mesh_glb(body_id: BodyId, request: Request) -> Response:
        """The body's fitted 3D mesh as binary glTF 2.0: metres, y up, facing +z; keypoints in the node's extras."""
        reply = await backends.call(
            backends.body.GetBodyMesh, body_pb.GetBodyMeshRequest(body_id=body_id), call_context(request)
        )
        return Response(reply.glb, media_type=GLB_MEDIA_TYPE)

    @app.get("/v1/bodies/{body_id}/try-on.png", tags=["try-on"], response_class=Response,
             responses={200: {"content": {"image/png": {}}}})
    async def try_on(
        body_id: BodyId, request: Request, garment_id: GarmentIdsQuery = [], garment: SizedGarmentsQuery = [],  # noqa: B006
        view: ViewQuery = "front",
        width: Annotated[int, Query(ge=64, le=2048)] = 256, height: Annotated[int, Query(ge=128, le=4096)] = 512,
    ) -> Response:
        """The body wearing the garments at their sizes, seen from the front or the back, as a PNG.

        The fit of each size is answered by ``GET /v1/bodies/{body_id}/try-on`` with the same garments.
        """
        reply = await backends.call(
            backends.garment.RenderTryOn,
            garment_pb.RenderTryOnRequest(body_id=body_id, garments=try_on_garments(garment_id, garment),
                                          view=VIEWS[view], width=width, height=height),
            call_context(request),
        )
        return Response(reply.png, media_type="image/png")

    @app.get("/v1/bodies/{body_id}/try-on", tags=["try-on"], response_model=schemas.TryOnFit)
    async def try_on_fit(
        body_id: BodyId, request: Request, garment_id: GarmentIdsQuery = [], garment: SizedGarmentsQuery = [],  # noqa: B006
    ) -> schemas.TryOnFit:
        """Whether each garment at its size is tight, fitting or loose on the body, per measurement, with the ease.

        The answer names the picture and the 3D model of the same garments and sizes.
        """
        garments = try_on_garments(garment_id, garment)
        # The verdicts do not depend on the picture: the smallest one costs least.
        reply = await backends.call(
            backends.garment.RenderTryOn,
            garment_pb.RenderTryOnRequest(body_id=body_id, garments=garments, width=64, height=128),
            call_context(request),
        )
        sized = urlencode([("garment", f"{g.garment_id}:{g.size_label}") for g in garments])
        base = f"/v1/bodies/{quote(body_id, safe='')}"
        return schemas.TryOnFit(
            fits=[fit_json(fit) for fit in reply.fits],
            picture_url=f"{base}/try-on.png?{sized}",
            model_url=f"{base}/try-on.glb?{sized}",
        )

    @app.get("/v1/bodies/{body_id}/try-on.glb", tags=["try-on"], response_class=Response,
             responses={200: {"content": {GLB_MEDIA_TYPE: {}}}})
    async def try_on_model(
        body_id: BodyId, request: Request, garment_id: GarmentIdsQuery = [], garment: SizedGarmentsQuery = [],  # noqa: B006
        texture_size: Annotated[int | None, Query(ge=256, le=2048, description="Texture height in pixels; "
                                                   "unset means 1024")] = None,
    ) -> Response:
        """The body wearing the garments at their sizes as binary glTF 2.0, one texture (front half, back half)."""
        reply = await backends.call(
            backends.garment.RenderTryOnModel,
            garment_pb.RenderTryOnModelRequest(body_id=body_id, garments=try_on_garments(garment_id, garment),
                                               texture_size=texture_size or 0),
            call_context(request),
        )
        return Response(reply.glb, media_type=GLB_MEDIA_TYPE)

    @app.get("/v1/garments", tags=["garments"], response_model=schemas.GarmentPage)
    async def list_garments(
        request: Request,
        page_size: Annotated[int, Query(ge=1, le=1000)] = 50,
        page_token: Annotated[str, Query(max_length=1024)] = "",
        category: Annotated[list[schemas.Category], Query(description="Only these categories")] = [],  # noqa: B006
    ) -> schemas.GarmentPage:
        """The catalogue, page by page, oldest first."""
        reply = await backends.call(
            backends.garment.ListGarments,
            garment_pb.ListGarmentsRequest(
                page_size=page_size, page_token=page_token,
                categories=[category_to_proto(CATEGORY_NAMES.index(name)) for name in category],
            ),
            call_context(request),
        )
        return schemas.GarmentPage(
            garments=[garment_json(garment) for garment in reply.garments], next_page_token=reply.next_page_token
        )

    @app.get("/v1/garments/{garment_id}", tags=["garments"], response_model=schemas.Garment)
    async def get_garment(garment_id: GarmentId, request: Request) -> schemas.Garment:
        """A catalogue garment."""
        reply = await backends.call(
            backends.garment.GetGarment, garment_pb.GetGarmentRequest(garment_id=garment_id), call_context(request)
        )
        return garment_json(reply.garment)

    @app.get("/v1/garments/{garment_id}/image.png", tags=["garments"], response_class=Response,
             responses={200: {"content": {"image/png": {}}}})
    async def garment_image(garment_id: GarmentId, request: Request) -> Response:
        """The garment's picture (28 x 28 PNG); garments never change, so browsers may keep it.

        Private: a shared cache would hand it on without the token the services may require.
        """
        reply = await backends.call(
            backends.garment.GetGarment, garment_pb.GetGarmentRequest(garment_id=garment_id), call_context(request)
        )
        return Response(reply.garment.image_png, media_type="image/png",
                        headers={"cache-control": "private, max-age=86400"})

    @app.get("/v1/garments/{garment_id}/picture", tags=["garments"], response_class=Response,
             responses={200: {"content": {"image/png": {}, "image/jpeg": {}}, "headers": {
                 ORIGINAL_HEADER: {"description": "false when the garment was registered before originals were "
                                   "kept and the picture is its 28 x 28 form", "schema": {"type": "string"}}}}})
    async def garment_picture(
        garment_id: GarmentId, request: Request,
        max_side: Annotated[int | None, Query(ge=16, le=4096, description="Scale a larger picture down to this "
                                              "longest side; unset sends it as registered")] = None,
    ) -> Response:
        """The product picture the garment was registered with, in colour, whole or scaled down.

        Private: a shared cache would hand it on without the token the services may require.
        """
        reply = await backends.call(
            backends.garment.GetGarmentImage,
            garment_pb.GetGarmentImageRequest(garment_id=garment_id, max_side=max_side or 0),
            call_context(request),
        )
        return Response(reply.image, media_type=reply.media_type or "application/octet-stream", headers={
            "cache-control": "private, max-age=86400", ORIGINAL_HEADER: "true" if reply.original else "false"})

    @app.get("/v1/garments/{garment_id}/similar", tags=["recommendations"], response_model=schemas.SimilarGarments)
    async def similar_garments(
        garment_id: GarmentId, request: Request, body_id: OptionalBodyId = None,
        k: Annotated[int, Query(ge=1, le=100)] = 8,
    ) -> schemas.SimilarGarments:
        """Garments near this one in the recommender's item space, most similar first."""
        context = call_context(request)
        reply = await backends.call(
            backends.recommendation.SimilarGarments, rec_pb.SimilarGarmentsRequest(garment_id=garment_id, k=k), context
        )
        return schemas.SimilarGarments(items=await store.scored(reply.garments, body_id, context))

    @app.get("/v1/shoppers/{user_id}/recommendations", tags=["recommendations"],
             response_model=schemas.Recommendations)
    async def recommendations(
        user_id: UserId, request: Request, body_id: OptionalBodyId = None,
        k: Annotated[int, Query(ge=1, le=100)] = 12,
        category: Annotated[list[schemas.Category], Query(description="Only these categories")] = [],  # noqa: B006
        include_seen: bool = False,
    ) -> schemas.Recommendations:
        """The shopper's feed from their history so far, with size advice for the body when one is named."""
        context = call_context(request)
        reply = await backends.call(
            backends.recommendation.RecommendGarments,
            rec_pb.RecommendGarmentsRequest(
                user_id=user_id, k=k, include_seen=include_seen,
                categories=[category_to_proto(CATEGORY_NAMES.index(name)) for name in category],
            ),
            context,
        )
        return schemas.Recommendations(
            items=await store.scored(reply.garments, body_id, context),
            cold_start=reply.cold_start,
            history_size=reply.history_size,
        )

    @app.get("/v1/shoppers/{user_id}/outfits", tags=["recommendations"], response_model=schemas.Outfits)
    async def outfits(
        user_id: UserId, request: Request, body_id: OptionalBodyId = None,
        k: Annotated[int, Query(ge=1, le=20)] = 3,
    ) -> schemas.Outfits:
        """Complete the look: outfits of a top or dress, a bottom and shoes, best first."""
        context = call_context(request)
        try:
            reply = await backends.call(
                backends.recommendation.RecommendOutfits,
                rec_pb.RecommendOutfitsRequest(user_id=user_id, k=k, body_id=body_id or ""),
                context,
            )
        except StatusError as error:
            # A body just created reaches the recommender by a Kafka event, a moment after CreateBody
            # answered; until then the outfits are ranked by taste alone and sized by BodyService
            # below, which still answers 404 for a body that does not exist. Whatever else was not
            # found is not found again by the call without the body, which then answers it.
            if not body_id or error.code != "NOT_FOUND":
                raise
            reply = await backends.call(
                backends.recommendation.RecommendOutfits, rec_pb.RecommendOutfitsRequest(user_id=user_id, k=k), context
            )
        joined = await store.scored((g for outfit in reply.outfits for g in outfit.garments), body_id, context)
        by_id = {item.garment.garment_id: item for item in joined}
        return schemas.Outfits(
            outfits=[
                schemas.Outfit(score=outfit.score, items=[by_id[g.garment_id] for g in outfit.garments if g.garment_id in by_id])
                for outfit in reply.outfits
            ],
            cold_start=reply.cold_start,
        )

    @app.post("/v1/shoppers/{user_id}/interactions", tags=["recommendations"], status_code=202,
              response_model=schemas.RecordedInteractions)
    async def record_interactions(
        user_id: UserId, payload: schemas.RecordInteractions, request: Request
    ) -> schemas.RecordedInteractions:
        """Record what the shopper did; the next recommendations take it into account."""
        reply = await backends.call(
            backends.recommendation.RecordInteractions,
            rec_pb.RecordInteractionsRequest(
                interactions=[
                    rec_pb.Interaction(
                        user_id=user_id,
                        garment_id=item.garment_id,
                        type=INTERACTION_TYPES[item.type],
                        session_id=item.session_id or "",
                        size=item.size or "",
                        return_reason=RETURN_REASONS.get(item.return_reason, common_pb2.RETURN_REASON_UNSPECIFIED),
                        body_id=item.body_id or "",
                    )
                    for item in payload.interactions
                ]
            ),
            call_context(request),
        )
        return schemas.RecordedInteractions(event_ids=list(reply.event_ids))

    @app.delete("/v1/shoppers/{user_id}", tags=["privacy"], response_model=schemas.DeletedShopper)
    async def delete_my_data(user_id: UserId, request: Request, body_id: OptionalBodyId = None) -> schemas.DeletedShopper:
        """Delete my data: the shopper's history and, when named, their body."""
        context = call_context(request)
        if body_id is not None:
            await backends.call(backends.body.DeleteBody, body_pb.DeleteBodyRequest(body_id=body_id), context)
        reply = await backends.call(
            backends.recommendation.DeleteUser, rec_pb.DeleteUserRequest(user_id=user_id), context
        )
        return schemas.DeletedShopper(user_id=user_id, user_event_id=reply.event_id, body_id=body_id)

    app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="fitting-room")
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(cors_origins),
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["authorization", "content-type", "x-request-id"],
        expose_headers=["x-request-id"],
    )
    # Outermost, so 413s, CORS refusals and errors are counted, logged and carry the request id.
    app.add_middleware(RequestMiddleware, metrics=metrics, max_request_bytes=max_request_bytes)
    return app
