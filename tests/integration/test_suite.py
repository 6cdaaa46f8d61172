"""The three services as real processes on loopback with the real broker.

The services are started by the suite launcher exactly as `make demo` starts them, each
copying its shipped weights into its empty data folder at start-up. The module checks what a caller
of the whole suite relies on: health and reflection, that every RPC answers a result (and
a clear status for an empty request, never INTERNAL), the event round trip through Kafka,
the dead-letter topic, draining on SIGTERM, and start-up refusing bad settings.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from kafka import KafkaProducer
from PIL import Image, ImageDraw

from tryon.shared import topics
from tryon.shared.events import EventPublisher, new_event_id, read_dlq, timestamp_now
from tryon.shared.outbox import Outbox
from tryon.shared.healthcheck import check
from tryon.shared.launcher import SERVICE_NAMES, LocalSuite
from tryon.shared.proto import (
    body_service_pb2 as body_pb,
    body_service_pb2_grpc,
    common_pb2,
    events_pb2,
    garment_service_pb2 as garment_pb,
    garment_service_pb2_grpc,
    recommendation_service_pb2 as rec_pb,
    recommendation_service_pb2_grpc,
)

pytestmark = pytest.mark.integration

CLEAR_STATUSES = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNIMPLEMENTED,
}
SERVICE_MODULES = {"body": body_pb, "garment": garment_pb, "recommendation": rec_pb}
EVENT_DEADLINE_S = 20.0


@pytest.fixture(scope="module")
def suite(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, shipped_weights: None):
    data_dir = tmp_path_factory.mktemp("suite")
    with LocalSuite(data_dir, bootstrap_servers=kafka_bootstrap, startup_timeout_s=600) as running:
        yield running


@pytest.fixture(scope="module")
def channels(suite: LocalSuite):
    opened = {name: grpc.insecure_channel(suite.address(name)) for name in SERVICE_NAMES}
    yield opened
    for channel in opened.values():
        channel.close()


TEE_OUTLINE = [(10, 10), (50, 10), (58, 30), (46, 30), (46, 75), (14, 75), (14, 30), (2, 30)]
TROUSER_OUTLINE = [(14, 5), (46, 5), (50, 78), (34, 78), (30, 30), (26, 78), (10, 78)]


def garment_png(outline=TEE_OUTLINE, width: int = 60, height: int = 80) -> bytes:
    """A dark garment shape on a white background, as a shop photo would be."""
    picture = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(picture)
    draw.polygon(outline, fill=40)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def history_size(recommendations, user_id: str) -> int:
    return recommendations.RecommendGarments(rec_pb.RecommendGarmentsRequest(user_id=user_id, k=1)).history_size


def wait_for_history(recommendations, user_id: str, size: int) -> None:
    deadline = time.monotonic() + EVENT_DEADLINE_S
    while history_size(recommendations, user_id) < size:
        assert time.monotonic() < deadline, f"{user_id}'s history did not reach {size} events"
        time.sleep(0.05)


def test_each_service_is_serving_and_listed_by_reflection(suite: LocalSuite, channels):
    for name, full_name in SERVICE_NAMES.items():
        assert check(suite.address(name), full_name)
        stub = reflection_pb2_grpc.ServerReflectionStub(channels[name])
        replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        listed = {service.name for reply in replies for service in reply.list_services_response.service}
        assert {full_name, "grpc.health.v1.Health"} <= listed


def test_every_rpc_answers_a_clear_status_to_an_empty_request(channels):
    for name, module in SERVICE_MODULES.items():
        service = module.DESCRIPTOR.services_by_name[SERVICE_NAMES[name].rsplit(".", 1)[1]]
        for method in service.methods:
            request_type = getattr(module, method.input_type.name)
            response_type = getattr(module, method.output_type.name)
            path = f"/{service.full_name}/{method.name}"
            if method.server_streaming:
                call = channels[name].unary_stream(
                    path, request_serializer=request_type.SerializeToString,
                    response_deserializer=response_type.FromString,
                )
                invoke = lambda call=call, request_type=request_type: list(call(request_type(), timeout=30))  # noqa: E731
            else:
                call = channels[name].unary_unary(
                    path, request_serializer=request_type.SerializeToString,
                    response_deserializer=response_type.FromString,
                )
                invoke = lambda call=call, request_type=request_type: call(request_type(), timeout=30)  # noqa: E731
            try:
                invoke()
            except grpc.RpcError as error:
                assert error.code() in CLEAR_STATUSES, f"{path}: {error.code()} {error.details()}"
                assert error.details(), f"{path} answered {error.code()} without a message"


def test_every_rpc_answers_a_result_to_a_valid_request(channels):
    bodies = body_service_pb2_grpc.BodyServiceStub(channels["body"])
    garments = garment_service_pb2_grpc.GarmentServiceStub(channels["garment"])
    recommendations = recommendation_service_pb2_grpc.RecommendationServiceStub(channels["recommendation"])

    body = bodies.CreateBody(
        body_pb.CreateBodyRequest(
            measurements=[
                common_pb2.MeasurementValue(name="stature", value=1760),
                common_pb2.MeasurementValue(name="weight", value=78),
            ],
            sex=common_pb2.SEX_MALE,
        )
    ).body
    assert bodies.GetBody(body_pb.GetBodyRequest(body_id=body.body_id)).body == body
    sampled = list(bodies.SampleBodies(body_pb.SampleBodiesRequest(count=3, seed=5)))
    assert [reply.index for reply in sampled] == [0, 1, 2]
    advice = bodies.AdviseSize(
        body_pb.AdviseSizeRequest(body_id=body.body_id, size_chart=common_pb2.SizeChart(chart_id="eu_mens_tops"))
    )
    assert advice.recommended_size in {fit.label for fit in advice.fits}
    assert bodies.RenderSilhouette(body_pb.RenderSilhouetteRequest(body_id=body.body_id)).png.startswith(b"\x89PNG")

    generated = garments.GenerateGarments(
        garment_pb.GenerateGarmentsRequest(category=common_pb2.GARMENT_CATEGORY_DRESS, count=2, seed=3)
    )
    assert len(generated.garments) == 2
    encoded = garments.EncodeGarment(garment_pb.EncodeGarmentRequest(image=garment_png()))
    assert len(encoded.latent) > 0
    frames = garments.InterpolateGarments(
        garment_pb.InterpolateGarmentsRequest(
            start=garment_pb.GarmentRef(image=garment_png()),
            end=garment_pb.GarmentRef(image=garment_png(TROUSER_OUTLINE)),
            steps=3,
        )
    )
    assert len(frames.frames) == 3
    registered = garments.RegisterGarment(
        garment_pb.RegisterGarmentRequest(
            image=garment_png(), name="Contract tee", category=common_pb2.GARMENT_CATEGORY_T_SHIRT_TOP,
            price=common_pb2.Money(currency_code="EUR", amount_minor=1500),
        )
    ).garment
    assert garments.GetGarment(garment_pb.GetGarmentRequest(garment_id=registered.garment_id)).garment == registered
    listed = garments.ListGarments(garment_pb.ListGarmentsRequest(page_size=1000))
    assert registered.garment_id in {garment.garment_id for garment in listed.garments}
    picture = garments.RenderTryOn(
        garment_pb.RenderTryOnRequest(body_id=body.body_id, garment_ids=[registered.garment_id])
    )
    assert picture.png.startswith(b"\x89PNG")

    user_id = f"contract-{uuid.uuid4().hex[:8]}"
    recommended = recommendations.RecommendGarments(rec_pb.RecommendGarmentsRequest(user_id=user_id, k=5))
    assert recommended.cold_start and len(recommended.garments) == 5
    outfits = recommendations.RecommendOutfits(rec_pb.RecommendOutfitsRequest(user_id=user_id, k=2))
    assert outfits.outfits
    similar = recommendations.SimilarGarments(
        rec_pb.SimilarGarmentsRequest(garment_id=recommended.garments[0].garment_id, k=3)
    )
    assert recommended.garments[0].garment_id not in {garment.garment_id for garment in similar.garments}
    recorded = recommendations.RecordInteractions(
        rec_pb.RecordInteractionsRequest(
            interactions=[
                rec_pb.Interaction(
                    user_id=user_id, garment_id=recommended.garments[0].garment_id,
                    type=common_pb2.INTERACTION_TYPE_VIEW,
                )
            ]
        )
    )
    assert len(recorded.event_ids) == 1
    assert recommendations.DeleteUser(rec_pb.DeleteUserRequest(user_id=user_id)).event_id
    assert bodies.DeleteBody(body_pb.DeleteBodyRequest(body_id=body.body_id)).body_id == body.body_id


def test_recorded_interactions_travel_through_kafka_into_the_next_answer(channels):
    recommendations = recommendation_service_pb2_grpc.RecommendationServiceStub(channels["recommendation"])
    user_id = f"round-trip-{uuid.uuid4().hex[:8]}"
    popular = recommendations.RecommendGarments(rec_pb.RecommendGarmentsRequest(user_id=user_id, k=3))
    assert popular.cold_start and popular.history_size == 0
    recommendations.RecordInteractions(
        rec_pb.RecordInteractionsRequest(
            interactions=[
                rec_pb.Interaction(user_id=user_id, garment_id=g.garment_id, type=common_pb2.INTERACTION_TYPE_PURCHASE)
                for g in popular.garments
            ]
        )
    )
    wait_for_history(recommendations, user_id, 3)
    after = recommendations.RecommendGarments(rec_pb.RecommendGarmentsRequest(user_id=user_id, k=3))
    assert not after.cold_start
    assert not {g.garment_id for g in popular.garments} & {g.garment_id for g in after.garments}


def test_a_body_and_a_garment_reach_the_recommender_which_advises_from_bodyservices_fit(channels):
    bodies = body_service_pb2_grpc.BodyServiceStub(channels["body"])
    garments = garment_service_pb2_grpc.GarmentServiceStub(channels["garment"])
    recommendations = recommendation_service_pb2_grpc.RecommendationServiceStub(channels["recommendation"])
    body = bodies.CreateBody(
        body_pb.CreateBodyRequest(
            measurements=[
                common_pb2.MeasurementValue(name=name, value=value)
                for name, value in (("stature", 1650), ("weight", 62), ("chest_circumference", 880),
                                    ("waist_circumference", 720))
            ],
            sex=common_pb2.SEX_FEMALE,
        )
    ).body
    chart = common_pb2.SizeChart(chart_id="eu_womens_tops")
    tee = garments.RegisterGarment(
        garment_pb.RegisterGarmentRequest(
            image=garment_png(), name="Fitted tee", category=common_pb2.GARMENT_CATEGORY_T_SHIRT_TOP,
            price=common_pb2.Money(currency_code="EUR", amount_minor=1500), size_chart=chart,
        )
    ).garment
    advice = bodies.AdviseSize(body_pb.AdviseSizeRequest(body_id=body.body_id, size_chart=chart))
    request = rec_pb.RecommendGarmentsRequest(
        user_id=f"fit-{uuid.uuid4().hex[:8]}", k=1000, categories=[common_pb2.GARMENT_CATEGORY_T_SHIRT_TOP],
        body_id=body.body_id,
    )
    deadline = time.monotonic() + EVENT_DEADLINE_S
    while True:
        try:
            answer = {g.garment_id: g for g in recommendations.RecommendGarments(request).garments}
        except grpc.RpcError as error:
            # NOT_FOUND until BodyUpdated has travelled through Kafka.
            assert error.code() == grpc.StatusCode.NOT_FOUND, error.details()
            answer = {}
        if tee.garment_id in answer:
            break
        assert time.monotonic() < deadline, "the body or the garment did not reach the recommender"
        time.sleep(0.05)
    # Before any purchase the recommender takes BodyService's probabilities, spread over how likely the
    # profile is a size or two off (0.7 none, 0.12 and 0.03 each way), as the odds of the size the body
    # wears (each at least 0.001, and "no size fits" what they leave), and a body keeps the size it
    # wears and, with ease, half as often its neighbours.
    labels, probabilities = [fit.label for fit in advice.fits], [fit.probability for fit in advice.fits]
    off = {0: 0.7, 1: 0.12, -1: 0.12, 2: 0.03, -2: 0.03}
    spread = [
        sum(w * probabilities[i + d] for d, w in off.items() if 0 <= i + d < len(probabilities))
        for i in range(len(probabilities))
    ]
    odds = [max(p, 0.001) for p in spread] + [max(1.0 - sum(probabilities), 0.001)]
    worn = [odd / sum(odds) for odd in odds[:-1]]
    kept = [
        worn[i] + 0.5 * sum(worn[j] for j in (i - 1, i + 1) if 0 <= j < len(worn)) for i in range(len(worn))
    ]
    best = max(range(len(kept)), key=kept.__getitem__)
    assert answer[tee.garment_id].advised_size == labels[best]
    assert answer[tee.garment_id].fit_probability == pytest.approx(kept[best], abs=1e-6)
    bodies.DeleteBody(body_pb.DeleteBodyRequest(body_id=body.body_id))
    while True:
        try:
            recommendations.RecommendGarments(request)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND
            break
        assert time.monotonic() < deadline + EVENT_DEADLINE_S, "BodyDeleted did not reach the recommender"
        time.sleep(0.05)


def test_a_garbage_event_lands_in_the_dlq_and_the_next_good_one_is_applied(suite: LocalSuite, channels, tmp_path):
    recommendations = recommendation_service_pb2_grpc.RecommendationServiceStub(channels["recommendation"])
    user_id = f"dlq-{uuid.uuid4().hex[:8]}"
    garment_id = recommendations.RecommendGarments(
        rec_pb.RecommendGarmentsRequest(user_id=user_id, k=1)
    ).garments[0].garment_id
    garbage = b"\xff not a protobuf " + uuid.uuid4().bytes
    raw = KafkaProducer(bootstrap_servers=suite.bootstrap_servers)
    raw.send(topics.INTERACTIONS, key=user_id.encode(), value=garbage,
             headers=[("event-type", b"tryon.v1.InteractionRecorded")]).get(timeout=10)
    raw.close()
    with EventPublisher(suite.bootstrap_servers, "dlq-test", Outbox(tmp_path / "outbox.sqlite")) as publisher:
        publisher.publish([(
            events_pb2.InteractionRecorded(
                event_id=new_event_id(), occurred_at=timestamp_now(), user_id=user_id, garment_id=garment_id,
                type=common_pb2.INTERACTION_TYPE_VIEW,
            ),
            user_id,
        )])
        assert publisher.wait_until_sent(timeout=10)
    wait_for_history(recommendations, user_id, 1)
    letters = [letter for letter in read_dlq(suite.bootstrap_servers, topics.INTERACTIONS) if letter.value == garbage]
    assert len(letters) == 1
    assert letters[0].source_topic == topics.INTERACTIONS and letters[0].reason


def test_sigterm_lets_an_in_flight_stream_finish(suite: LocalSuite, tmp_path: Path):
    shutil.copytree(Path(suite.data_dir) / "body" / "model", tmp_path / "body" / "model")
    with LocalSuite(tmp_path, services=("body",), bootstrap_servers=suite.bootstrap_servers,
                    startup_timeout_s=120) as alone:
        service = alone.running["body"]
        with grpc.insecure_channel(service.address) as channel:
            stream = body_service_pb2_grpc.BodyServiceStub(channel).SampleBodies(
                body_pb.SampleBodiesRequest(count=5000, seed=11), timeout=60
            )
            first = next(stream)
            service.process.send_signal(signal.SIGTERM)
            rest = list(stream)
            assert first.index == 0 and len(rest) == 4999 and rest[-1].index == 4999
            assert service.process.wait(timeout=30) == 0
            with pytest.raises(grpc.RpcError) as refused:
                body_service_pb2_grpc.BodyServiceStub(channel).GetBody(
                    body_pb.GetBodyRequest(body_id="x"), timeout=2
                )
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    ("service", "variable", "value"),
    [
        ("body", "TRYON_BODY_PORT", "fifty"),
        ("garment", "TRYON_GARMENT_TRAINING_EPOCHS", "-3"),
        ("recommendation", "TRYON_RECOMMENDATION_GRACE_SECONDS", "soon"),
    ],
)
def test_bad_settings_stop_start_up_with_a_sentence_naming_the_variable(service, variable, value):
    env = dict(os.environ, **{variable: value})
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", f"tryon.services.{service}"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert variable in result.stderr and value in result.stderr
    assert time.monotonic() - started < 30
