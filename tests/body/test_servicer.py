"""BodyService over a real in-process gRPC server (port 0) with a tiny trained body model.

Events go to an in-memory recorder here; the integration test checks them on Kafka.
"""

from __future__ import annotations

import io
import json
import math
import re
import uuid

import grpc
import numpy as np
import pytest
from PIL import Image

from tryon.services.body.domain import BodyDomain
from tryon.services.body.measurements import NAMES
from tryon.services.body.servicer import BodyServicer, registration
from tryon.services.body.store import BodyStore
from tryon.shared.logs import configure_logging
from tryon.shared.proto import body_service_pb2 as pb
from tryon.shared.proto import body_service_pb2_grpc, common_pb2
from tryon.shared.server import STARTING_MESSAGE, serve
from tryon.shared.settings import ServerSettings


class RecordingEvents:
    """Keeps what the domain publishes."""

    def __init__(self) -> None:
        self.updated: list[tuple[str, str | None, tuple[float, ...]]] = []
        self.deleted: list[str] = []
        self.fit_profiles: dict[str, dict] = {}

    def body_updated(self, body_id, sex, latent, fit_profile=None):
        self.updated.append((body_id, sex, tuple(latent)))
        self.fit_profiles[body_id] = fit_profile

    def body_deleted(self, body_id):
        self.deleted.append(body_id)


@pytest.fixture(scope="module")
def service(trained_body_model, tmp_path_factory):
    events = RecordingEvents()
    store = BodyStore(tmp_path_factory.mktemp("bodies"))
    servicer = BodyServicer(BodyDomain(trained_body_model, store, events, advice_samples=500))
    running = serve("body", [registration(servicer)],
                    ServerSettings(port=0, max_workers=4))
    channel = grpc.insecure_channel(running.address)
    yield body_service_pb2_grpc.BodyServiceStub(channel), events, store
    channel.close()
    running.stop(grace=0)


def values(*pairs):
    return [common_pb2.MeasurementValue(name=name, value=value) for name, value in pairs]


def create(stub, *pairs, sex=common_pb2.SEX_MALE):
    return stub.CreateBody(pb.CreateBodyRequest(measurements=values(*pairs), sex=sex)).body


