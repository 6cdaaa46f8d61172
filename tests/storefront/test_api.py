"""The storefront's HTTP layer against stand-in services: real gRPC servers on loopback with scripted answers.

What is checked here is the layer itself: gRPC statuses become the documented HTTP codes with
the service's message, the caller's bearer token and request id reach the services, a body
over the limit is refused with 413, CORS follows the configured origins, readiness follows
the services' health, and metrics, the OpenAPI document and the page are served.
"""

from __future__ import annotations

from collections import Counter
from concurrent import futures

import grpc
import numpy as np
import pytest
from fastapi.testclient import TestClient
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from tryon.services.storefront.api import CatalogueEntry, Storefront, create_app, garment_json
from tryon.services.storefront.backends import SERVICE_NAMES, Backends
from tryon.shared.glb import GlbMesh, read_glb, write_glb
from tryon.shared.proto import (
    body_service_pb2 as body_pb,
    body_service_pb2_grpc,
    common_pb2,
    garment_service_pb2 as garment_pb,
    garment_service_pb2_grpc,
    recommendation_service_pb2 as rec_pb,
    recommendation_service_pb2_grpc,
)


class ScriptedBodyService(body_service_pb2_grpc.BodyServiceServicer):
    """GetBody answers with the status named by the body id ("status-NOT_FOUND"), else a body."""

    def __init__(self) -> None:
        self.metadata: list[dict[str, str]] = []

    def GetBody(self, request, context):
        self.metadata.append(dict(context.invocation_metadata()))
        if request.body_id.startswith("status-"):
            context.abort(grpc.StatusCode[request.body_id.removeprefix("status-")], f"scripted {request.body_id}")
        return body_pb.GetBodyResponse(
            body=body_pb.Body(
                body_id=request.body_id,
                sex=common_pb2.SEX_FEMALE,
                measurements=[
                    common_pb2.MeasurementEstimate(name="stature", unit="mm", value=1680, observed=True),
                    common_pb2.MeasurementEstimate(
                        name="chest_circumference", unit="mm", value=900, stddev=30, lower_90=850, upper_90=950
                    ),
                ],
            )
        )


    def GetBodyMesh(self, request, context):
        if request.body_id.startswith("status-"):
            context.abort(grpc.StatusCode[request.body_id.removeprefix("status-")], f"scripted {request.body_id}")
        return body_pb.GetBodyMeshResponse(
            glb=TETRAHEDRON_GLB, vertex_count=4, triangle_count=4,
            keypoints=[common_pb2.Keypoint3D(name="neck", x_mm=0, y_mm=1450, z_mm=10)],
            mesh_measurements=[common_pb2.MeasurementValue(name="stature", value=1678.5)],
        )


TETRAHEDRON_GLB = write_glb(GlbMesh(
    vertices=np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32),
    faces=np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], dtype=np.uint32),
))
CHART_LABELS = ("S", "M", "L")


class ScriptedGarmentService(garment_service_pb2_grpc.GarmentServiceServicer):
    """GetGarment finds ids that start with "g-" and counts the calls for each id; the try-on RPCs keep
    their requests and refuse sizes other than S, M and L as GarmentService does."""

    def __init__(self) -> None:
        self.asked: Counter[str] = Counter()
        self.try_on_requests: list = []

    def _fits(self, garments, context) -> list[garment_pb.GarmentFit]:
        fits = []
        for garment in garments:
            if garment.size_label and garment.size_label not in CHART_LABELS:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                              f"garment {garment.garment_id} has no size {garment.size_label!r}; its sizes are S, M, L")
            verdict = {"S": garment_pb.FIT_VERDICT_TIGHT, "L": garment_pb.FIT_VERDICT_LOOSE}.get(
                garment.size_label, garment_pb.FIT_VERDICT_FITTING)
            fits.append(garment_pb.GarmentFit(
                garment_id=garment.garment_id, size_label=garment.size_label or "M",
                size_choice=garment_pb.SIZE_CHOICE_REQUESTED if garment.size_label else garment_pb.SIZE_CHOICE_BODY_SIZE,
                measurements=[garment_pb.MeasurementFit(measurement="chest_circumference", body_mm=900, garment_mm=960,
                                                        ease_mm=60, verdict=verdict)],
            ))
        return fits

    def RenderTryOn(self, request, context):
        self.try_on_requests.append(request)
        return garment_pb.RenderTryOnResponse(png=b"\x89PNG scripted", fits=self._fits(request.garments, context))

    def RenderTryOnModel(self, request, context):
        self.try_on_requests.append(request)
        return garment_pb.RenderTryOnModelResponse(glb=TETRAHEDRON_GLB, fits=self._fits(request.garments, context))

    def GetGarmentImage(self, request, context):
        self.try_on_requests.append(request)
        return garment_pb.GetGarmentImageResponse(image=b"\xff\xd8 scripted", media_type="image/jpeg", width=600,
                                                  height=800, original=True)

    def GetGarment(self, request, context):
        self.asked[request.garment_id] += 1
        if not request.garment_id.startswith("g-"):
            context.abort(grpc.StatusCode.NOT_FOUND, f"no garment {request.garment_id}")
        return garment_pb.GetGarmentResponse(
            garment=garment_pb.Garment(
                garment_id=request.garment_id, name=f"Dress {request.garment_id}", category=common_pb2.GARMENT_CATEGORY_DRESS
            )
        )


