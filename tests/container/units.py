"""Products run as their own units (imported by the container tests): catalogs to register
in, and `quanta serve --product` processes on loopback, always stopped (by pid) at the end."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from conftest import FIXTURES, _loopback_port
from quanta.container.endpoints import Endpoint, EndpointRegistry

QUANTA = Path(sys.executable).parent / "quanta"
START_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def pg_catalog(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL database of its own for this module, on the session's server."""
    import psycopg

    name = f"container_{secrets.token_hex(4)}"
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    yield make_url(postgres_url).set(drivername="postgresql+psycopg", database=name
                                     ).render_as_string(hide_password=False)
    with psycopg.connect(postgres_url, autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test runs once per catalog store."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.db'}"
    return str(request.getfixturevalue("pg_catalog"))


def orders_with_outside_source(tmp_path: Path) -> Path:
    """The tiny mesh, its orders reading a CSV outside the product's folder
    (``../../../sources/orders.csv``), as a source-aligned product reads an operational one."""
    mesh = tmp_path / "tiny"
    shutil.copytree(FIXTURES / "tiny", mesh)
    (mesh / "sources").mkdir()
    folder = mesh / "domains/shop/orders"
    (folder / "orders.csv").rename(mesh / "sources/orders.csv")
    spec = folder / "dataproduct.yaml"
    spec.write_text(spec.read_text().replace("path: orders.csv",
                                             "path: ../../../sources/orders.csv"))
    return mesh


@dataclass
class Unit:
    """A `quanta serve --product` process."""

    process: subprocess.Popen[str]
    product: str
    http: str
    flight: str

    def stop(self) -> tuple[int, str, str]:
        """SIGTERM, then wait; SIGKILL if it does not stop in time."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
        try:
            out, err = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            out, err = self.process.communicate(timeout=10)
        return self.process.returncode, out, err


def start_unit(target: str, product: str, catalog: str, *extra: str) -> Unit:
    """Start `quanta serve --product TARGET` on free loopback ports."""
    port, flight_port = _loopback_port(), _loopback_port()
    process = subprocess.Popen(
        [str(QUANTA), "serve", "--product", target, "--catalog", catalog, "--port", str(port),
         "--flight-port", str(flight_port), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "200"})
    return Unit(process, product, f"http://127.0.0.1:{port}", f"grpc://127.0.0.1:{flight_port}")


def wait_registered(unit: Unit, catalog: str) -> Endpoint:
    """Poll /readyz, then the catalog, until the unit listens and is registered."""
    deadline = time.monotonic() + START_TIMEOUT
    registry = EndpointRegistry.open(catalog)
    try:
        while time.monotonic() < deadline:
            if unit.process.poll() is not None:
                _, out, err = unit.stop()
                raise AssertionError(f"the unit stopped: {out}\n{err}")
            try:
                ready = httpx.get(f"{unit.http}/readyz", timeout=2).status_code == 200
            except httpx.TransportError:
                ready = False
            if ready:
                found = [e for e in registry.live(unit.product) if e.http_url == unit.http]
                if found:
                    return found[0]
            time.sleep(0.1)
    finally:
        registry.close()
    unit.stop()
    raise AssertionError(f"{unit.product} was not registered within {START_TIMEOUT:.0f} s")


@contextmanager
def serving(target: str, product: str, catalog: str, *extra: str) -> Iterator[Unit]:
    """A registered unit for the duration of the block; stopped afterwards whatever happens."""
    unit = start_unit(target, product, catalog, *extra)
    try:
        wait_registered(unit, catalog)
        yield unit
    finally:
        unit.stop()
