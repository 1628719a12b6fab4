"""``quanta vacuum``: old releases expire under each product's history rule, their files go,
no file a kept release needs is touched, a killed vacuum is finished by the next, and reads of
an expired release get a clear error naming the oldest one available, in every form."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

import quanta
from conftest import cli, copy_fixture
from quanta.catalog.document import discovery_document
from quanta.context import MeshContext
from quanta.control.grants import grant
from quanta.control.history import plan_history, vacuum
from quanta.serve.http import create_app
from quanta.sidecar import Principal
from quanta.sidecar.access import AuthorizationError
from quanta.storage.history import ReleaseExpiredError
from quanta.storage.locks import BuildLock

ORDERS = "shop.orders"


def _spec(mesh: Path, product: str) -> Path:
    return mesh / "domains" / "shop" / product / "dataproduct.yaml"


def make_mesh(tmp_path: Path, history: str | None = "history: {keep: 2}",
              pins: bool = False, mesh_default: str | None = None) -> Path:
    mesh = copy_fixture("tiny", tmp_path)
    if history:
        with _spec(mesh, "orders").open("a") as spec:
            spec.write(history + "\n")
    if pins:  # daily_totals pins release 1 (release:), customers_py release 2 (an address @2)
        for product, old, new in (
                ("daily_totals", "product: quanta://shop/orders/orders}",
                 "product: quanta://shop/orders/orders, release: 1}"),
                ("customers_py", "product: shop.orders}", "product: quanta://shop/orders@2}")):
            file = _spec(mesh, product)
            file.write_text(file.read_text().replace(old, new))
    if mesh_default:
        with (mesh / "mesh.yaml").open("a") as spec:
            spec.write(f"storage: {{history: {mesh_default}}}\n")
    return mesh


def release_orders(ctx: MeshContext, count: int) -> None:
    """Make ``count`` releases of shop.orders, each with one more order."""
    csv = ctx.root / "domains" / "shop" / "orders" / "orders.csv"
    for _ in range(count):
        number = len(ctx.releases(ORDERS)) + 1
        if number > 1:
            with csv.open("a") as rows:
                rows.write(f"n{number},c9,1.00,2026-11-03 10:00:00\n")
        [built] = ctx.build([ORDERS])
        assert built.ok and built.release is not None, built.error


def port_files(ctx: MeshContext) -> set[str]:
    return {f.name for f in ctx.storage(ORDERS).port_path("orders").glob("*.parquet")}


def release_files(ctx: MeshContext, number: int) -> set[str]:
    return {f.path for f in ctx.storage(ORDERS).release(number).ports["orders"].files}


def read(ctx: MeshContext, number: int) -> pa.Table:
    table = ctx.read(f"quanta://shop/orders@{number}").table
    return table.sort_by("order_id")


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[MeshContext]:
    context = MeshContext(make_mesh(tmp_path))
    release_orders(context, 5)
    yield context
    context.close()


def test_keep_n_expires_the_rest_and_reclaims_only_their_files(ctx: MeshContext) -> None:
    before = {n: read(ctx, n) for n in (4, 5)}
    needed = release_files(ctx, 4) | release_files(ctx, 5)
    doomed = set().union(*(release_files(ctx, n) for n in (1, 2, 3)))
    size = sum((ctx.storage(ORDERS).port_path("orders") / f).stat().st_size for f in doomed)
    all_files = port_files(ctx)

    dry = vacuum(ctx.sidecar, [ORDERS], dry_run=True)
    [planned] = dry.products
    assert planned.expired == [1, 2, 3] and planned.oldest_available == 4
    assert (dry.files_deleted, dry.bytes_reclaimed) == (3, size)
    assert port_files(ctx) == all_files and ctx.storage(ORDERS).release_numbers() == [1, 2, 3,
                                                                                      4, 5]

    report = vacuum(ctx.sidecar, [ORDERS])
    [done] = report.products
    assert done.expired == [1, 2, 3] and done.rule == "keep 2 newest"
    assert done.kept == {5: "the latest; one of the 2 newest", 4: "one of the 2 newest"}
    assert (report.files_deleted, report.bytes_reclaimed) == (3, size)
    assert port_files(ctx) == needed  # nothing a kept release needs was touched
    assert ctx.storage(ORDERS).release_numbers() == [4, 5]
    for number, table in before.items():  # every kept release reads as before
        assert read(ctx, number).equals(table)
    assert [t.release for t in ctx.storage(ORDERS).expired_releases()] == [1, 2, 3]
    assert all(t.reclaimed_at is not None for t in ctx.storage(ORDERS).expired_releases())

    again = vacuum(ctx.sidecar, [ORDERS])  # idempotent
    assert again.products[0].expired == [] and again.files_deleted == 0
    assert port_files(ctx) == needed

    stored = json.loads((ctx.mesh.storage_root / "vacuum" / f"{report.id}.json").read_text())
    assert stored["files_deleted"] == 3 and stored["products"][0]["expired"] == [1, 2, 3]
    ctx.sidecar.audit.close()
    records = [json.loads(line) for line in ctx.sidecar.audit.file.read_text().splitlines()]
    [audited, _] = [r for r in records if r.get("action") == "history.vacuum"]
    assert audited["expired"] == {ORDERS: [1, 2, 3]} and audited["bytes"] == size

    history = discovery_document(ctx.mesh, ORDERS)["history"]
    assert history == {"rule": "keep 2 newest", "keep": 2, "max_age": None,
                       "oldest_available": 4, "expired": 3, "last_expired": 3}


def test_pinned_releases_stay_and_age_counts_from_supersession(tmp_path: Path) -> None:
    context = MeshContext(make_mesh(tmp_path, "history: {max_age: 1d}", pins=True,
                                    mesh_default="{keep: 1}"))
    release_orders(context, 5)
    assert plan_history(context.mesh, ORDERS).expired == []  # all superseded just now
    later = datetime.now(UTC) + timedelta(days=3)
    chosen = plan_history(context.mesh, ORDERS, later)
    assert chosen.kept[1] == "pinned by shop.daily_totals"
    assert chosen.kept[2] == "pinned by shop.customers_py"
    report = vacuum(context.sidecar, now=later)
    expired = {p.product: p.expired for p in report.products}
    assert expired == {ORDERS: [3, 4], "shop.daily_totals": [], "shop.customers_py": []}
    assert context.storage(ORDERS).release_numbers() == [1, 2, 5]
    assert read(context, 1).num_rows == 3 and read(context, 2).num_rows == 4
    # the pinning products still build from their pins
    results = {r.product: r for r in context.build(["shop.daily_totals", "shop.customers_py"])}
    assert all(r.ok for r in results.values()), [r.error for r in results.values()]
    context.close()


def test_the_mesh_default_rule_applies_to_products_without_their_own(tmp_path: Path) -> None:
    context = MeshContext(make_mesh(tmp_path, None, mesh_default="{keep: 3}"))
    release_orders(context, 4)
    assert plan_history(context.mesh, ORDERS).expired == [1]
    context = MeshContext(make_mesh(tmp_path / "own", "history: {}", mesh_default="{keep: 1}"))
    release_orders(context, 3)
    assert plan_history(context.mesh, ORDERS).expired == []  # {}: every release is kept


def test_a_killed_vacuum_is_finished_by_the_next(ctx: MeshContext,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    before = {n: read(ctx, n) for n in (4, 5)}
    needed = release_files(ctx, 4) | release_files(ctx, 5)
    real = Path.unlink
    deleted: list[Path] = []

    def killed_after_one(self: Path, missing_ok: bool = False) -> None:
        if self.suffix == ".parquet":
            if deleted:
                raise KeyboardInterrupt  # the process dies here
            deleted.append(self)
        real(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        vacuum(ctx.sidecar, [ORDERS])
    monkeypatch.undo()
    # half done: tombstones are there, so reads of 1..3 already say they expired
    assert ctx.storage(ORDERS).release_numbers() == [4, 5]
    with pytest.raises(ReleaseExpiredError):
        read(ctx, 2)
    assert len(port_files(ctx) - needed) == 2
    assert not all(t.reclaimed_at for t in ctx.storage(ORDERS).expired_releases())

    report = vacuum(ctx.sidecar, [ORDERS])
    assert report.products[0].expired == [] and report.files_deleted == 2
    assert port_files(ctx) == needed
    assert all(t.reclaimed_at for t in ctx.storage(ORDERS).expired_releases())
    for number, table in before.items():
        assert read(ctx, number).equals(table)


def test_a_vacuum_waits_for_no_build_and_only_owners_vacuum(ctx: MeshContext) -> None:
    with BuildLock(ctx.mesh.storage_root, ORDERS) as lock:
        assert lock.acquire("build")
        [skipped] = vacuum(ctx.sidecar, [ORDERS]).products
    assert skipped.skipped and "build holds its lock" in skipped.skipped
    assert ctx.storage(ORDERS).release_numbers() == [1, 2, 3, 4, 5]
    with pytest.raises(AuthorizationError, match=r"may not vacuum shop\.orders"):
        vacuum(ctx.sidecar, [ORDERS], Principal("ana"))
    [done] = vacuum(ctx.sidecar, [ORDERS], Principal("olga", frozenset({"shop"}))).products
    assert done.expired == [1, 2, 3]


def test_reads_of_an_expired_release_name_the_oldest_available(ctx: MeshContext) -> None:
    committed = {r.release: r.committed_at for r in ctx.releases(ORDERS)}
    vacuum(ctx.sidecar, [ORDERS])

    local = quanta.connect(ctx.root)
    with pytest.raises(ReleaseExpiredError, match=r"shop\.orders release 2 expired on .*the "
                       r"oldest available is release 4") as info:
        local.read("quanta://shop/orders@2")
    assert info.value.code == "release_expired"
    with pytest.raises(ReleaseExpiredError, match="release 1 expired"):
        local.sql("SELECT count(*) FROM shop.orders", as_of=1)
    between = committed[2] + (committed[3] - committed[2]) / 2
    with pytest.raises(ReleaseExpiredError, match=r"is release 2, which expired.*release 4"):
        local.sql("SELECT count(*) FROM shop.orders", as_of=between.isoformat())
    assert local.read("quanta://shop/orders@4").num_rows == 6
    local.close()

    grant(ctx.sidecar, ctx.sidecar.operator(), "ana", "quanta://shop/orders")
    token = ctx.sidecar.tokens.create("ana")[0]
    with TestClient(create_app(ctx.sidecar)) as http:
        answer = http.post("/api/v1/query", json={"sql": "SELECT * FROM shop.orders",
                                                  "as_of": 3},
                           headers={"Authorization": f"Bearer {token}"})
        error = answer.json()["error"]
        # 404 as every release that is not there (410 is for retired products); the code says
        # why
        assert answer.status_code == 404 and error["code"] == "release_expired"
        assert "the oldest available is release 4" in error["message"]
        assert "quanta versions shop.orders" in error["hint"]

    mesh = str(ctx.root)
    refused = cli("query", "SELECT count(*) FROM shop.orders", "--as-of", "1", "--mesh", mesh)
    assert refused.exit_code == 1 and "the oldest available is release 4" in refused.output
    listed = cli("versions", ORDERS, "--mesh", mesh)
    assert listed.exit_code == 0 and "3 older release(s) expired (the last: 3" in listed.stdout


def test_the_cli(tmp_path: Path) -> None:
    context = MeshContext(make_mesh(tmp_path))
    release_orders(context, 4)
    mesh = str(context.root)
    dry = cli("vacuum", "--dry-run", "--mesh", mesh)
    assert dry.exit_code == 0, dry.output
    assert "dry run" in dry.stdout and "1-2" in dry.stdout
    assert "would reclaim 2 file(s)" in dry.stdout
    done = cli("vacuum", ORDERS, "--mesh", mesh)
    assert done.exit_code == 0 and "reclaimed 2 file(s)" in done.stdout
    assert "2 release(s) expired" in done.stdout
    as_json = cli("vacuum", ORDERS, "--json", "--mesh", mesh)
    assert json.loads(as_json.stdout)["files_deleted"] == 0
    # the catalog's document says what is left
    assert context.discovery(ORDERS)["history"]["oldest_available"] == 3
    context.close()


def test_files_left_by_killed_builds_are_reclaimed(ctx: MeshContext) -> None:
    """A build killed after writing data files but before its release leaves files no release
    lists; vacuum removes them, and nothing a release or the current Delta version needs."""
    folder = ctx.storage(ORDERS).port_path("orders")
    needed = set().union(*(release_files(ctx, n) for n in (1, 2, 3, 4, 5)))
    delta = ctx.storage(ORDERS).delta_files("orders")
    assert delta and delta <= port_files(ctx)
    some = folder / sorted(needed)[0]
    (folder / "part-killed-1.parquet").write_bytes(some.read_bytes())
    (folder / "part-killed-2.parquet").write_bytes(b"")  # killed while opening the file
    before = {n: read(ctx, n) for n in (4, 5)}
    dry = vacuum(ctx.sidecar, [ORDERS], dry_run=True)
    assert dry.products[0].orphans == 2 and "part-killed-1.parquet" in port_files(ctx)
    done = vacuum(ctx.sidecar, [ORDERS])
    assert done.products[0].orphans == 2
    left = port_files(ctx)
    assert "part-killed-1.parquet" not in left and "part-killed-2.parquet" not in left
    assert release_files(ctx, 4) | release_files(ctx, 5) | delta <= left
    assert {n: read(ctx, n) for n in (4, 5)} == before
