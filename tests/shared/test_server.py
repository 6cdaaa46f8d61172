"""The shared gRPC server on loopback: health, reflection, logs, metrics, auth and errors."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import urllib.request
from collections.abc import Iterator

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from prometheus_client.parser import text_string_to_metric_families

from tryon.shared.errors import FailedPrecondition, InvalidArgument, InvalidEvent, NotFound
from tryon.shared.logs import configure_logging
from tryon.shared.proto import body_service_pb2, body_service_pb2_grpc
from tryon.shared.server import RunningServer, ServiceRegistration, serve
from tryon.shared.settings import ServerSettings

pytestmark = pytest.mark.integration

PROBE_SERVICE = "tryon.test.Probe"
BODY_SERVICE = body_service_pb2.DESCRIPTOR.services_by_name["BodyService"].full_name
HEALTH_SERVICE = "grpc.health.v1.Health"
REFLECTION_SERVICE = "grpc.reflection.v1alpha.ServerReflection"
REFLECTION_V1_SERVICE = "grpc.reflection.v1.ServerReflection"
SECRET_PAYLOAD = b"chest=1043mm"

_FAILURES = {
    b"invalid": InvalidArgument("height_cm must be between 120 and 220, got 20"),
    b"missing": NotFound("body 'b-1' does not exist"),
    b"untrained": FailedPrecondition("the body model is not trained yet"),
    b"bad-event": InvalidEvent("event_id is empty"),
    b"crash": ZeroDivisionError("division by zero in private code"),
}


def _echo(request: bytes, context: grpc.ServicerContext) -> bytes:
    """Echo the request, or raise the failure it names."""
    if request in _FAILURES:
        raise _FAILURES[request]
    return request


def _tagged(request: bytes, context: grpc.ServicerContext) -> bytes:
    """Answer with trailing metadata of the handler's own."""
    context.set_trailing_metadata((("x-cache", "hit"),))
    return request


