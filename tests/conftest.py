"""Shared fixtures: scenario meshes, the CLI, the demo mesh and a real PostgreSQL server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny_mesh(tmp_path: Path) -> Path:
    """A fresh copy of the small three-product mesh in tests/fixtures/tiny."""
    target = tmp_path / "tiny"
    shutil.copytree(FIXTURES / "tiny", target)
    return target


def copy_fixture(name: str, tmp_path: Path) -> Path:
    """A fresh copy of tests/fixtures/<name>."""
    target = tmp_path / name
    shutil.copytree(FIXTURES / name, target)
    return target


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def cli(*args: str, cwd: Path | None = None) -> CliResult:
    """Run the quanta CLI in-process, as a user would type it."""
    from quanta.cli.main import app

    runner = CliRunner()
    old = Path.cwd()
    env = {k: v for k, v in os.environ.items() if k != "QUANTA_MESH"}
    try:
        if cwd:
            os.chdir(cwd)
        result = runner.invoke(app, list(args), env=env | {"COLUMNS": "200"})
    finally:
        os.chdir(old)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return CliResult(result.exit_code, result.stdout, result.stderr)


def cli_process(*args: str, cwd: Path | None = None, timeout: float = 120
                ) -> subprocess.CompletedProcess[str]:
    """Run the installed ``quanta`` console script in its own process."""
    exe = Path(sys.executable).parent / "quanta"
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200"})


@pytest.fixture(scope="session")
def demo_mesh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Daff demo mesh with 20,000 play events, built once per test session (read only)."""
    from quanta.context import MeshContext
    from quanta.demo.mesh import create_demo

    folder = tmp_path_factory.mktemp("demo") / "daff"
    create_demo(folder, events=20_000, seed=7)
    results = MeshContext(folder).build()
    failed = [r.error.render() for r in results if r.error]
    assert not failed, failed
    return folder


# --- a real PostgreSQL server on loopback --------------------------------------------------


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError("PostgreSQL server binaries not found; run scripts/test-deps.sh")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a PostgreSQL server this fixture starts on 127.0.0.1 and stops afterwards.

    Its folder is its own (``tempfile.mkdtemp``, removed afterwards), not under pytest's
    ``/tmp/pytest-of-<user>``: pytest prunes old session folders there, so a second pytest
    session running at the same time could delete a running server's data. Only the server
    started here is stopped, by its data folder. QUANTA_TEST_PG_URL points the tests at an
    existing server instead.
    """
    if os.environ.get("QUANTA_TEST_PG_URL"):
        yield os.environ["QUANTA_TEST_PG_URL"]
        return
    bindir = _pg_bin()
    base = Path(tempfile.mkdtemp(prefix="quanta-test-pg-"))
    data, sockets = base / "data", base / "sock"
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    started = False
    try:
        sockets.mkdir()
        if as_root:  # initdb refuses root; mkdtemp's folder is reachable by its owner only
            shutil.chown(base, "postgres")
            shutil.chown(sockets, "postgres")
        port = _free_port()
        subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "quanta",
                        "--auth=trust", "-E", "UTF8"], check=True, capture_output=True)
        log = base / "server.log"
        started = True  # even a start that reports failure may leave a server to stop
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log),
                        "-w", "-o", f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1",
                        "start"], check=True, capture_output=True)
        url = f"postgresql://quanta@127.0.0.1:{port}/postgres"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        yield url
    finally:
        if started:
            subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast",
                            "-w", "stop"], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


# --- a real server (HTTP and Flight) on loopback, serving a copy of the secure mesh ---------


def _loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    mesh: Path
    context: Any
    http: str
    flight: str
    tokens: dict[str, str]

    def client(self, who: str | None = "alice") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=self.http, headers=headers, timeout=60)


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    import uvicorn

    from quanta.context import MeshContext
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
    port, flight_port = _loopback_port(), _loopback_port()
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
