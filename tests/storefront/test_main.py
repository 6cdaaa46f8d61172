"""The storefront's entry point: its listening socket and its start-up refusal of missing settings."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys

from tryon.services.storefront.listener import listen


def nodelay_of_accepted_connection(listener: socket.socket) -> int:
    """TCP_NODELAY of a connection an asyncio server accepted on `listener`."""

    async def accept_one() -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport):
                accepted.set_result(transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
        with socket.create_connection(listener.getsockname()[:2]):
            value = await asyncio.wait_for(accepted, 5)
        server.close()
        return value

    return asyncio.run(accept_one())


def test_accepted_connections_send_small_writes_at_once():
    listener = listen("127.0.0.1", 0)
    assert listener.getsockname()[1] != 0
    assert nodelay_of_accepted_connection(listener) != 0


def test_start_up_stops_with_a_sentence_naming_a_missing_address():
    environment = {key: value for key, value in os.environ.items() if not key.startswith("TRYON_STOREFRONT_")}
    environment["TRYON_STOREFRONT_BODY_SERVICE_ADDRESS"] = "127.0.0.1:1"
    run = subprocess.run([sys.executable, "-m", "tryon.services.storefront"], env=environment,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2
    assert "TRYON_STOREFRONT_GARMENT_SERVICE_ADDRESS is required" in run.stderr
