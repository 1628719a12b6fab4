"""End to end on loopback: a bundled product whose input is another product, served by
another unit, builds by reading that input through the catalog, as a principal of its own."""

from __future__ import annotations

import csv
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from units import QUANTA, Unit, serving

from conftest import copy_fixture
from quanta.container.bundle import package
from quanta.container.remote import CatalogInputs, remote_inputs
from quanta.context import MeshContext
from quanta.engine.duckdb import DuckDBSession
from quanta.errors import InputError
from quanta.inputs.probe import current_inputs
from quanta.runtime import MeshRuntime
from quanta.spec.mesh import load_mesh
from quanta.spec.models import ProductInput

ORDERS = "shop.orders"
TOTALS = "shop.daily_totals"
INPUT = ProductInput(type="product", name="orders", product="quanta://shop/orders/orders")
POLICIES = """policies:
  - {type: grant, to: [shop_unit]}
  - {type: mask, columns: [customer_id], method: hash}
"""


@dataclass
class Upstream:
    mesh: Path
    catalog: str
    token: str
    bundle: Path
    unit: Unit


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    base = tmp_path_factory.mktemp("remote")
    mesh = copy_fixture("tiny", base)
    spec = mesh / "domains/shop/orders/dataproduct.yaml"
    spec.write_text(spec.read_text() + POLICIES)
    ctx = MeshContext(mesh)
    assert all(r.ok for r in ctx.build())
    token = ctx.sidecar.tokens.create("shop_unit")[0]
    bundle = package(ctx.mesh, TOTALS, base / "dist").path
    ctx.close()
    catalog = f"sqlite:///{base / 'catalog.db'}"
    with serving(ORDERS, ORDERS, catalog, "--mesh", str(mesh)) as unit:
        yield Upstream(mesh, catalog, token, bundle, unit)


def run_bundle(up: Upstream, into: Path, token: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "QUANTA_TOKEN"}
    if token is not None:
        env["QUANTA_TOKEN"] = token
    return subprocess.run(
        [str(QUANTA), "run", "--product", str(up.bundle), "--once", "--into", str(into),
         "--catalog", up.catalog], capture_output=True, text=True, timeout=120,
        env={**env, "COLUMNS": "200"})


def released_rows(root: Path) -> list[dict[str, object]]:
    storage = MeshContext(root).storage(TOTALS)
    release = storage.latest()
    assert release is not None
    table = pa.concat_tables(pq.read_table(f) for f in storage.data_files(release, "totals"))
    keep = [n for n in table.column_names if not n.startswith("_")]
    return sorted(table.select(keep).to_pylist(), key=lambda r: str(r["day"]))


def test_the_bundle_declares_its_upstream_and_validates(upstream: Upstream,
                                                        tmp_path: Path) -> None:
    from quanta.container.bundle import unpack

    mesh = load_mesh(unpack(upstream.bundle, tmp_path / "unit"))
    assert mesh.spec.external == ["quanta://shop/orders"]
    assert mesh.problems == []
    reader = remote_inputs(mesh, upstream.catalog)
    assert reader is not None and reader.serves(ORDERS) and not reader.serves(TOTALS)