def error_of(unary_call, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as raised:
        unary_call(request)
    return raised.value


def test_create_body_infers_every_measurement_with_uncertainty(service):
    stub, events, store = service
    body = create(stub, ("stature", 1780.0), ("weight", 82.0), ("chest_circumference", 1010.0))
    uuid.UUID(body.body_id)
    by_name = {m.name: m for m in body.measurements}
    assert list(by_name) == list(NAMES)
    for name, given in (("stature", 1780.0), ("weight", 82.0), ("chest_circumference", 1010.0)):
        assert by_name[name].observed and by_name[name].value == given and by_name[name].stddev == 0.0
    inferred = [m for m in body.measurements if not m.observed]
    assert len(inferred) == len(NAMES) - 3
    for m in inferred:
        assert m.stddev > 0 and m.lower_90 < m.value < m.upper_90, m.name
    assert by_name["weight"].unit == "kg" and by_name["inseam"].unit == "mm"
    assert events.updated[-1][0] == body.body_id and events.updated[-1][1] == "male"
    assert len(events.updated[-1][2]) == 4
    assert stub.GetBody(pb.GetBodyRequest(body_id=body.body_id)).body == body
    assert store.path_of(body.body_id).exists()


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([("stature", 175.0), ("weight", 70.0)],
         "stature is in millimetres: got 175, expected 1200-2300 (that looks like centimetres)"),
        ([("stature", 1.75), ("weight", 70.0)],
         "stature is in millimetres: got 1.75, expected 1200-2300 (that looks like metres)"),
        ([("stature", 1750.0), ("weight", 170000.0)],
         "weight is in kilograms: got 170000, expected 30-250 (that looks like grams)"),
        ([("stature", 1750.0), ("weight", 400.0)],
         "weight is in kilograms: got 400, expected 30-250 (that looks like pounds)"),
        ([("stature", float("nan")), ("weight", 70.0)], "stature must be a finite number; expected 1200-2300 mm"),
        ([("stature", 1750.0), ("weight", float("inf"))], "weight must be a finite number"),
        ([("stature", 1750.0), ("weight", 70.0), ("bust", 900.0)],
         "'bust' is not a known measurement; known measurements: stature, weight, chest_circumference"),
        ([("stature", 1750.0), ("stature", 1760.0), ("weight", 70.0)], "measurements[1].name 'stature' is given twice"),
        ([("stature", 1750.0)], "measurements lacks weight (30-250 kg)"),
        ([], "measurements is empty: give at least stature (1200-2300 mm) and weight (30-250 kg)"),
        ([("stature", 1750.0), ("weight", 70.0), ("inseam", 1000.0), ("waist_height", 950.0)],
         "inseam must be less than waist_height"),
    ],
)
def test_bad_measurements_are_invalid_argument_naming_the_field(service, pairs, message):
    stub, _, _ = service
    error = error_of(stub.CreateBody, pb.CreateBodyRequest(measurements=values(*pairs)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in error.details()


def test_bad_sex_and_unknown_or_malformed_ids(service):
    stub, _, _ = service
    request = pb.CreateBodyRequest(measurements=values(("stature", 1700.0), ("weight", 60.0)), sex=7)
    error = error_of(stub.CreateBody, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "sex must be" in error.details()
    for call, request_type in ((stub.GetBody, pb.GetBodyRequest), (stub.DeleteBody, pb.DeleteBodyRequest)):
        error = error_of(call, request_type(body_id=str(uuid.uuid4())))
        assert error.code() == grpc.StatusCode.NOT_FOUND
        error = error_of(call, request_type(body_id="../etc"))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "body_id" in error.details()


def test_delete_body_removes_it_and_announces_it(service):
    stub, events, store = service
    body = create(stub, ("stature", 1650.0), ("weight", 58.0), sex=common_pb2.SEX_FEMALE)
    path = store.path_of(body.body_id)
    assert stub.DeleteBody(pb.DeleteBodyRequest(body_id=body.body_id)).body_id == body.body_id
    assert events.deleted[-1] == body.body_id
    assert not path.exists()
    assert error_of(stub.GetBody, pb.GetBodyRequest(body_id=body.body_id)).code() == grpc.StatusCode.NOT_FOUND
    assert error_of(stub.DeleteBody, pb.DeleteBodyRequest(body_id=body.body_id)).code() == grpc.StatusCode.NOT_FOUND


def sample(stub, **fields):
    return list(stub.SampleBodies(pb.SampleBodiesRequest(**fields)))


def test_sample_bodies_streams_reproducible_bodies(service):
    stub, _, _ = service
    first = sample(stub, count=7, seed=11)
    assert [item.index for item in first] == list(range(7))
    assert sample(stub, count=7, seed=11) == first
    assert sample(stub, count=3, seed=11) == first[:3]
    assert sample(stub, count=7, seed=12) != first
    gan = sample(stub, count=7, seed=11, generator=common_pb2.GENERATOR_GAN)
    assert gan != first and len(gan) == 7
    women = sample(stub, count=20, seed=3, sex=common_pb2.SEX_FEMALE)
    assert {item.body.sex for item in women} == {common_pb2.SEX_FEMALE}
    for item in first:
        assert [m.name for m in item.body.measurements] == list(NAMES)
        assert all(math.isfinite(m.value) and not m.observed for m in item.body.measurements)
        assert item.body.body_id == ""


def test_sample_bodies_streams_many_bodies(service):
    stub, _, _ = service
    bodies = sample(stub, count=1200, seed=5)
    assert len(bodies) == 1200 and bodies[-1].index == 1199
    statures = np.array([item.body.measurements[0].value for item in bodies])
    assert 1400 < statures.mean() < 2000


@pytest.mark.parametrize(
    ("fields", "message"),
    [({"count": 0}, "count must be 1-10000; got 0"), ({"count": 10001}, "count must be 1-10000; got 10001"),
     ({"count": -3}, "count must be 1-10000"), ({"count": 2, "sex": 9}, "sex must be"),
     ({"count": 2, "generator": 5}, "generator must be")],
)
def test_sample_bodies_rejects_bad_parameters(service, fields, message):
    stub, _, _ = service
    with pytest.raises(grpc.RpcError) as raised:
        sample(stub, **fields)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in raised.value.details()


def test_advise_size_with_a_shipped_chart_and_an_inline_chart(service):
    stub, _, _ = service
    body = create(stub, ("stature", 1800.0), ("weight", 85.0), ("chest_circumference", 980.0))
    advice = stub.AdviseSize(pb.AdviseSizeRequest(body_id=body.body_id,
                                                  size_chart=common_pb2.SizeChart(chart_id="en13402_mens_tops")))
    fits = {fit.label: fit.probability for fit in advice.fits}
    # The chest was given: it is exact, so size M (940-1020 mm) fits for sure.
    assert fits["M"] == 1.0 and advice.recommended_size == "M"
    assert advice.deciding_measurement == "chest_circumference"
    assert advice.explanation.startswith("Size M fits")
    trousers = stub.AdviseSize(pb.AdviseSizeRequest(body_id=body.body_id,
                                                    size_chart=common_pb2.SizeChart(chart_id="us_mens_trousers")))
    probabilities = [fit.probability for fit in trousers.fits]
    assert all(0.0 <= p <= 1.0 for p in probabilities) and max(probabilities) < 1.0
    assert trousers.deciding_measurement in ("waist_circumference", "inseam")
    inline = common_pb2.SizeChart(sizes=[
        common_pb2.SizeChartSize(
            label="short", ranges=[common_pb2.MeasurementRange(measurement="stature", min=1200, max=1750)]),
        common_pb2.SizeChartSize(
            label="tall", ranges=[common_pb2.MeasurementRange(measurement="stature", min=1750, max=2300)]),
    ])
    advice = stub.AdviseSize(pb.AdviseSizeRequest(body_id=body.body_id, size_chart=inline))
    assert advice.recommended_size == "tall" and [f.probability for f in advice.fits] == [0.0, 1.0]
    again = stub.AdviseSize(pb.AdviseSizeRequest(body_id=body.body_id,
                                                 size_chart=common_pb2.SizeChart(chart_id="us_mens_trousers")))
    assert again == trousers


def test_advise_size_says_between_which_sizes_a_body_falls(service):
    stub, _, _ = service
    body = create(stub, ("stature", 1650.0), ("weight", 62.0), ("chest_circumference", 920.0),
                  ("waist_circumference", 720.0))
    advice = stub.AdviseSize(pb.AdviseSizeRequest(body_id=body.body_id,
                                                  size_chart=common_pb2.SizeChart(chart_id="eu_womens_tops")))
    # The given chest (900-940 mm is size 40) and waist (700-740 mm is size 38) are exact.
    assert list(advice.between_sizes) == ["38", "40"]
    assert [(p.measurement, p.size) for p in advice.pulls] == [("chest_circumference", "40"),
                                                               ("waist_circumference", "38")]
    assert "between sizes 38 and 40" in advice.explanation
    # BodyUpdated carried the same probabilities for every shipped chart, and no measurement.
    _, events, _ = service
    labels, probabilities, recommended = events.fit_profiles[body.body_id]["eu_womens_tops"]
    assert recommended == advice.recommended_size
    assert list(labels) == [f.label for f in advice.fits]
    assert list(probabilities) == [f.probability for f in advice.fits]


def test_advise_size_errors(service):
    stub, _, _ = service
    body = create(stub, ("stature", 1800.0), ("weight", 85.0))
    unknown = error_of(stub.AdviseSize, pb.AdviseSizeRequest(body_id=body.body_id,
                                                             size_chart=common_pb2.SizeChart(chart_id="nope")))
    assert unknown.code() == grpc.StatusCode.NOT_FOUND and "known charts" in unknown.details()
    reversed_range = common_pb2.SizeChart(sizes=[common_pb2.SizeChartSize(
        label="M", ranges=[common_pb2.MeasurementRange(measurement="inseam", min=900, max=800)])])
    error = error_of(stub.AdviseSize, pb.AdviseSizeRequest(body_id=body.body_id, size_chart=reversed_range))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "size_chart.sizes[0].ranges[0]: min of inseam must be smaller than max" in error.details()
    missing = error_of(stub.AdviseSize, pb.AdviseSizeRequest(body_id=str(uuid.uuid4()),
                                                             size_chart=common_pb2.SizeChart(chart_id="eu_mens_tops")))
    assert missing.code() == grpc.StatusCode.NOT_FOUND


def test_render_silhouette_returns_a_png_with_keypoints(service):
    stub, _, _ = service
    body = create(stub, ("stature", 1700.0), ("weight", 65.0), sex=common_pb2.SEX_FEMALE)
    response = stub.RenderSilhouette(pb.RenderSilhouetteRequest(body_id=body.body_id))
    picture = Image.open(io.BytesIO(response.png))
    assert picture.size == (256, 512) and picture.mode == "RGBA"
    names = {keypoint.name for keypoint in response.keypoints}
    assert {"neck", "left_shoulder", "right_shoulder", "chest", "waist", "hips", "left_knee", "right_knee",
            "left_ankle", "right_ankle"} <= names
    alpha = np.asarray(picture)[:, :, 3]
    rows = np.flatnonzero((alpha >= 128).any(axis=1))
    assert (rows[-1] + 1 - rows[0]) * response.mm_per_pixel == pytest.approx(1700.0, abs=2 * response.mm_per_pixel)
    error = error_of(stub.RenderSilhouette, pb.RenderSilhouetteRequest(body_id=body.body_id, width=10))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "64-2048" in error.details()


def test_no_measurement_value_reaches_the_logs(service):
    stub, _, _ = service
    given = {"stature": 1789.25, "weight": 68.75, "chest_circumference": 1003.5, "inseam": 823.25}
    buffer = io.StringIO()
    configure_logging("body", "DEBUG", stream=buffer)
    try:
        body = create(stub, *given.items())
        stub.AdviseSize(pb.AdviseSizeRequest(body_id=body.body_id,
                                             size_chart=common_pb2.SizeChart(chart_id="us_mens_trousers")))
        stub.GetBody(pb.GetBodyRequest(body_id=body.body_id))
        error_of(stub.CreateBody, pb.CreateBodyRequest(measurements=values(("stature", 177.5), ("weight", 68.75))))
    finally:
        configure_logging("body", "WARNING", stream=io.StringIO())
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert any(line.get("message") == "body created" for line in lines), "the logs must have been captured"
    text = buffer.getvalue()
    inferred = [m.value for m in body.measurements if not m.observed]
    for value in [*given.values(), 177.5, *inferred]:
        for spelling in {f"{value:g}", repr(value), f"{value:.1f}", str(int(value))}:
            assert not re.search(rf"(?<![\w.]){re.escape(spelling)}(?![\w])", text), spelling


def test_calls_before_start_up_attaches_the_domain_answer_unavailable(trained_body_model, tmp_path):
    servicer = BodyServicer()
    running = serve("body", [registration(servicer)], ServerSettings(port=0, max_workers=2))
    try:
        with grpc.insecure_channel(running.address) as channel:
            stub = body_service_pb2_grpc.BodyServiceStub(channel)
            body_id = str(uuid.uuid4())
            error = error_of(stub.GetBody, pb.GetBodyRequest(body_id=body_id))
            assert (error.code(), error.details()) == (grpc.StatusCode.UNAVAILABLE, STARTING_MESSAGE)
            servicer.attach(BodyDomain(trained_body_model, BodyStore(tmp_path), None))
            assert error_of(stub.GetBody, pb.GetBodyRequest(body_id=body_id)).code() == grpc.StatusCode.NOT_FOUND
    finally:
        running.stop(grace=0)


class CountingModel:
    """The tiny model, counting posterior draws."""

    def __init__(self, model) -> None:
        self._model = model
        self.posterior_calls = 0

    def __getattr__(self, name):
        return getattr(self._model, name)

    def posterior_samples(self, *args, **kwargs):
        self.posterior_calls += 1
        return self._model.posterior_samples(*args, **kwargs)


def test_posterior_samples_are_drawn_once_per_body_and_forgotten_on_delete(trained_body_model):
    model = CountingModel(trained_body_model)
    domain = BodyDomain(model, BodyStore(None), advice_samples=300)
    body = domain.create_body([("stature", 1690.0), ("weight", 66.0)], "female")
    first = domain.advise_size(body.body_id, "en13402_womens_tops", ())
    domain.advise_size(body.body_id, "eu_womens_trousers", ())
    assert domain.advise_size(body.body_id, "en13402_womens_tops", ()) == first
    assert model.posterior_calls == 1
    domain.delete_body(body.body_id)
    assert body.body_id not in domain._samples