class ScriptedRecommendationService(recommendation_service_pb2_grpc.RecommendationServiceServicer):
    """RecordInteractions answers one event id per interaction and keeps what it was sent; RecommendGarments
    picks g-1, a garment the catalogue lacks, and g-2; RecommendOutfits knows no body, as a recommender
    that has not yet read a new body's BodyUpdated, and otherwise answers one outfit of g-1 and g-2."""

    def __init__(self) -> None:
        self.recorded: list[rec_pb.Interaction] = []
        self.outfit_bodies: list[str] = []

    def RecommendGarments(self, request, context):
        return rec_pb.RecommendGarmentsResponse(
            garments=[rec_pb.ScoredGarment(garment_id=g, score=s) for g, s in (("g-1", 3.0), ("gone", 2.0), ("g-2", 1.0))],
            history_size=4,
        )

    def RecommendOutfits(self, request, context):
        self.outfit_bodies.append(request.body_id)
        if request.body_id:
            context.abort(grpc.StatusCode.NOT_FOUND, f"body_id {request.body_id!r} is not known; create the body first")
        return rec_pb.RecommendOutfitsResponse(
            outfits=[rec_pb.Outfit(garments=[rec_pb.ScoredGarment(garment_id="g-1"), rec_pb.ScoredGarment(garment_id="g-2")], score=1.0)]
        )

    def RecordInteractions(self, request, context):
        self.recorded.extend(request.interactions)
        return rec_pb.RecordInteractionsResponse(event_ids=[f"event-{i}" for i in range(len(request.interactions))])


