"""`quanta serve --product` as its own process: it serves one product, registers in a catalog
given by URL while it listens, and deregisters on SIGTERM."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
from units import (  # noqa: F401
    QUANTA,
    catalog_url,
    orders_with_outside_source,
    pg_catalog,
    start_unit,
    wait_registered,
)

from conftest import _loopback_port, copy_fixture
from quanta.catalog import Catalog
from quanta.container import package, unpack
from quanta.container.endpoints import EndpointRegistry
from quanta.context import MeshContext
from quanta.control.grants import grant
from quanta.sdk import FlightClient
from quanta.spec.mesh import load_mesh


def test_a_unit_serves_its_product_only_while_registered(tmp_path: Path,
                                                           catalog_url: str) -> None:  # noqa: F811
    mesh = copy_fixture("secure", tmp_path)
    ctx = MeshContext(mesh)
    assert all(r.ok for r in ctx.build())
    token, _ = ctx.sidecar.tokens.create("alice")
    ctx.close()
    unit = start_unit("people.listeners", "people.listeners", catalog_url, "--mesh", str(mesh))
    try:
        endpoint = wait_registered(unit, catalog_url)
        assert (endpoint.pid, endpoint.flight_url, endpoint.mesh, endpoint.version) == (
            unit.process.pid, unit.flight, "secure", "1.0.0")
        auth = {"Authorization": f"Bearer {token}"}
        answer = httpx.post(f"{unit.http}/api/v1/query", headers=auth,
                            json={"sql": "SELECT count(*) AS n FROM people.listeners"})
        assert answer.json() == {"n": 4}  # the hidden listener is filtered for alice
        other = httpx.post(f"{unit.http}/api/v1/query", headers=auth,
                           json={"sql": "SELECT count(*) FROM people.plays"})
        assert other.status_code == 404
        assert other.json()["error"]["code"] == "product_not_served"
        assert "this endpoint serves people.listeners" in other.json()["error"]["message"]
        listed = httpx.get(f"{unit.http}/api/v1/products", headers=auth).json()["products"]
        assert [p["address"] for p in listed] == ["quanta://people/listeners"]
        flight = FlightClient(unit.flight, token)
        assert flight.read("quanta://people/listeners").num_rows == 4
        flight.close()
    finally:
        code, out, err = unit.stop()
    assert code == 0, err
    assert "serving people.listeners as its own unit" in out and "registered" in out
    registry = EndpointRegistry.open(catalog_url)
    try:
        assert registry.live() == []  # deregistered on the way out
        assert registry.catalog.has("people.listeners")  # its discovery document stays
    finally:
        registry.close()
    assert MeshContext(mesh).sidecar.audit.verify().ok


def test_a_bundle_runs_as_its_own_unit_with_its_own_storage(tmp_path: Path) -> None:
    mesh = orders_with_outside_source(tmp_path)
    bundle = package(load_mesh(mesh), "shop.orders", tmp_path / "dist").path
    ops = tmp_path / "ops"
    ops.mkdir()
    (mesh / "sources").rename(ops / "sources")
    # what `quanta run --product BUNDLE` does before serving: unpack, then build
    root = unpack(bundle, tmp_path / "unit", sources=ops)
    ctx = MeshContext(root)
    assert all(r.ok for r in ctx.build())
    token, _ = ctx.sidecar.tokens.create("alice")
    grant(ctx.sidecar, ctx.principal(), "alice", "quanta://shop/orders", None, None)
    ctx.close()
    catalog = f"sqlite:///{tmp_path / 'catalog.db'}"
    unit = start_unit(str(bundle), "shop.orders", catalog, "--into", str(root),
                      "--sources", str(ops))
    try:
        wait_registered(unit, catalog)
        rows = httpx.get(f"{unit.http}/api/v1/products/shop/orders/ports/orders/rows",
                         headers={"Authorization": f"Bearer {token}"}).json()
        assert [r["order_id"] for r in rows["rows"]] == ["o1", "o2", "o3"]
        assert rows["release"] == 1  # the unit's storage survived unpacking again
    finally:
        code, out, err = unit.stop()
    assert code == 0, err
    assert f"(mesh 'tiny' at {root})" in out
    assert (root / ".quanta/products/shop/orders/releases/000001.json").is_file()
    with_catalog = Catalog(catalog)
    try:
        assert with_catalog.has("shop.orders") and with_catalog.endpoints() == []
    finally:
        with_catalog.close()


def test_a_unit_whose_catalog_is_down_does_not_start(tmp_path: Path) -> None:
    mesh = copy_fixture("secure", tmp_path)
    down = f"postgresql://nobody@127.0.0.1:{_loopback_port()}/catalog"
    done = subprocess.run(
        [str(QUANTA), "serve", "--mesh", str(mesh), "--product", "people.plays", "--catalog",
         down, "--port", str(_loopback_port()), "--flight-port", "0"],
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "is unavailable" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("args, message", [
    (["--catalog", "sqlite:///x.db"], "go with --product"),
    (["--product", "shop.nothing", "--catalog", "sqlite:///x.db"], "no product 'shop.nothing'"),
])
def test_serve_options_are_checked(tmp_path: Path, args: list[str], message: str) -> None:
    from conftest import cli

    mesh = copy_fixture("tiny", tmp_path)
    done = cli("serve", "--mesh", str(mesh), *args)
    assert done.exit_code == 1 and message in done.stderr


def test_the_advertised_urls() -> None:
    from quanta.container.unit import advertised
    from quanta.errors import QuantaError
    from quanta.serve.server import ServeOptions

    here = advertised(ServeOptions("127.0.0.1", 8080, 8815), None)
    assert (here.http_url, here.flight_url) == ("http://127.0.0.1:8080", "grpc://127.0.0.1:8815")
    named = advertised(ServeOptions("0.0.0.0", 8080, None), "https://orders.internal:9443/")
    assert (named.http_url, named.flight_url) == ("https://orders.internal:9443", None)
    with pytest.raises(QuantaError, match="not an HTTP URL"):
        advertised(ServeOptions(), "ftp://orders.internal")
