"""Run the mesh's servers: the HTTP API (and Arrow Flight), with clean shutdown."""

from __future__ import annotations

import signal
import socket
import threading
from dataclasses import dataclass

import uvicorn

from quanta.errors import QuantaError
from quanta.serve.http import create_app
from quanta.sidecar import Sidecar


@dataclass(frozen=True)
class ServeOptions:
    """Where to listen."""

    host: str = "127.0.0.1"
    port: int = 8080
    flight_port: int | None = 8815
    workers_threads: int = 32


def serve(sidecar: Sidecar, options: ServeOptions, on_ready: object = None,
          on_stop: object = None) -> None:
    """Serve until interrupted (SIGINT or SIGTERM); then flush the audit log.

    ``on_ready`` runs once both servers listen, ``on_stop`` first thing on the way out
    (e.g. deregistering from a catalog before the servers go away)."""
    _check_free(options.host, options.port, "--port")
    if options.flight_port:
        _check_free(options.host, options.flight_port, "--flight-port")
    flight = None
    if options.flight_port:
        from quanta.serve.flight import start_flight

        flight = start_flight(sidecar, options.host, options.flight_port)
    config = uvicorn.Config(create_app(sidecar), host=options.host, port=options.port,
                            log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    # uvicorn re-raises SIGTERM after its own shutdown, which would skip the cleanup below
    signal.signal(signal.SIGTERM, _interrupt)
    if callable(on_ready):
        threading.Thread(target=_when_started, args=(server, on_ready), daemon=True).start()
    try:
        server.run()
    except KeyboardInterrupt:
        pass  # SIGINT or SIGTERM: a normal way to stop
    finally:
        if callable(on_stop):
            on_stop()
        if flight is not None:
            flight.shutdown()
        sidecar.close()


def _check_free(host: str, port: int, option: str) -> None:
    """Refuse early, with a hint, when the port is taken (instead of a server's stack trace)."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, port))
    except OSError as exc:
        raise QuantaError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint=f"choose another port with {option}, or stop the program using it",
            code="port_unavailable",
        ) from None


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _when_started(server: uvicorn.Server, on_ready: object) -> None:
    import time

    while not server.started and not server.should_exit:
        time.sleep(0.05)
    if server.started and callable(on_ready):
        on_ready()
