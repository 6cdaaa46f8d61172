"""The storefront's listening socket, set up so that small responses leave at once."""

from __future__ import annotations

import socket


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