@pytest.fixture
def services():
    """One gRPC server on loopback playing the three services, with a health service per name."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    body, garment, recommendation = ScriptedBodyService(), ScriptedGarmentService(), ScriptedRecommendationService()
    body_service_pb2_grpc.add_BodyServiceServicer_to_server(body, server)
    garment_service_pb2_grpc.add_GarmentServiceServicer_to_server(garment, server)
    recommendation_service_pb2_grpc.add_RecommendationServiceServicer_to_server(recommendation, server)
    health_servicer = health.HealthServicer()
    for name in SERVICE_NAMES.values():
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    address = f"127.0.0.1:{port}"
    yield {"address": address, "body": body, "garment": garment, "recommendation": recommendation,
           "health": health_servicer}
    server.stop(grace=None)


def client_for(services, **options) -> TestClient:
    backends = Backends({name: services["address"] for name in SERVICE_NAMES}, timeout_seconds=5.0)
    return TestClient(create_app(backends, **options), raise_server_exceptions=False)


@pytest.mark.parametrize(
    ("code", "http_status"),
    [
        ("INVALID_ARGUMENT", 400),
        ("FAILED_PRECONDITION", 400),
        ("UNAUTHENTICATED", 401),
        ("PERMISSION_DENIED", 403),
        ("NOT_FOUND", 404),
        ("RESOURCE_EXHAUSTED", 429),
        ("UNAVAILABLE", 503),
        ("INTERNAL", 500),
    ],
)
def test_a_service_status_becomes_its_http_code_with_the_same_message(services, code, http_status):
    with client_for(services) as client:
        response = client.get(f"/v1/bodies/status-{code}", headers={"x-request-id": "req-42"})
    assert response.status_code == http_status
    assert response.json() == {"code": code, "message": f"scripted status-{code}", "request_id": "req-42"}


def test_the_callers_token_and_request_id_reach_the_service_and_the_id_comes_back(services):
    with client_for(services) as client:
        response = client.get("/v1/bodies/b-1", headers={"authorization": "Bearer s3cret", "x-request-id": "trace-7"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == "trace-7"
    seen = services["body"].metadata[-1]
    assert seen["authorization"] == "Bearer s3cret"
    assert seen["x-request-id"] == "trace-7"


def test_a_request_without_an_id_gets_one_that_the_service_sees_too(services):
    with client_for(services) as client:
        response = client.get("/v1/bodies/b-1")
    assert len(response.headers["x-request-id"]) == 32
    assert services["body"].metadata[-1]["x-request-id"] == response.headers["x-request-id"]
    assert "authorization" not in services["body"].metadata[-1]


def test_a_body_answers_with_its_measurements_intervals_and_silhouette(services):
    with client_for(services) as client:
        body = client.get("/v1/bodies/b-1").json()
    assert body["sex"] == "female"
    assert body["silhouette_url"] == "/v1/bodies/b-1/silhouette.png"
    chest = next(m for m in body["measurements"] if m["name"] == "chest_circumference")
    assert (chest["lower_90"], chest["value"], chest["upper_90"], chest["observed"]) == (850, 900, 950, False)


def test_like_and_dislike_are_recorded_as_the_strongest_signals(services):
    interactions = [{"garment_id": "g-1", "type": "like"}, {"garment_id": "g-2", "type": "dislike"},
                    {"garment_id": "g-3", "type": "try_on"}]
    with client_for(services) as client:
        response = client.post("/v1/shoppers/ann/interactions", json={"interactions": interactions})
    assert response.status_code == 202
    assert response.json() == {"event_ids": ["event-0", "event-1", "event-2"]}
    recorded = [(i.user_id, i.garment_id, i.type) for i in services["recommendation"].recorded]
    assert recorded == [
        ("ann", "g-1", common_pb2.INTERACTION_TYPE_PURCHASE),
        ("ann", "g-2", common_pb2.INTERACTION_TYPE_RETURN),
        ("ann", "g-3", common_pb2.INTERACTION_TYPE_TRY_ON),
    ]


def test_a_purchase_and_a_return_carry_their_order_size_reason_and_body(services):
    interactions = [
        {"garment_id": "g-1", "type": "purchase", "session_id": "order-7", "size": "38", "body_id": "b-1"},
        {"garment_id": "g-1", "type": "return", "size": "38", "return_reason": "too_small", "body_id": "b-1"},
        {"garment_id": "g-2", "type": "view"},
    ]
    with client_for(services) as client:
        response = client.post("/v1/shoppers/ann/interactions", json={"interactions": interactions})
    assert response.status_code == 202, response.text
    recorded = [
        (i.type, i.session_id, i.size, i.return_reason, i.body_id) for i in services["recommendation"].recorded
    ]
    assert recorded == [
        (common_pb2.INTERACTION_TYPE_PURCHASE, "order-7", "38", common_pb2.RETURN_REASON_UNSPECIFIED, "b-1"),
        (common_pb2.INTERACTION_TYPE_RETURN, "", "38", common_pb2.RETURN_REASON_TOO_SMALL, "b-1"),
        (common_pb2.INTERACTION_TYPE_VIEW, "", "", common_pb2.RETURN_REASON_UNSPECIFIED, ""),
    ]


@pytest.mark.parametrize(
    ("interaction", "message"),
    [
        ({"garment_id": "g", "type": "view", "size": "38"}, "size is given only on a purchase or a return, not on view"),
        ({"garment_id": "g", "type": "like", "size": "38"}, "size is given only on a purchase or a return, not on like"),
        ({"garment_id": "g", "type": "purchase", "return_reason": "too_small"}, "return_reason is given only on a return"),
        ({"garment_id": "g", "type": "like", "session_id": "order-1"}, "session_id is not given on a like"),
        ({"garment_id": "g", "type": "return", "return_reason": "torn"}, "interactions.0.return_reason"),
    ],
)
def test_order_fields_on_the_wrong_interaction_are_refused_naming_the_rule(services, interaction, message):
    with client_for(services) as client:
        response = client.post("/v1/shoppers/ann/interactions", json={"interactions": [interaction]})
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_ARGUMENT"
    assert message in response.json()["message"]
    assert services["recommendation"].recorded == []


def test_a_malformed_request_is_invalid_argument_naming_the_field(services):
    with client_for(services) as client:
        response = client.post("/v1/shoppers/ann/interactions", json={"interactions": [{"garment_id": "g", "type": "x"}]})
        empty = client.post("/v1/shoppers/ann/interactions", json={"interactions": []})
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_ARGUMENT"
    assert "interactions.0.type" in response.json()["message"]
    assert empty.status_code == 400
    assert services["recommendation"].recorded == []


def test_a_body_over_the_limit_is_refused_with_413_before_the_service_is_called(services):
    interactions = [{"garment_id": f"garment-{i:05d}", "type": "view"} for i in range(200)]
    with client_for(services, max_request_bytes=2048) as client:
        response = client.post("/v1/shoppers/ann/interactions", json={"interactions": interactions})
        small = client.post("/v1/shoppers/ann/interactions", json={"interactions": interactions[:2]})
    assert response.status_code == 413
    assert response.json()["code"] == "RESOURCE_EXHAUSTED"
    assert response.json()["request_id"] == response.headers["x-request-id"]
    assert small.status_code == 202
    assert len(services["recommendation"].recorded) == 2


def test_a_chunked_body_over_the_limit_is_refused_with_413(services):
    def chunks():
        for _ in range(8):
            yield b'{"interactions": [' + b" " * 512

    with client_for(services, max_request_bytes=2048) as client:
        response = client.post("/v1/shoppers/ann/interactions", content=chunks(),
                               headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert services["recommendation"].recorded == []


def test_cors_allows_the_configured_origins_only(services):
    preflight = {"access-control-request-method": "POST", "access-control-request-headers": "authorization"}
    with client_for(services, cors_origins=["https://shop.example"]) as client:
        allowed = client.options("/v1/shoppers/ann/interactions", headers={"origin": "https://shop.example", **preflight})
        refused = client.options("/v1/shoppers/ann/interactions", headers={"origin": "https://evil.example", **preflight})
        simple = client.get("/v1/bodies/b-1", headers={"origin": "https://shop.example"})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://shop.example"
    assert "access-control-allow-origin" not in refused.headers
    assert simple.headers["access-control-allow-origin"] == "https://shop.example"
    assert "x-request-id" in simple.headers["access-control-expose-headers"]


def test_readiness_follows_the_services_health_and_liveness_does_not(services):
    with client_for(services) as client:
        ready = client.get("/readyz")
        services["health"].set(SERVICE_NAMES["garment"], health_pb2.HealthCheckResponse.NOT_SERVING)
        not_ready = client.get("/readyz")
        alive = client.get("/healthz")
    assert ready.status_code == 200
    assert not_ready.status_code == 503
    assert not_ready.json()["services"] == {"body": True, "garment": False, "recommendation": True}
    assert alive.status_code == 200


def test_readiness_is_503_when_a_service_does_not_answer():
    backends = Backends({name: "127.0.0.1:1" for name in SERVICE_NAMES}, timeout_seconds=1.0)
    with TestClient(create_app(backends)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert not any(response.json()["services"].values())


def test_metrics_count_requests_by_route_template_not_by_path(services):
    with client_for(services) as client:
        client.get("/v1/bodies/b-1")
        client.get("/v1/bodies/status-NOT_FOUND")
        text = client.get("/metrics").text
    assert 'tryon_http_requests_total{method="GET",route="/v1/bodies/{body_id}",status="200"} 1.0' in text
    assert 'tryon_http_requests_total{method="GET",route="/v1/bodies/{body_id}",status="404"} 1.0' in text
    assert "b-1" not in text


def test_the_openapi_document_and_the_page_are_served(services):
    with client_for(services) as client:
        document = client.get("/openapi.json").json()
        page = client.get("/")
        script = client.get("/app.js")
    assert document["openapi"].startswith("3.")
    assert document["paths"]["/v1/bodies"]["post"]["operationId"] == "create_body"
    assert document["paths"]["/v1/shoppers/{user_id}"]["delete"]["operationId"] == "delete_my_data"
    assert {"/v1/bodies", "/v1/shoppers/{user_id}/recommendations", "/v1/shoppers/{user_id}"} <= set(document["paths"])
    assert page.status_code == 200 and "<h1>Fitting room</h1>" in page.text
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]


def test_an_authorization_header_that_cannot_be_grpc_metadata_is_401(services):
    with client_for(services) as client:
        response = client.get("/v1/bodies/b-1", headers={"authorization": "Bearer caf\u00e9".encode("latin-1")})
    assert response.status_code == 401
    assert response.json()["code"] == "UNAUTHENTICATED"
    assert services["body"].metadata == []


def test_the_feed_joins_catalogue_entries_in_order_and_leaves_out_garments_the_catalogue_lacks(services):
    with client_for(services) as client:
        feed = client.get("/v1/shoppers/ann/recommendations").json()
    assert [item["garment"]["garment_id"] for item in feed["items"]] == ["g-1", "g-2"]
    assert feed["items"][0]["garment"] | {"created_at": ""} == {
        "garment_id": "g-1", "name": "Dress g-1", "category": "dress", "price": None, "size_chart_id": None,
        "has_size_chart": False, "image_url": "/v1/garments/g-1/image.png",
        "picture_url": "/v1/garments/g-1/picture", "created_at": "",
    }
    assert feed["history_size"] == 4 and feed["items"][0]["size_advice"] is None


@pytest.mark.parametrize(("cache_size", "lookups_of_g1"), [(10, 1), (0, 3)])
def test_feeds_ask_the_catalogue_once_per_garment_while_it_is_cached(services, cache_size, lookups_of_g1):
    with client_for(services, garment_cache_size=cache_size) as client:
        for _ in range(3):
            assert len(client.get("/v1/shoppers/ann/recommendations").json()["items"]) == 2
        direct = client.get("/v1/garments/g-1")
    assert direct.status_code == 200
    # The garment route always asks: the cache serves only joins behind an authorised call.
    assert services["garment"].asked["g-1"] == lookups_of_g1 + 1
    assert services["garment"].asked["gone"] == 3, "a garment the catalogue lacks is never cached"


def test_the_garment_cache_keeps_the_most_recently_used_entries():
    store = Storefront(backends=None, garment_cache_size=2)
    for garment_id in ("g-1", "g-2", "g-3"):
        garment = garment_pb.Garment(garment_id=garment_id, category=common_pb2.GARMENT_CATEGORY_DRESS)
        store._remember(CatalogueEntry(garment, garment_json(garment)))
    assert list(store._garment_cache) == ["g-2", "g-3"]


def test_a_garment_picture_may_be_kept_by_the_browser_but_not_by_shared_caches(services):
    with client_for(services) as client:
        response = client.get("/v1/garments/g-1/image.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == "private, max-age=86400"


def test_sized_garments_and_the_back_view_reach_the_renderer_in_order(services):
    with client_for(services) as client:
        response = client.get("/v1/bodies/b-1/try-on.png",
                              params=[("garment", "g-1:M"), ("garment", "g:2:L"), ("garment", "g-3"), ("view", "back")])
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    request = services["garment"].try_on_requests[-1]
    assert [(g.garment_id, g.size_label) for g in request.garments] == [("g-1", "M"), ("g:2", "L"), ("g-3", "")]
    assert request.view == garment_pb.TRY_ON_VIEW_BACK
    assert (request.width, request.height) == (256, 512)


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ([], "give 1 to 8 garments"),
        ([("garment", f"g-{i}:M") for i in range(9)], "garment"),
        ([("garment", ":M")], "names no garment"),
        ([("garment", "g-1:M"), ("garment_id", "g-2")], "not both"),
        ([("garment", "g-1:M"), ("view", "side")], "view"),
        ([("garment", "g-1:XXL")], "its sizes are S, M, L"),
    ],
)
def test_a_bad_try_on_query_is_400_saying_what_to_fix(services, params, says):
    with client_for(services) as client:
        for route in ("try-on.png", "try-on", "try-on.glb"):
            if route != "try-on.png" and ("view", "side") in params:
                continue
            response = client.get(f"/v1/bodies/b-1/{route}", params=params)
            assert response.status_code == 400, (route, response.text)
            assert response.json()["code"] == "INVALID_ARGUMENT"
            assert says in response.json()["message"]


def test_the_fit_route_gives_each_garments_verdicts_and_the_addresses_of_its_picture_and_model(services):
    with client_for(services) as client:
        answer = client.get("/v1/bodies/b 1/try-on", params=[("garment", "g-1:S"), ("garment", "g-2")]).json()
    assert [(f["garment_id"], f["size_label"], f["size_choice"]) for f in answer["fits"]] == [
        ("g-1", "S", "requested"), ("g-2", "M", "body_size")]
    assert answer["fits"][0]["measurements"] == [
        {"measurement": "chest_circumference", "body_mm": 900.0, "garment_mm": 960.0, "ease_mm": 60.0, "verdict": "tight"}]
    assert answer["fits"][1]["measurements"][0]["verdict"] == "fitting"
    assert answer["picture_url"] == "/v1/bodies/b%201/try-on.png?garment=g-1%3AS&garment=g-2%3A"
    assert answer["model_url"] == "/v1/bodies/b%201/try-on.glb?garment=g-1%3AS&garment=g-2%3A"


def test_the_dressed_model_is_a_glb_rendered_at_the_asked_texture_size(services):
    with client_for(services) as client:
        response = client.get("/v1/bodies/b-1/try-on.glb", params={"garment": "g-1:L", "texture_size": 512})
        too_small = client.get("/v1/bodies/b-1/try-on.glb", params={"garment": "g-1:L", "texture_size": 16})
    assert response.status_code == 200 and response.headers["content-type"] == "model/gltf-binary"
    assert len(read_glb(response.content)[0].faces) == 4
    request = services["garment"].try_on_requests[-1]
    assert request.texture_size == 512 and request.garments[0].size_label == "L"
    assert too_small.status_code == 400 and "texture_size" in too_small.json()["message"]


def test_the_body_mesh_is_served_as_glb_and_its_keypoints_and_dimensions_as_json(services):
    with client_for(services) as client:
        glb = client.get("/v1/bodies/b-1/mesh.glb")
        facts = client.get("/v1/bodies/b-1/mesh").json()
        missing = client.get("/v1/bodies/status-NOT_FOUND/mesh.glb")
    assert glb.headers["content-type"] == "model/gltf-binary" and glb.content == TETRAHEDRON_GLB
    assert facts == {
        "body_id": "b-1", "glb_url": "/v1/bodies/b-1/mesh.glb", "vertex_count": 4, "triangle_count": 4,
        "keypoints": [{"name": "neck", "x_mm": 0.0, "y_mm": 1450.0, "z_mm": 10.0}],
        "mesh_measurements": {"stature": 1678.5},
    }
    assert missing.status_code == 404 and missing.json()["message"] == "scripted status-NOT_FOUND"


def test_the_product_picture_keeps_its_media_type_and_asks_for_the_longest_side(services):
    with client_for(services) as client:
        whole = client.get("/v1/garments/g-1/picture")
        assert services["garment"].try_on_requests[-1].max_side == 0
        scaled = client.get("/v1/garments/g-1/picture", params={"max_side": 320})
        assert services["garment"].try_on_requests[-1].max_side == 320
        tiny = client.get("/v1/garments/g-1/picture", params={"max_side": 8})
    assert whole.headers["content-type"] == "image/jpeg" and whole.headers["x-original-picture"] == "true"
    assert scaled.headers["cache-control"] == "private, max-age=86400"
    assert tiny.status_code == 400 and "max_side" in tiny.json()["message"]


def test_outfits_for_a_body_the_recommender_has_not_heard_of_yet_are_ranked_by_taste(services):
    with client_for(services) as client:
        response = client.get("/v1/shoppers/ann/outfits", params={"body_id": "just-created"})
    assert response.status_code == 200, response.text
    assert [item["garment"]["garment_id"] for item in response.json()["outfits"][0]["items"]] == ["g-1", "g-2"]
    assert services["recommendation"].outfit_bodies == ["just-created", ""]