def _count_up(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    """Stream three numbered replies, then raise the failure the request names, if any."""
    for index in range(3):
        yield request + b"-%d" % index
    if request in _FAILURES:
        raise _FAILURES[request]


def _forever(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    """Stream until the caller goes away."""
    while True:
        yield request
        time.sleep(0.01)


def _gather(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
    """Join every request the caller streams; after a first b"slow", read on only once the call has ended."""
    ended = threading.Event()
    context.add_callback(ended.set)
    first = next(requests)
    if first == b"slow":
        ended.wait(5)
    return first + b"".join(requests)


def _probe_registration() -> ServiceRegistration:
    handler = grpc.method_handlers_generic_handler(
        PROBE_SERVICE,
        {
            "Echo": grpc.unary_unary_rpc_method_handler(_echo),
            "Tagged": grpc.unary_unary_rpc_method_handler(_tagged),
            "CountUp": grpc.unary_stream_rpc_method_handler(_count_up),
            "Forever": grpc.unary_stream_rpc_method_handler(_forever),
            "Gather": grpc.stream_unary_rpc_method_handler(_gather),
        },
    )
    return ServiceRegistration(PROBE_SERVICE, lambda server: server.add_generic_rpc_handlers((handler,)))


def _body_registration() -> ServiceRegistration:
    """The generated BodyService base, whose methods all answer UNIMPLEMENTED."""
    servicer = body_service_pb2_grpc.BodyServiceServicer()
    return ServiceRegistration(
        BODY_SERVICE, lambda server: body_service_pb2_grpc.add_BodyServiceServicer_to_server(servicer, server)
    )


@pytest.fixture(scope="module")
def probe_server() -> Iterator[RunningServer]:
    running = serve(
        "probe", [_probe_registration(), _body_registration()], ServerSettings(metrics_port=0, grace_seconds=1.0)
    )
    yield running
    running.stop(grace=0)


@pytest.fixture(scope="module")
def channel(probe_server) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(probe_server.address) as opened:
        yield opened


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Capture JSON log lines of this test, restoring the root logger afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging("probe", "INFO", stream=stream)
    yield stream
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def _records(stream: io.StringIO) -> list[dict]:
    """The suite's own log lines: Kafka clients of earlier tests may still log into the root logger."""
    records = (json.loads(line) for line in stream.getvalue().splitlines())
    return [record for record in records if record["logger"].startswith("tryon.")]


def _health_status(channel: grpc.Channel, service: str) -> int:
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def _scrape(port: int) -> dict[tuple[str, tuple], float]:
    """Metric samples from the endpoint as {(name, sorted labels): value}."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_health_reports_each_registered_service_and_the_server(probe_server, channel):
    for service in ("", PROBE_SERVICE, BODY_SERVICE):
        assert _health_status(channel, service) == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as unknown:
        _health_status(channel, "tryon.v1.NoSuchService")
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


def test_set_serving_switches_every_status(probe_server, channel):
    probe_server.set_serving(False)
    try:
        for service in ("", PROBE_SERVICE, BODY_SERVICE):
            assert _health_status(channel, service) == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        probe_server.set_serving(True)
    assert _health_status(channel, PROBE_SERVICE) == health_pb2.HealthCheckResponse.SERVING


def test_a_server_can_start_not_serving_until_it_is_ready():
    running = serve("warming", [_probe_registration()], ServerSettings(), initially_serving=False)
    try:
        with grpc.insecure_channel(running.address) as warming:
            before = [_health_status(warming, service) for service in ("", PROBE_SERVICE)]
            running.set_serving(True)
            after = [_health_status(warming, service) for service in ("", PROBE_SERVICE)]
    finally:
        running.stop(grace=0)

    assert before == [health_pb2.HealthCheckResponse.NOT_SERVING] * 2
    assert after == [health_pb2.HealthCheckResponse.SERVING] * 2


def test_reflection_lists_registered_services_and_resolves_their_protos(channel):
    database = ProtoReflectionDescriptorDatabase(channel)

    assert set(database.get_services()) == {
        PROBE_SERVICE, BODY_SERVICE, HEALTH_SERVICE, REFLECTION_SERVICE, REFLECTION_V1_SERVICE
    }
    file_descriptor = database.FindFileContainingSymbol(BODY_SERVICE)
    assert file_descriptor.name == "tryon/v1/body_service.proto"


def _reflect_v1(channel: grpc.Channel, request: reflection_pb2.ServerReflectionRequest):
    """One exchange with grpc.reflection.v1 (its messages are v1alpha's, field for field)."""
    exchange = channel.stream_stream(
        f"/{REFLECTION_V1_SERVICE}/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    return list(exchange(iter([request]), timeout=5))[0]


def test_reflection_v1_lists_services_and_describes_them_and_itself(channel):
    listed = _reflect_v1(channel, reflection_pb2.ServerReflectionRequest(list_services=""))
    described = {}
    for symbol in (BODY_SERVICE, REFLECTION_V1_SERVICE):
        answer = _reflect_v1(channel, reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol))
        files = [descriptor_pb2.FileDescriptorProto.FromString(raw) for raw in answer.file_descriptor_response.file_descriptor_proto]
        described[symbol] = files[0]

    assert {service.name for service in listed.list_services_response.service} == {
        PROBE_SERVICE, BODY_SERVICE, HEALTH_SERVICE, REFLECTION_SERVICE, REFLECTION_V1_SERVICE
    }
    assert described[BODY_SERVICE].name == "tryon/v1/body_service.proto"
    v1 = described[REFLECTION_V1_SERVICE]
    assert (v1.name, v1.package) == ("grpc/reflection/v1/reflection.proto", "grpc.reflection.v1")
    method = v1.service[0].method[0]
    assert (method.input_type, method.output_type) == (
        ".grpc.reflection.v1.ServerReflectionRequest", ".grpc.reflection.v1.ServerReflectionResponse"
    )


def test_a_call_logs_one_json_line_with_its_fields_and_no_payload(channel, log_lines):
    reply, call = channel.unary_unary(f"/{PROBE_SERVICE}/Echo").with_call(
        SECRET_PAYLOAD, metadata=[("x-request-id", "req-42")], timeout=5
    )

    assert reply == SECRET_PAYLOAD
    assert ("x-request-id", "req-42") in [(item.key, item.value) for item in call.trailing_metadata()]
    rpc_lines = [record for record in _records(log_lines) if record["message"] == "rpc finished"]
    assert len(rpc_lines) == 1
    line = rpc_lines[0]
    assert line["service"] == "probe"
    assert line["severity"] == "INFO"
    assert line["request_id"] == "req-42"
    assert line["method"] == f"/{PROBE_SERVICE}/Echo"
    assert line["code"] == "OK"
    assert 0 <= line["latency_ms"] < 5000
    assert line["timestamp"].startswith(time.strftime("%Y-", time.gmtime()))
    assert line["timestamp"].endswith("Z")
    assert "chest" not in log_lines.getvalue()


def test_a_request_id_is_generated_when_the_caller_sends_none(channel, log_lines):
    _, call = channel.unary_unary(f"/{PROBE_SERVICE}/Echo").with_call(b"x", timeout=5)

    echoed = dict((item.key, item.value) for item in call.trailing_metadata())["x-request-id"]
    assert len(echoed) == 32
    assert [record["request_id"] for record in _records(log_lines)] == [echoed]


def test_the_request_id_survives_trailing_metadata_set_by_the_handler(channel):
    _, call = channel.unary_unary(f"/{PROBE_SERVICE}/Tagged").with_call(
        b"x", metadata=[("x-request-id", "req-7")], timeout=5
    )

    trailer = [(item.key, item.value) for item in call.trailing_metadata()]
    assert ("x-cache", "hit") in trailer
    assert ("x-request-id", "req-7") in trailer


def test_health_probes_are_not_logged_at_info(channel, log_lines):
    _health_status(channel, "")

    assert _records(log_lines) == []


@pytest.mark.parametrize(
    ("payload", "code", "details"),
    [
        (b"invalid", grpc.StatusCode.INVALID_ARGUMENT, "height_cm must be between 120 and 220, got 20"),
        (b"missing", grpc.StatusCode.NOT_FOUND, "body 'b-1' does not exist"),
        (b"untrained", grpc.StatusCode.FAILED_PRECONDITION, "the body model is not trained yet"),
        (b"bad-event", grpc.StatusCode.INVALID_ARGUMENT, "event_id is empty"),
    ],
)
def test_domain_errors_map_to_their_status_with_the_message(channel, payload, code, details):
    with pytest.raises(grpc.RpcError) as raised:
        channel.unary_unary(f"/{PROBE_SERVICE}/Echo")(payload, timeout=5)

    assert raised.value.code() == code
    assert raised.value.details() == details


def test_an_unexpected_exception_is_internal_logged_and_the_server_goes_on(channel, log_lines):
    echo = channel.unary_unary(f"/{PROBE_SERVICE}/Echo")

    with pytest.raises(grpc.RpcError) as raised:
        echo(b"crash", metadata=[("x-request-id", "req-crash")], timeout=5)

    assert raised.value.code() == grpc.StatusCode.INTERNAL
    assert "private code" not in raised.value.details()
    assert "req-crash" in raised.value.details()
    error_lines = [record for record in _records(log_lines) if record["severity"] == "ERROR"]
    assert len(error_lines) == 1
    assert error_lines[0]["request_id"] == "req-crash"
    assert "ZeroDivisionError: division by zero in private code" in error_lines[0]["exception"]
    assert echo(b"still here", timeout=5) == b"still here"


def test_a_status_chosen_by_the_handler_is_kept(channel):
    with pytest.raises(grpc.RpcError) as raised:
        body_service_pb2_grpc.BodyServiceStub(channel).GetBody(body_service_pb2.GetBodyRequest(), timeout=5)

    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_server_streaming_calls_stream_and_map_errors_after_partial_results(channel):
    count_up = channel.unary_stream(f"/{PROBE_SERVICE}/CountUp")
    assert list(count_up(b"n", timeout=5)) == [b"n-0", b"n-1", b"n-2"]

    received = []
    with pytest.raises(grpc.RpcError) as raised:
        for reply in count_up(b"missing", timeout=5):
            received.append(reply)
    assert received == [b"missing-0", b"missing-1", b"missing-2"]
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert raised.value.details() == "body 'b-1' does not exist"


def test_a_stream_cancelled_by_the_caller_is_logged_as_cancelled(channel, log_lines):
    stream = channel.unary_stream(f"/{PROBE_SERVICE}/Forever")(b"tick", metadata=[("x-request-id", "req-gone")])
    assert [next(stream), next(stream)] == [b"tick", b"tick"]

    stream.cancel()

    deadline = time.monotonic() + 5
    while not _records(log_lines) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert [(record["request_id"], record["code"]) for record in _records(log_lines)] == [("req-gone", "CANCELLED")]
    assert channel.unary_unary(f"/{PROBE_SERVICE}/Echo")(b"next", timeout=5) == b"next"


def test_a_request_stream_cancelled_by_the_caller_is_cancelled_not_internal(channel, log_lines):
    sent, released = threading.Event(), threading.Event()

    def requests() -> Iterator[bytes]:
        yield b"slow"
        sent.set()
        released.wait(30)

    answer = channel.stream_unary(f"/{PROBE_SERVICE}/Gather").future(
        requests(), metadata=[("x-request-id", "req-left")]
    )
    assert sent.wait(5)
    answer.cancel()

    deadline = time.monotonic() + 5
    while not _records(log_lines) and time.monotonic() < deadline:
        time.sleep(0.02)
    # Ending the request stream only now keeps its end from reaching the server before the cancel.
    released.set()
    records = _records(log_lines)
    assert not [record for record in records if "unhandled" in record["message"]]
    assert [(record["request_id"], record["code"]) for record in records] == [("req-left", "CANCELLED")]
    assert channel.unary_unary(f"/{PROBE_SERVICE}/Echo")(b"next", timeout=5) == b"next"


def test_the_metrics_endpoint_counts_calls_errors_and_latency(probe_server, channel):
    echo = channel.unary_unary(f"/{PROBE_SERVICE}/Echo")
    method = f"/{PROBE_SERVICE}/Echo"
    before = _scrape(probe_server.metrics_port)

    for _ in range(3):
        echo(b"ok", timeout=5)
    with pytest.raises(grpc.RpcError):
        echo(b"missing", timeout=5)
    list(channel.unary_stream(f"/{PROBE_SERVICE}/CountUp")(b"s", timeout=5))
    after = _scrape(probe_server.metrics_port)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("tryon_rpc_requests_total", method=method) == 4
    assert grew("tryon_rpc_errors_total", method=method, code="NOT_FOUND") == 1
    assert grew("tryon_rpc_errors_total", method=method, code="OK") == 0
    assert grew("tryon_rpc_latency_seconds_count", method=method) == 4
    assert grew("tryon_rpc_requests_total", method=f"/{PROBE_SERVICE}/CountUp") == 1
    assert after[("tryon_rpc_in_flight", ())] == 0


def test_two_servers_in_one_process_keep_separate_metrics(probe_server, channel):
    other = serve("other", [_probe_registration()], ServerSettings(metrics_port=0))
    try:
        with grpc.insecure_channel(other.address) as other_channel:
            other_channel.unary_unary(f"/{PROBE_SERVICE}/Echo")(b"once", timeout=5)
        other_samples = _scrape(other.metrics_port)
    finally:
        other.stop(grace=0)

    key = ("tryon_rpc_requests_total", (("method", f"/{PROBE_SERVICE}/Echo"),))
    assert other_samples[key] == 1
    assert other.metrics_port != probe_server.metrics_port


def test_no_metrics_endpoint_unless_asked():
    running = serve("quiet", [_probe_registration()], ServerSettings())
    try:
        assert running.metrics_port is None
    finally:
        running.stop(grace=0)


@pytest.fixture(scope="module")
def guarded_server() -> Iterator[RunningServer]:
    running = serve("guarded", [_probe_registration(), _body_registration()], ServerSettings(auth_token="t0ken"))
    yield running
    running.stop(grace=0)


@pytest.mark.parametrize(
    ("metadata", "details"),
    [
        ([], "missing authorization metadata"),
        ([("authorization", "Bearer wrong")], "the bearer token in the authorization metadata is not valid"),
        ([("authorization", "t0ken")], "the bearer token in the authorization metadata is not valid"),
        ([("authorization", "Basic t0ken")], "the bearer token in the authorization metadata is not valid"),
        ([("authorization", "bearer T0KEN")], "the bearer token in the authorization metadata is not valid"),
        ([("authorization", "Bearer t0ken ")], "the bearer token in the authorization metadata is not valid"),
        ([("authorization", "Bearert0ken")], "the bearer token in the authorization metadata is not valid"),
    ],
)
def test_auth_refuses_a_missing_or_wrong_token(guarded_server, metadata, details):
    with grpc.insecure_channel(guarded_server.address) as guarded:
        with pytest.raises(grpc.RpcError) as unary:
            guarded.unary_unary(f"/{PROBE_SERVICE}/Echo")(b"x", metadata=metadata, timeout=5)
        with pytest.raises(grpc.RpcError) as streaming:
            list(guarded.unary_stream(f"/{PROBE_SERVICE}/CountUp")(b"x", metadata=metadata, timeout=5))

    for raised in (unary, streaming):
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert raised.value.details().startswith(details)


def test_auth_accepts_the_right_token_and_leaves_health_and_reflection_open(guarded_server):
    with grpc.insecure_channel(guarded_server.address) as guarded:
        reply = guarded.unary_unary(f"/{PROBE_SERVICE}/Echo")(
            b"hello", metadata=[("authorization", "Bearer t0ken")], timeout=5
        )
        status = _health_status(guarded, PROBE_SERVICE)
        services = ProtoReflectionDescriptorDatabase(guarded).get_services()

    assert reply == b"hello"
    assert status == health_pb2.HealthCheckResponse.SERVING
    assert PROBE_SERVICE in services


@pytest.mark.parametrize("authorization", ["Bearer t0ken", "bearer t0ken", "BEARER t0ken", "bEaReR   t0ken"])
def test_auth_takes_the_scheme_in_any_case(guarded_server, authorization):
    with grpc.insecure_channel(guarded_server.address) as guarded:
        reply = guarded.unary_unary(f"/{PROBE_SERVICE}/Echo")(b"hi", metadata=[("authorization", authorization)], timeout=5)
    assert reply == b"hi"


def test_messages_up_to_the_configured_size_pass_and_larger_ones_are_refused():
    running = serve("sized", [_probe_registration()], ServerSettings(max_message_bytes=6 * 1024 * 1024))
    options = [("grpc.max_receive_message_length", 16 * 1024 * 1024)]
    try:
        with grpc.insecure_channel(running.address, options=options) as sized_channel:
            echo = sized_channel.unary_unary(f"/{PROBE_SERVICE}/Echo")
            five_mib = b"x" * (5 * 1024 * 1024)
            assert echo(five_mib, timeout=10) == five_mib
            with pytest.raises(grpc.RpcError) as refused:
                echo(b"x" * (7 * 1024 * 1024), timeout=10)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        running.stop(grace=0)


def test_a_port_already_in_use_fails_with_the_address(probe_server):
    with pytest.raises(RuntimeError, match=f"cannot bind the gRPC server to 127.0.0.1:{probe_server.port}"):
        serve("clash", [_probe_registration()], ServerSettings(port=probe_server.port))


def test_stop_refuses_new_calls_and_wait_returns():
    running = serve("brief", [_probe_registration()], ServerSettings())
    address = running.address

    running.stop(grace=0)
    running.stop()

    assert running.wait(timeout=1)
    with grpc.insecure_channel(address) as late:
        with pytest.raises(grpc.RpcError) as refused:
            late.unary_unary(f"/{PROBE_SERVICE}/Echo")(b"x", timeout=2)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