def test_a_bundle_releases_from_its_upstream_unit(upstream: Upstream, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    into = tmp_path / "unit"
    done = run_bundle(upstream, into, upstream.token)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "released" in done.stdout
    assert released_rows(into) == released_rows(upstream.mesh)
    release = MeshContext(into).storage(TOTALS).latest()
    assert release is not None
    read = release.inputs["orders"]
    assert (read.product, read.release) == ("quanta://shop/orders/orders", 1)

    # the runtime sees the upstream unit's releases: nothing new, then a new release
    monkeypatch.setenv("QUANTA_TOKEN", upstream.token)
    status = {p.product: p for p in MeshRuntime(into, catalog=upstream.catalog).status()}
    assert not status[TOTALS].due, status[TOTALS]
    csv_file = upstream.mesh / "domains/shop/orders/orders.csv"
    last = csv_file.read_text().splitlines()[-1]
    with csv_file.open("a") as handle:  # one more order: the upstream makes release 2
        handle.write("o_new," + last.split(",", 1)[1] + "\n")
    assert all(r.ok for r in MeshContext(upstream.mesh).build([ORDERS]))
    status = {p.product: p for p in MeshRuntime(into, catalog=upstream.catalog).status()}
    assert status[TOTALS].due
    assert "upstream shop.orders has release 2" in status[TOTALS].reasons


def test_a_masked_column_stays_masked_in_the_downstream_input(upstream: Upstream) -> None:
    reader = CatalogInputs(frozenset({ORDERS}), upstream.catalog,
                           {"QUANTA_TOKEN": upstream.token})
    session = DuckDBSession()
    try:
        read = reader.load(session, INPUT)
        seen = session.table("SELECT customer_id FROM orders").column(0).to_pylist()
    finally:
        session.close()
        reader.close()
    raw = {r["customer_id"] for r in csv.DictReader(
        (upstream.mesh / "domains/shop/orders/orders.csv").open())}
    assert read.release is not None and read.rows == len(seen) > 0
    assert not set(seen) & raw


def test_without_a_token_the_build_fails_saying_which_variable(upstream: Upstream,
                                                               tmp_path: Path) -> None:
    done = run_bundle(upstream, tmp_path / "unit", None)
    assert done.returncode == 1
    assert "QUANTA_TOKEN" in done.stdout + done.stderr
    with pytest.raises(InputError) as caught:
        CatalogInputs(frozenset({ORDERS}), upstream.catalog, {}).load(DuckDBSession(), INPUT)
    assert not caught.value.transient and caught.value.code == "input_token_missing"
    refused = CatalogInputs(frozenset({ORDERS}), upstream.catalog, {"QUANTA_TOKEN": "nope"})
    with pytest.raises(InputError) as caught:
        refused.load(DuckDBSession(), INPUT)
    refused.close()
    assert not caught.value.transient and "QUANTA_TOKEN" in caught.value.message


def test_an_unknown_product_is_terminal_naming_the_registered_ones(upstream: Upstream) -> None:
    reader = CatalogInputs(frozenset({"shop.nothing"}), upstream.catalog,
                           {"QUANTA_TOKEN": upstream.token})
    spec = ProductInput(type="product", name="nothing", product="shop.nothing")
    with pytest.raises(InputError) as caught:
        reader.load(DuckDBSession(), spec)
    reader.close()
    assert not caught.value.transient and caught.value.code == "input_not_served"
    assert ORDERS in (caught.value.hint or "")


def test_a_catalog_that_cannot_be_read_is_transient(upstream: Upstream, tmp_path: Path) -> None:
    (tmp_path / "catalog.db").write_text("not a database")
    reader = CatalogInputs(frozenset({ORDERS}), f"sqlite:///{tmp_path / 'catalog.db'}",
                           {"QUANTA_TOKEN": upstream.token})
    with pytest.raises(InputError) as caught:
        reader.load(DuckDBSession(), INPUT)
    reader.close()
    assert caught.value.transient and caught.value.code == "input_catalog_unavailable"


def test_with_the_upstream_unit_stopped_the_build_is_transient(upstream: Upstream,
                                                               tmp_path: Path) -> None:
    # last: it stops the module's unit
    from quanta.container.bundle import unpack

    root = unpack(upstream.bundle, tmp_path / "unit")
    reader = CatalogInputs(frozenset({ORDERS}), upstream.catalog,
                           {"QUANTA_TOKEN": upstream.token})
    spec = load_mesh(root).product(TOTALS).spec
    assert current_inputs(spec, root, root / ".quanta", reader)["orders"] is not None
    code, _, _ = upstream.unit.stop()
    assert code == 0
    reader = CatalogInputs(frozenset({ORDERS}), upstream.catalog,
                           {"QUANTA_TOKEN": upstream.token})
    assert current_inputs(spec, root, root / ".quanta", reader)["orders"] is None
    ctx = MeshContext(root, remote=reader)
    result = ctx.build_product(TOTALS)
    ctx.close()
    reader.close()
    assert isinstance(result.error, InputError) and result.error.transient, result.error
