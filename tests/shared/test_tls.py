"""TLS and mTLS between real servers and clients on loopback, with certificates made at test time."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tryon.services.garment.body_client import BodyServiceClient
from tryon.services.garment.settings import PREFIX as GARMENT_PREFIX, GarmentSettings
from tryon.services.storefront.backends import SERVICE_NAMES, Backends
from tryon.services.storefront.up import start_storefront
from tryon.shared import healthcheck
from tryon.shared.broker import free_loopback_port
from tryon.shared.errors import FailedPrecondition, NotFound
from tryon.shared.proto import body_service_pb2 as body_pb, body_service_pb2_grpc
from tryon.shared.server import LIVENESS_SERVICE, RunningServer, ServiceRegistration, serve
from tryon.shared.settings import ServerSettings, SettingsError, load_settings
from tryon.shared.tls import ClientTls, https_client_context, open_channel

pytestmark = pytest.mark.integration

def tls_settings(pki, *, mutual: bool, **more) -> ServerSettings:
    """A server's settings: TLS with the test server certificate, client certificates required when `mutual`."""
    return ServerSettings(
        port=0,
        grace_seconds=0.5,
        tls_cert_file=pki.server_cert,
        tls_key_file=pki.server_key,
        tls_client_ca_file=pki.ca if mutual else None,
        **more,
    )


def health_only(settings: ServerSettings, names=()) -> RunningServer:
    """A server hosting health (SERVING for each of `names`) and nothing else."""
    return serve("probe", [ServiceRegistration(name, lambda server: None) for name in names], settings)


def health_status(address: str, tls: ClientTls | None) -> int:
    with open_channel(address, tls) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5).status


def test_a_tls_call_succeeds_and_a_plaintext_client_is_refused(pki) -> None:
    running = health_only(tls_settings(pki, mutual=False))
    try:
        assert health_status(running.address, ClientTls(pki.ca)) == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as refused:
            health_status(running.address, None)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "TLS_CA_FILE" in healthcheck.probe(running.address, timeout=5)
        # A client that trusts another CA does not accept this server's certificate.
        with pytest.raises(grpc.RpcError):
            health_status(running.address, ClientTls(pki.other_ca))
    finally:
        running.stop(0)


def test_mtls_refuses_a_client_without_a_certificate_or_with_a_strangers(pki) -> None:
    running = health_only(tls_settings(pki, mutual=True))
    try:
        with_certificate = ClientTls(pki.ca, pki.client_cert, pki.client_key)
        assert health_status(running.address, with_certificate) == health_pb2.HealthCheckResponse.SERVING

        without = healthcheck.probe(running.address, timeout=5, tls=ClientTls(pki.ca))
        assert without.startswith("UNAVAILABLE")
        assert "requires client certificates (mTLS), set TLS_CERT_FILE and TLS_KEY_FILE" in without

        stranger = healthcheck.probe(running.address, timeout=5, tls=ClientTls(pki.ca, pki.stranger_cert, pki.stranger_key))
        assert "TLS_CLIENT_CA_FILE" in stranger
    finally:
        running.stop(0)


