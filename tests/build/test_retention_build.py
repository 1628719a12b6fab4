"""Build-time retention: a product declaring retention never releases rows whose event time
is before the cutoff, and its checks, row counts and profile describe what is released."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import copy_fixture
from quanta.build.runner import Builder
from quanta.context import MeshContext
from quanta.spec.mesh import load_mesh
from quanta.storage import ProductStorage, Release

NOW = datetime.now(UTC)


def days_ago(days: int) -> datetime:
    return NOW - timedelta(days=days)


def stamp(days: int) -> str:
    return days_ago(days).strftime("%Y-%m-%d %H:%M:%S")


@pytest.fixture
def mesh(tmp_path: Path) -> Path:
    """The tiny mesh with orders from 500, 399, 100 and 10 days ago and one without a time."""
    root = copy_fixture("tiny", tmp_path)
    shop = root / "domains/shop"
    (shop / "orders/orders.csv").write_text(
        "order_id,customer_id,amount,ordered_at\n"
        f"o1,c1,10.50,{stamp(500)}\no2,c2,20.00,{stamp(100)}\no3,c1,5.25,{stamp(10)}\n"
        f"o4,c3,1.00,{stamp(10)}\no5,c4,2.00,\no6,c5,3.00,{stamp(399)}\n")
    return root


def declare(root: Path, product: str, retention: str) -> None:
    spec = root / "domains/shop" / product / "dataproduct.yaml"
    spec.write_text(spec.read_text() + f"retention: {retention}\n")


def released(root: Path, product: str, port: str) -> tuple[Release, list[dict[str, object]]]:
    """The latest release of ``product`` and its port's rows, read from the Parquet files."""
    storage = ProductStorage(root / ".quanta", f"shop.{product}")
    release = storage.latest()
    assert release is not None
    rows: list[dict[str, object]] = []
    for file in storage.data_files(release, port):
        rows += pq.read_table(file).to_pylist()
    return release, rows


def test_a_build_releases_only_rows_inside_the_retention(mesh: Path) -> None:
    declare(mesh, "orders", "400d")
    declare(mesh, "daily_totals", "30d")  # a date event time
    declare(mesh, "customers_py", "1d")  # a port without event_time: left alone

    results = MeshContext(mesh).build()  # what quanta build does: retention holds by default

    assert all(r.ok for r in results), [r.error for r in results]
    release, rows = released(mesh, "orders", "orders")
    assert sorted(str(r["order_id"]) for r in rows) == ["o2", "o3", "o4", "o5", "o6"]
    assert release.retention_cutoff == release.recorded_at - timedelta(days=400)
    # counts, checks and profile describe the released rows, not the transform's
    assert release.ports["orders"].rows == 5
    run = next(r.run for r in results if r.product == "shop.orders")
    assert run.rows == {"orders": 5} and "retention" in run.stages
    assert {c.check: c.total_rows for c in release.checks} == {
        "not_null": 5, "unique": 5, "range": 5}
    assert release.profile["orders"]["ordered_at"]["null_share"] == 0.2
    oldest = datetime.fromisoformat(str(release.profile["orders"]["ordered_at"]["min"]))
    assert oldest.replace(tzinfo=UTC) >= release.retention_cutoff

    totals_release, totals = released(mesh, "daily_totals", "totals")
    assert sorted((r["day"] for r in totals), key=str) == [days_ago(10).date(), None]
    assert totals_release.ports["totals"].rows == 2

    customers_release, customers = released(mesh, "customers_py", "customers")
    assert {r["customer_id"]: r["orders"] for r in customers} == {
        "c1": 1, "c2": 1, "c3": 1, "c4": 1, "c5": 1}  # o1 of c1 left out upstream
    assert customers_release.retention_cutoff is not None


def test_products_without_retention_keep_every_row(mesh: Path) -> None:
    results = Builder(load_mesh(mesh), enforce_retention=True).build(["shop.orders"])

    assert results[0].ok
    release, rows = released(mesh, "orders", "orders")
    assert len(rows) == release.ports["orders"].rows == 6
    assert release.retention_cutoff is None and "retention" not in results[0].run.stages


def test_a_date_counts_from_its_first_instant(mesh: Path) -> None:
    """The orders of 10 days ago fall on a day whose 00:00 UTC is before now - 10 days."""
    declare(mesh, "daily_totals", "10d")
    Builder(load_mesh(mesh), enforce_retention=True).build()

    release, totals = released(mesh, "daily_totals", "totals")
    assert release.retention_cutoff is not None
    assert [r["day"] for r in totals] == [None]  # only the orders without a time are left


def test_manifests_written_before_retention_still_load(mesh: Path) -> None:
    Builder(load_mesh(mesh)).build(["shop.orders"])
    storage = ProductStorage(mesh / ".quanta", "shop.orders")
    document = json.loads((storage.release_folder / "000001.json").read_text())
    del document["retention_cutoff"], document["retentions"]

    old = Release.model_validate(document)

    assert old.retention_cutoff is None and old.retentions == []
