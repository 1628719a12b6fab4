"""Retention apply: rows older than a product's retention leave every kept release and the raw
files; dry runs and failures change nothing; a second run removes nothing more."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from conftest import cli, copy_fixture
from quanta.context import MeshContext
from quanta.control import RetentionError, apply_retention
from quanta.control.retention import plan_retention
from quanta.engine.duckdb import DuckDBSession
from quanta.errors import NotFoundError
from quanta.storage import ProductStorage

NOW = datetime.now(UTC)
HEADER = "order_id,customer_id,amount,ordered_at\n"


def stamp(days: int) -> str:
    return (NOW - timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")


def declare(root: Path, product: str, retention: str) -> None:
    spec = root / "domains/shop" / product / "dataproduct.yaml"
    spec.write_text(spec.read_text() + f"retention: {retention}\n")


@pytest.fixture
def mesh(tmp_path: Path) -> Path:
    """The tiny mesh built twice before retention was declared, then declaring 400 days on
    orders (timestamps) and 30 days on daily_totals (dates).

    Release 1 of orders: o1 (500 days old), o2 (10), o3 (no time); release 2 adds o4 (450)
    and o5 (5)."""
    root = copy_fixture("tiny", tmp_path)
    source = root / "domains/shop/orders/orders.csv"
    source.write_text(HEADER + f"o1,c1,10.50,{stamp(500)}\no2,c2,20.00,{stamp(10)}\n"
                      "o3,c3,1.00,\n")
    ctx = MeshContext(root)
    assert all(r.ok for r in ctx.build())
    source.write_text(source.read_text() + f"o4,c1,4.00,{stamp(450)}\no5,c4,5.00,{stamp(5)}\n")
    assert all(r.ok for r in ctx.build())
    ctx.close()
    declare(root, "orders", "400d")
    declare(root, "daily_totals", "30d")
    return root


def orders_at(ctx: MeshContext, release: int) -> list[str]:
    rows = ctx.query("SELECT order_id FROM shop.orders", release).table
    return sorted(rows.column("order_id").to_pylist())


def raw_order_ids(root: Path) -> list[str]:
    """order_id of every row of every Parquet file in the orders port folder, read directly."""
    values: list[str] = []
    for file in sorted((root / ".quanta/products/shop/orders/ports/orders").glob("*.parquet")):
        values += pq.read_table(file, columns=["order_id"]).column(0).to_pylist()
    return values


def stored(root: Path) -> dict[Path, bytes]:
    """Every data file and manifest of the mesh, with its bytes."""
    folder = root / ".quanta/products"
    return {p: p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.suffix == ".parquet" or p.parent.name == "releases"}


def test_retention_reaches_every_release_and_the_raw_files(mesh: Path) -> None:
    ctx = MeshContext(mesh)
    assert orders_at(ctx, 1) == ["o1", "o2", "o3"]
    assert orders_at(ctx, 2) == ["o1", "o2", "o3", "o4", "o5"]

    report = apply_retention(ctx.sidecar)

    assert [p.product for p in report.products] == ["shop.daily_totals", "shop.orders"]
    removed = {(t.product, t.release): t.rows_removed for t in report.trimmed}
    assert removed == {("shop.orders", 1): 1, ("shop.orders", 2): 2,
                       ("shop.daily_totals", 1): 1, ("shop.daily_totals", 2): 2}
    assert orders_at(ctx, 1) == ["o2", "o3"]  # rows without an event time stay
    assert orders_at(ctx, 2) == ["o2", "o3", "o5"]
    assert sorted(raw_order_ids(mesh)) == ["o2", "o2", "o3", "o3", "o5"]
    days = ctx.query("SELECT day FROM shop.daily_totals", 2).table.column("day").to_pylist()
    recent = sorted((NOW - timedelta(days=d)).date() for d in (10, 5))
    assert sorted(days, key=str) == [*recent, None]

    storage = ProductStorage(mesh / ".quanta", "shop.orders")
    cutoff = datetime.fromisoformat(report.products[1].cutoff)
    assert abs(cutoff - (NOW - timedelta(days=400))) < timedelta(minutes=5)
    for release in storage.releases():
        assert release.retentions == [report.id] and release.retention_cutoff == cutoff
        assert release.ports["orders"].rows == len(orders_at(ctx, release.release))
    latest = DeltaTable(str(storage.port_path("orders"))).to_pyarrow_table()
    assert sorted(latest.column("order_id").to_pylist()) == ["o2", "o3", "o5"]
    untouched = ProductStorage(mesh / ".quanta", "shop.customers_py").releases()
    assert all(not r.retentions for r in untouched)

    kept = json.loads((mesh / ".quanta/retention" / f"{report.id}.json").read_text())
    assert kept["rows_removed"] == 6 and not kept["dry_run"]
    assert {(t["product"], t["release"], t["port"], t["rows_removed"], t["cutoff"])
            for t in kept["trimmed"]} >= {("shop.orders", 2, "orders", 2, cutoff.isoformat())}
    ctx.sidecar.audit.close()
    audit = [json.loads(line) for line in ctx.sidecar.audit.file.read_text().splitlines()]
    assert any(r.get("action") == "retention" and r.get("retention") == report.id
               and r.get("rows") == 6 for r in audit)
    ctx.close()


def test_a_second_run_removes_nothing_more(mesh: Path) -> None:
    ctx = MeshContext(mesh)
    apply_retention(ctx.sidecar)
    before = stored(mesh)

    again = apply_retention(ctx.sidecar)

    assert again.rows_removed == 0 and again.trimmed == []
    assert stored(mesh) == before
    assert orders_at(ctx, 2) == ["o2", "o3", "o5"]
    ctx.close()


def test_a_dry_run_counts_and_changes_nothing(mesh: Path) -> None:
    ctx = MeshContext(mesh)
    before = stored(mesh)

    report = apply_retention(ctx.sidecar, ["shop.orders"], dry_run=True)

    assert report.rows_removed == 3 and all(not t.files_after for t in report.trimmed)
    assert stored(mesh) == before
    assert not (mesh / ".quanta/retention").exists()
    assert orders_at(ctx, 1) == ["o1", "o2", "o3"]
    ctx.close()


def test_a_failure_midway_leaves_every_release_as_it_was(
        mesh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = MeshContext(mesh)
    before = stored(mesh)
    write = DuckDBSession.write_parquet
    calls: list[int] = []

    def failing(self: DuckDBSession, *args: object, **kwargs: object) -> list[Path]:
        calls.append(1)
        if len(calls) == 3:
            raise OSError("No space left on device")
        return write(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(DuckDBSession, "write_parquet", failing)
    with pytest.raises(RetentionError, match="retention stopped before changing anything"):
        apply_retention(ctx.sidecar)

    assert len(calls) == 3
    assert stored(mesh) == before
    assert orders_at(ctx, 2) == ["o1", "o2", "o3", "o4", "o5"]
    ctx.close()


def test_only_the_products_named_are_trimmed(mesh: Path) -> None:
    ctx = MeshContext(mesh)
    report = apply_retention(ctx.sidecar, ["shop.orders", "shop.orders"])
    assert {t.product for t in report.trimmed} == {"shop.orders"} and report.rows_removed == 3
    days = ctx.query("SELECT day FROM shop.daily_totals", 2).table.column("day").to_pylist()
    assert len(days) == 5  # untouched
    ctx.close()


def test_unknown_products_and_products_without_retention_are_refused(mesh: Path) -> None:
    ctx = MeshContext(mesh)
    before = stored(mesh)
    with pytest.raises(NotFoundError, match=r"no product 'shop\.nope'") as unknown:
        apply_retention(ctx.sidecar, ["shop.orders", "shop.nope"])
    assert "shop.orders" in (unknown.value.hint or "")
    with pytest.raises(RetentionError, match=r"shop\.customers_py declare") as missing:
        apply_retention(ctx.sidecar, ["shop.orders", "shop.customers_py"])
    assert missing.value.code == "retention_missing"
    assert "shop.daily_totals, shop.orders" in (missing.value.hint or "")
    assert stored(mesh) == before
    ports = {p.product: (p.ports, p.untimed) for p in plan_retention(ctx.mesh)}
    assert ports == {"shop.daily_totals": ({"totals": "day"}, []),
                     "shop.orders": ({"orders": "ordered_at"}, [])}
    ctx.close()


def test_an_event_time_stored_as_text_is_refused(tmp_path: Path) -> None:
    """Release 1 was built when ordered_at was a string; it cannot be compared to a cutoff."""
    root = copy_fixture("tiny", tmp_path)
    spec = root / "domains/shop/orders/dataproduct.yaml"
    declared = spec.read_text()
    spec.write_text(declared.replace("    event_time: ordered_at\n", "").replace(
        "{name: ordered_at, type: timestamp", "{name: ordered_at, type: string"))
    (root / "domains/shop/orders/orders.csv").write_text(HEADER + f"o1,c1,1.00,{stamp(500)}\n")
    ctx = MeshContext(root)
    assert all(r.ok for r in ctx.build(["shop.orders"]))
    ctx.close()
    spec.write_text(declared.replace("version: 1.0.0", "version: 2.0.0") + "retention: 400d\n")
    before = stored(root)

    ctx = MeshContext(root)
    with pytest.raises(RetentionError, match="release 1 port 'orders': event_time column "
                       "'ordered_at' is stored as VARCHAR") as info:
        apply_retention(ctx.sidecar)
    assert info.value.code == "event_time_not_comparable" and info.value.hint
    assert stored(root) == before
    ctx.close()


def test_the_cli(mesh: Path) -> None:
    dry = cli("retention", "apply", "--dry-run", "--mesh", str(mesh))
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.stdout and "6 rows" in dry.stdout and "shop.orders" in dry.stdout
    as_json = cli("retention", "apply", "shop.daily_totals", "--json", "--mesh", str(mesh))
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["rows_removed"] == 3
    done = cli("retention", "apply", "--mesh", str(mesh))
    assert done.exit_code == 0, done.output
    assert "removed 3 rows" in done.stdout and "2 release(s)" in done.stdout
    assert "report:" in done.stderr
    again = cli("retention", "apply", "--mesh", str(mesh))
    assert again.exit_code == 0 and "removed 0 rows" in again.stdout
    unknown = cli("retention", "apply", "shop.nope", "--mesh", str(mesh))
    assert unknown.exit_code == 1 and "no product 'shop.nope'" in unknown.output
    missing = cli("retention", "apply", "shop.customers_py", "--json", "--mesh", str(mesh))
    assert missing.exit_code == 1
    assert json.loads(missing.stdout)["errors"][0]["code"] == "retention_missing"


def test_the_cli_on_a_mesh_without_retention(tiny_mesh: Path) -> None:
    result = cli("retention", "apply", "--mesh", str(tiny_mesh))
    assert result.exit_code == 0 and "nothing to do" in result.stdout


def test_a_release_whose_every_row_expired_is_served_empty(tmp_path: Path) -> None:
    root = copy_fixture("tiny", tmp_path)
    (root / "domains/shop/orders/orders.csv").write_text(
        HEADER + f"o1,c1,1.00,{stamp(500)}\no2,c2,2.00,{stamp(401)}\n")
    ctx = MeshContext(root)
    assert all(r.ok for r in ctx.build(["shop.orders"]))
    ctx.close()
    declare(root, "orders", "400d")

    ctx = MeshContext(root)
    assert apply_retention(ctx.sidecar).rows_removed == 2
    assert orders_at(ctx, 1) == [] and raw_order_ids(root) == []
    latest = DeltaTable(str(root / ".quanta/products/shop/orders/ports/orders"))
    assert latest.to_pyarrow_table().num_rows == 0
    ctx.close()
