"""Builds make immutable releases; reads pin a release by number or time."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from quanta.context import MeshContext
from quanta.errors import NotFoundError, QueryError, StorageError
from quanta.storage.files import sha256_file

NEW_ROW = "o4,c3,99.99,2026-11-03 12:00:00\n"


def add_order(mesh: Path, row: str = NEW_ROW) -> None:
    csv = mesh / "domains/shop/orders/orders.csv"
    csv.write_text(csv.read_text() + row)


def count(ctx: MeshContext, sql: str, as_of: str | int | None = None) -> int:
    return int(ctx.query(sql, as_of).table.column(0)[0].as_py())


def test_every_build_makes_a_new_release_with_manifest_facts(tiny_mesh: Path) -> None:
    ctx = MeshContext(tiny_mesh)
    first = {r.product: r for r in ctx.build()}
    assert all(r.ok for r in first.values())
    release = first["shop.orders"].release
    assert release is not None and release.release == 1
    port = release.ports["orders"]
    assert port.rows == 3 and port.files
    for data_file in port.files:
        path = ctx.storage("shop.orders").port_path("orders") / data_file.path
        assert sha256_file(path) == data_file.sha256
    downstream = first["shop.daily_totals"].release
    assert downstream is not None
    assert downstream.inputs["orders"].product == "quanta://shop/orders/orders"
    assert downstream.inputs["orders"].release == 1
    assert {c.name for c in release.checks} == {
        "not_null_order_id_customer_id", "unique_order_id", "range_amount"}
    assert release.metrics["completeness"] == 1.0
    assert release.profile["orders"]["amount"]["null_share"] == 0.0

    ctx.build(["shop.orders"])
    assert [r.release for r in ctx.releases("shop.orders")] == [1, 2]


def test_old_release_reads_old_data_after_rebuild(tiny_mesh: Path) -> None:
    ctx = MeshContext(tiny_mesh)
    ctx.build()
    before = ctx.releases("shop.orders")[0]
    files_before = {f.path: f.sha256 for f in before.ports["orders"].files}
    time.sleep(0.01)
    between = datetime.now(UTC)
    add_order(tiny_mesh)
    assert all(r.ok for r in ctx.build())

    sql = "SELECT count(*) FROM shop.orders"
    assert count(ctx, sql) == 4
    assert count(ctx, sql, as_of=1) == 3
    assert count(ctx, sql, as_of=between.isoformat()) == 3
    # a timestamp pins every product of a join to the releases current then
    joined = ("SELECT count(*) FROM shop.orders o JOIN shop.customers_py c "
              "ON o.customer_id = c.customer_id")
    assert count(ctx, joined, as_of=between.isoformat()) == 3
    assert count(ctx, joined) == 4
    result = ctx.query(joined, between.isoformat())
    assert result.snapshot == {"shop.orders": 1, "shop.customers_py": 1}
    # release 1 is immutable: same manifest, same files, same digests
    again = ctx.releases("shop.orders")[0]
    assert again == before
    storage = ctx.storage("shop.orders")
    for path, digest in files_before.items():
        assert sha256_file(storage.port_path("orders") / path) == digest


def test_read_by_address_with_release(tiny_mesh: Path) -> None:
    ctx = MeshContext(tiny_mesh)
    ctx.build(["shop.orders"])
    add_order(tiny_mesh)
    ctx.build(["shop.orders"])
    assert ctx.read("quanta://shop/orders/orders@1").table.num_rows == 3
    assert ctx.read("quanta://shop/orders").table.num_rows == 4
    assert ctx.read("shop.orders", as_of=2).snapshot == {"shop.orders": 2}


def test_reading_a_missing_release_names_the_ones_that_exist(tiny_mesh: Path) -> None:
    ctx = MeshContext(tiny_mesh)
    ctx.build(["shop.orders"])
    with pytest.raises(NotFoundError) as info:
        ctx.query("SELECT * FROM shop.orders", as_of=7)
    assert "no release 7" in info.value.message
    assert "1..1" in (info.value.hint or "")
    with pytest.raises(NotFoundError, match="had no release at"):
        ctx.query("SELECT * FROM shop.orders", as_of="2001-01-01T00:00:00Z")


def test_release_number_as_of_is_refused_for_multi_product_queries(tiny_mesh: Path) -> None:
    ctx = MeshContext(tiny_mesh)
    ctx.build()
    with pytest.raises(QueryError, match="ambiguous"):
        ctx.query("SELECT * FROM shop.orders, shop.daily_totals", as_of=1)


def test_corrupted_data_file_is_detected_before_serving(tiny_mesh: Path) -> None:
    ctx = MeshContext(tiny_mesh)
    ctx.build(["shop.orders"])
    storage = ctx.storage("shop.orders")
    [path] = storage.data_files(storage.latest(), "orders")  # type: ignore[arg-type]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(StorageError) as info:
        ctx.query("SELECT sum(amount) FROM shop.orders")
    assert info.value.code == "integrity_failed"
    assert "SHA-256" in info.value.message


def test_recorded_at_is_the_release_time_and_event_time_is_kept(tiny_mesh: Path) -> None:
    ctx = MeshContext(tiny_mesh)
    [result] = ctx.build(["shop.orders"])
    assert result.release is not None
    rows = ctx.query("SELECT ordered_at, _recorded_at FROM shop.orders ORDER BY ordered_at")
    recorded = rows.table.column("_recorded_at").to_pylist()
    assert set(recorded) == {result.release.recorded_at}
    assert result.release.recorded_at <= result.release.committed_at
    assert rows.table.column("ordered_at")[0].as_py().isoformat() == "2026-11-01T10:00:00+00:00"


def test_unchanged_rows_keep_the_time_they_were_first_recorded(tiny_mesh: Path) -> None:
    ctx = MeshContext(tiny_mesh)
    [one] = ctx.build(["shop.orders"])
    csv = tiny_mesh / "domains/shop/orders/orders.csv"
    csv.write_text(csv.read_text().replace("o2,c2,20.00", "o2,c2,21.00") + NEW_ROW)
    [two] = ctx.build(["shop.orders"])
    assert one.release is not None and two.release is not None
    rows = ctx.query("SELECT order_id, _recorded_at FROM shop.orders ORDER BY order_id").table
    recorded = dict(zip(rows.column("order_id").to_pylist(),
                        rows.column("_recorded_at").to_pylist(), strict=True))
    assert recorded == {
        "o1": one.release.recorded_at, "o2": two.release.recorded_at,
        "o3": one.release.recorded_at, "o4": two.release.recorded_at,
    }
    # what was known at release 1 is still there, with its own system time
    old = ctx.query("SELECT amount FROM shop.orders WHERE order_id = 'o2'", as_of=1).table
    assert str(old.column(0)[0].as_py()) == "20.00"
