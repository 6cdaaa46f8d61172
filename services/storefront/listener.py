"""The storefront's listening socket, set up so that small responses leave at once, and its HTTPS options."""

from __future__ import annotations

import socket
import ssl
from typing import Any

from tryon.shared.settings import TlsSettings


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket whose accepted connections asyncio sets to TCP_NODELAY.

    asyncio turns Nagle's algorithm off only on sockets whose protocol is IPPROTO_TCP, and
    ``socket.create_server`` leaves it 0: on a kept-alive connection, uvicorn's separate writes
    of headers and body then waited for the client's delayed ACK, 40 ms on every response.
    """
    family, kind, protocol, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )[0]
    listener = socket.socket(family, kind, protocol)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(address)
    listener.listen(2048)
    return listener


def https_options(settings: TlsSettings) -> dict[str, Any]:
    """uvicorn's TLS options for `settings`: none for plain HTTP, a certificate and key for HTTPS,
    and with a client CA, client certificates required (the settings have checked the files)."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return {}
    options: dict[str, Any] = {"ssl_certfile": str(settings.tls_cert_file), "ssl_keyfile": str(settings.tls_key_file)}
    if settings.tls_client_ca_file is not None:
        options.update(ssl_ca_certs=str(settings.tls_client_ca_file), ssl_cert_reqs=ssl.CERT_REQUIRED)
    return options