def test_the_health_port_answers_plaintext_probes_and_follows_the_servers_health(pki) -> None:
    running = health_only(tls_settings(pki, mutual=True, health_port=0), names=["tryon.v1.BodyService"])
    probe_address = f"127.0.0.1:{running.health_port}"
    try:
        assert health_status(probe_address, None) == health_pb2.HealthCheckResponse.SERVING
        running.set_serving(False)
        assert health_status(probe_address, None) == health_pb2.HealthCheckResponse.NOT_SERVING
        # Not ready is not dead: the liveness name stays SERVING until shutdown.
        assert healthcheck.probe(probe_address, LIVENESS_SERVICE) is None
        # The probe port serves health alone: no service call gets past TLS through it.
        with open_channel(probe_address) as channel, pytest.raises(grpc.RpcError) as refused:
            body_service_pb2_grpc.BodyServiceStub(channel).GetBody(body_pb.GetBodyRequest(body_id="b"), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        running.stop(0)
    with pytest.raises(grpc.RpcError):
        health_status(probe_address, None)
    assert healthcheck.probe(probe_address, LIVENESS_SERVICE) is not None


def test_the_health_check_cli_speaks_mtls(pki, capsys) -> None:
    running = health_only(tls_settings(pki, mutual=True))
    try:
        files = ["--ca-file", str(pki.ca), "--cert-file", str(pki.client_cert), "--key-file", str(pki.client_key)]
        assert healthcheck.main([running.address, *files]) == 0
        assert healthcheck.main([running.address, "--ca-file", str(pki.ca)]) == 1
        assert "set TLS_CERT_FILE and TLS_KEY_FILE" in capsys.readouterr().err
    finally:
        running.stop(0)


def test_tls_settings_that_cannot_work_stop_start_up_with_a_sentence(pki, tmp_path: Path) -> None:
    prefix = "TRYON_BODY_"
    with pytest.raises(SettingsError, match="TLS_CERT_FILE and TLS_KEY_FILE must be set together.*TRYON_BODY_"):
        load_settings(ServerSettings, prefix, {"TRYON_BODY_TLS_CERT_FILE": str(pki.server_cert)})
    with pytest.raises(SettingsError, match="TLS_CLIENT_CA_FILE needs TLS_CERT_FILE"):
        load_settings(ServerSettings, prefix, {"TRYON_BODY_TLS_CLIENT_CA_FILE": str(pki.ca)})
    missing = tmp_path / "absent.pem"
    environ = {"TRYON_BODY_TLS_CERT_FILE": str(missing), "TRYON_BODY_TLS_KEY_FILE": str(pki.server_key)}
    with pytest.raises(SettingsError, match=f"cannot read TLS_CERT_FILE {missing}"):
        load_settings(ServerSettings, prefix, environ)
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("a CA\n")
    with pytest.raises(SettingsError, match="TLS_CA_FILE .* holds no PEM block"):
        load_settings(ServerSettings, prefix, {"TRYON_BODY_TLS_CA_FILE": str(not_pem)})


class BodyServiceWithoutBodies(body_service_pb2_grpc.BodyServiceServicer):
    """A BodyService that knows no body and remembers the certificate name of each caller."""

    def __init__(self) -> None:
        self.callers: list[str] = []

    def _unknown(self, request, context: grpc.ServicerContext):
        self.callers.extend(name.decode() for name in context.auth_context().get("x509_common_name", ()))
        context.abort(grpc.StatusCode.NOT_FOUND, f"body {request.body_id} is not known")

    GetBodyMesh = RenderSilhouette = GetBody = _unknown


def test_garment_service_reaches_body_service_over_mtls(pki) -> None:
    body = BodyServiceWithoutBodies()
    registration = ServiceRegistration(
        "tryon.v1.BodyService", lambda server: body_service_pb2_grpc.add_BodyServiceServicer_to_server(body, server)
    )
    running = serve("body", [registration], tls_settings(pki, mutual=True))
    # Wired as GarmentService's __main__ wires it: its own certificate, and the CA of the services it calls.
    garment = load_settings(
        GarmentSettings,
        GARMENT_PREFIX,
        {
            "TRYON_GARMENT_TLS_CERT_FILE": str(pki.server_cert),
            "TRYON_GARMENT_TLS_KEY_FILE": str(pki.server_key),
            "TRYON_GARMENT_TLS_CA_FILE": str(pki.ca),
        },
    )
    client = BodyServiceClient(running.address, timeout_seconds=10, tls=ClientTls.from_settings(garment))
    without_certificate = BodyServiceClient(running.address, timeout_seconds=10, tls=ClientTls(pki.ca))
    try:
        # The call got through the handshake to BodyService, which answered for the body.
        with pytest.raises(NotFound, match="b-404"):
            client("b-404")
        assert body.callers == ["server"]
        with pytest.raises(FailedPrecondition, match="set TLS_CERT_FILE and TLS_KEY_FILE"):
            without_certificate("b-404")
        assert body.callers == ["server"]
    finally:
        client.close()
        without_certificate.close()
        running.stop(0)


def test_the_storefronts_backends_speak_mtls(pki) -> None:
    running = health_only(tls_settings(pki, mutual=True), names=SERVICE_NAMES.values())
    addresses = dict.fromkeys(SERVICE_NAMES, running.address)

    async def serving(tls: ClientTls) -> dict[str, bool]:
        backends = Backends(addresses, tls=tls)
        backends.open()
        try:
            return await backends.serving()
        finally:
            await backends.close()

    try:
        assert asyncio.run(serving(ClientTls(pki.ca, pki.client_cert, pki.client_key))) == dict.fromkeys(SERVICE_NAMES, True)
        assert asyncio.run(serving(ClientTls(pki.ca))) == dict.fromkeys(SERVICE_NAMES, False)
    finally:
        running.stop(0)


class _Services:
    """What `start_storefront` reads of a suite: where each service is and where logs go."""

    def __init__(self, address: str, data_dir: Path) -> None:
        self._address = address
        self.data_dir = data_dir

    def address(self, name: str) -> str:
        return self._address


def test_the_storefront_serves_https_and_calls_the_services_over_mtls(pki, tmp_path: Path) -> None:
    running = health_only(tls_settings(pki, mutual=True), names=SERVICE_NAMES.values())
    storefront_tls = {
        "TRYON_STOREFRONT_TLS_CERT_FILE": str(pki.server_cert),
        "TRYON_STOREFRONT_TLS_KEY_FILE": str(pki.server_key),
        "TRYON_STOREFRONT_TLS_CLIENT_CA_FILE": str(pki.ca),
        "TRYON_STOREFRONT_TLS_CA_FILE": str(pki.ca),
    }
    shopper = ClientTls(pki.ca, pki.client_cert, pki.client_key)
    try:
        # /readyz answers 200 only once every service's health answered SERVING over mTLS.
        storefront, url = start_storefront(_Services(running.address, tmp_path), storefront_tls, https=shopper)
        try:
            assert url.startswith("https://127.0.0.1:")
            with urllib.request.urlopen(url + "healthz", timeout=10, context=https_client_context(shopper)) as answer:
                assert answer.status == 200
            # Plain HTTP, and HTTPS without a client certificate, end in a closed connection.
            with pytest.raises(OSError):
                urllib.request.urlopen(url.replace("https", "http") + "healthz", timeout=10)
            with pytest.raises(OSError):
                urllib.request.urlopen(url + "healthz", timeout=10, context=https_client_context(ClientTls(pki.ca)))
        finally:
            storefront.stop(5.0)
    finally:
        running.stop(0)


def test_the_storefront_stops_at_start_on_an_unreadable_certificate(tmp_path: Path) -> None:
    environ = {
        **os.environ,
        "TRYON_STOREFRONT_BODY_SERVICE_ADDRESS": "127.0.0.1:1",
        "TRYON_STOREFRONT_GARMENT_SERVICE_ADDRESS": "127.0.0.1:1",
        "TRYON_STOREFRONT_RECOMMENDATION_SERVICE_ADDRESS": "127.0.0.1:1",
        "TRYON_STOREFRONT_PORT": str(free_loopback_port()),
        "TRYON_STOREFRONT_TLS_CERT_FILE": str(tmp_path / "cert.pem"),
        "TRYON_STOREFRONT_TLS_KEY_FILE": str(tmp_path / "key.pem"),
    }
    finished = subprocess.run(
        [sys.executable, "-m", "tryon.services.storefront"], env=environ, capture_output=True, text=True, timeout=60
    )
    assert finished.returncode == 2
    assert f"cannot read TLS_CERT_FILE {tmp_path / 'cert.pem'}" in finished.stderr
    assert "TRYON_STOREFRONT_" in finished.stderr
