"""A real server (HTTP and Flight) on loopback, serving a copy of the secure mesh."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from conftest import copy_fixture
from quanta.context import MeshContext


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    mesh: Path
    context: MeshContext
    http: str
    flight: str
    tokens: dict[str, str]

    def client(self, who: str | None = "alice") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=self.http, headers=headers, timeout=60)


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from quanta.serve.flight import start_flight
    from quanta.serve.http import create_app

    mesh = copy_fixture("secure", tmp_path_factory.mktemp("served"))
    ctx = MeshContext(mesh)
    assert all(r.ok for r in ctx.build())
    sidecar = ctx.sidecar
    tokens = {
        "alice": sidecar.tokens.create("alice")[0],
        "pia": sidecar.tokens.create("pia", ["privacy"])[0],
        "bob": sidecar.tokens.create("bob")[0],
        "de": sidecar.tokens.create("de_only")[0],
    }
    port, flight_port = free_port(), free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(sidecar), host="127.0.0.1", port=port,
                                           log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    flight = start_flight(sidecar, "127.0.0.1", flight_port)
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield Served(mesh, ctx, f"http://127.0.0.1:{port}", f"grpc://127.0.0.1:{flight_port}",
                     tokens)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        flight.shutdown()
        sidecar.close()
