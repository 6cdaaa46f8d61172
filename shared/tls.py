"""TLS and mutual TLS for every tryon gRPC server and client, made from PEM files.

The one place that turns certificate paths into credentials: `serve` asks
`server_credentials` for a service's `TlsSettings`; the services' own clients (GarmentService
to BodyService, the storefront to all three, the health check) open their channels with
`open_channel` or `open_aio_channel`, given a `ClientTls` or None for plaintext. Plaintext
stays the default, for loopback and for pods whose mesh sidecar terminates TLS.

A client that presents a certificate uses the one its server presents (``TLS_CERT_FILE``):
one identity per workload, as meshes and cert-manager issue them (usages server auth and
client auth).
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from tryon.shared.settings import SettingsError, TlsSettings

ChannelOptions = Sequence[tuple[str, Any]]


class TlsFileError(SettingsError):
    """A certificate, key or CA file cannot be read; the message names the file and its setting."""


@dataclass(frozen=True)
class ClientTls:
    """How a client verifies its servers (`ca_file`) and, for mTLS, who it is (`cert_file` and `key_file`)."""

    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("a client certificate needs its key: give cert_file and key_file together")

    @classmethod
    def from_settings(cls, settings: TlsSettings) -> ClientTls | None:
        """The client side of `settings`: TLS when ``TLS_CA_FILE`` is set, with the server's own certificate."""
        if settings.tls_ca_file is None:
            return None
        return cls(settings.tls_ca_file, settings.tls_cert_file, settings.tls_key_file)


def read_pem(path: Path, setting: str) -> bytes:
    """The bytes of a PEM file; raises TlsFileError naming `setting` when it cannot be read or holds no PEM."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise TlsFileError(f"cannot read {setting} {path}: {error.strerror or error}") from None
    if b"-----BEGIN " not in data:
        raise TlsFileError(f"{setting} {path} holds no PEM block (expected '-----BEGIN ...')")
    return data


def server_credentials(settings: TlsSettings) -> grpc.ServerCredentials | None:
    """TLS credentials of a server, requiring client certificates when a client CA is set; None: plaintext."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    pair = (read_pem(settings.tls_key_file, "TLS_KEY_FILE"), read_pem(settings.tls_cert_file, "TLS_CERT_FILE"))
    client_ca = None
    if settings.tls_client_ca_file is not None:
        client_ca = read_pem(settings.tls_client_ca_file, "TLS_CLIENT_CA_FILE")
    return grpc.ssl_server_credentials([pair], root_certificates=client_ca, require_client_auth=client_ca is not None)


def channel_credentials(tls: ClientTls) -> grpc.ChannelCredentials:
    """Channel credentials that verify the server against `tls.ca_file` and present the client certificate if any."""
    key = chain = None
    if tls.cert_file is not None and tls.key_file is not None:
        key = read_pem(tls.key_file, "the client key file")
        chain = read_pem(tls.cert_file, "the client certificate file")
    return grpc.ssl_channel_credentials(
        root_certificates=read_pem(tls.ca_file, "TLS_CA_FILE"), private_key=key, certificate_chain=chain
    )


def open_channel(address: str, tls: ClientTls | None = None, options: ChannelOptions = ()) -> grpc.Channel:
    """A blocking channel to `address`: TLS when `tls` is given, plaintext otherwise."""
    if tls is None:
        return grpc.insecure_channel(address, options=list(options))
    return grpc.secure_channel(address, channel_credentials(tls), options=list(options))


def open_aio_channel(address: str, tls: ClientTls | None = None, options: ChannelOptions = ()) -> grpc.aio.Channel:
    """An asyncio channel to `address`: TLS when `tls` is given, plaintext otherwise."""
    if tls is None:
        return grpc.aio.insecure_channel(address, options=list(options))
    return grpc.aio.secure_channel(address, channel_credentials(tls), options=list(options))


def https_client_context(tls: ClientTls) -> ssl.SSLContext:
    """An HTTPS client context that trusts `tls.ca_file` and presents `tls`' certificate when it has one."""
    context = ssl.create_default_context(cafile=str(tls.ca_file))
    if tls.cert_file is not None and tls.key_file is not None:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    return context


def transport_hint(details: str | None, tls: ClientTls | None) -> str | None:
    """What to check when an UNAVAILABLE call's `details` tell of a refused TLS set-up; None when they do not.

    gRPC reports a server's refusal of a handshake only as "Socket closed" to the client (the
    reason is in the server's log), so the hint follows from what this client offered.
    """
    text = (details or "").lower()
    if "handshake" in text or "certificate" in text or "ssl" in text:
        return (
            "the TLS handshake failed: TLS_CA_FILE must hold the CA that signed the server's certificate, "
            "and the certificate must name the address dialled"
        )
    if "socket closed" not in text and "connection reset" not in text:
        return None
    if tls is None:
        return "the server closed the connection: if it serves TLS, set TLS_CA_FILE to its CA"
    if tls.cert_file is None:
        return (
            "the server closed the connection: if it requires client certificates (mTLS), "
            "set TLS_CERT_FILE and TLS_KEY_FILE"
        )
    return "the server closed the connection: check that its TLS_CLIENT_CA_FILE holds the CA of this certificate"
