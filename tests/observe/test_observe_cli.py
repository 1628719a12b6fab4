"""``quanta slo`` and ``quanta usage``: tables, JSON, exit codes, warnings instead of
tracebacks, and the Daff demo as just built."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import cli
from quanta.context import MeshContext
from quanta.observe import slo_report, usage_report
from quanta.serve.http import create_app
from quanta.spec.mesh import load_mesh

SLOS = "slos: {freshness: 1d, completeness: 0.99}\n"


@pytest.fixture
def read(tiny_mesh: Path) -> Path:
    """The tiny mesh built, shop.orders readable by everyone, read by ana (twice), bob and
    the operator."""
    spec = tiny_mesh / "domains/shop/orders/dataproduct.yaml"
    spec.write_text(spec.read_text().replace(
        SLOS, "slos: {freshness: 1d, completeness: 0.99, availability: 0.99}\n"
        "policies: [{type: grant, to: ['*']}]\n"))
    ctx = MeshContext(tiny_mesh)
    assert all(r.ok for r in ctx.build())
    for who in ("ana", "ana", "bob"):
        ctx.query("SELECT * FROM shop.orders", principal=ctx.principal(who))
    ctx.query("SELECT count(*) FROM shop.daily_totals")
    ctx.close()
    return tiny_mesh


def test_slo_table_json_and_exit_codes(read: Path) -> None:
    shown = cli("slo", "--mesh", str(read))
    assert shown.exit_code == 0, shown.output
    assert "SLOs over the last 30d" in shown.stdout
    assert "shop.orders" in shown.stdout and "declares no SLOs" in shown.stdout
    assert "≤ 1d" in shown.stdout and "≥ 99%" in shown.stdout
    assert "100% of 3 reads" in shown.stdout and "no breaches in the window" in shown.stdout

    found = json.loads(cli("slo", "shop.orders", "--window", "7d", "--json", "--mesh",
                           str(read)).stdout)
    assert found["window_seconds"] == 7 * 86_400 and found["objective"] == 0.99
    [product] = found["products"]
    assert [s["slo"] for s in product["slos"]] == ["freshness", "completeness", "availability"]
    assert {s["status"] for s in product["slos"]} == {"met"}
    assert product["reads"] == 3 and product["runs"]["outcomes"] == {"released": 1}
    assert product["releases"][0]["rows"] == {"orders": 3}

    # --check fails when an SLO is breached: one release of three with a null customer
    spec = read / "domains/shop/orders/dataproduct.yaml"
    spec.write_text(spec.read_text().replace("{check: not_null, columns: [order_id, "
                                             "customer_id]}", "{check: not_null, columns: "
                                             "[order_id, customer_id], severity: warn}"))
    source = read / "domains/shop/orders/orders.csv"
    source.write_text(source.read_text() + "o9,,1.00,2026-11-03 10:00:00\n")
    assert cli("build", "shop.orders", "--mesh", str(read)).exit_code == 0
    assert cli("slo", "--mesh", str(read)).exit_code == 0
    checked = cli("slo", "shop.orders", "--check", "--mesh", str(read))
    assert checked.exit_code == 1
    assert "breaches" in checked.stdout and "release 2: completeness 75% < 99%" in (
        checked.stdout)
    assert "none (50x)" in checked.stdout  # one of two releases: 50 times the 1% budget


def test_slo_refuses_bad_options_with_a_hint(read: Path) -> None:
    unknown = cli("slo", "shop.nope", "--mesh", str(read))
    assert unknown.exit_code == 1 and "no product 'shop.nope'" in unknown.stderr
    window = cli("slo", "--window", "soon", "--json", "--mesh", str(read))
    assert window.exit_code == 1
    assert json.loads(window.stdout)["errors"][0]["code"] == "window_invalid"
    assert cli("slo", "--objective", "99", "--mesh", str(read)).exit_code == 1


def test_usage_counts_reads_and_consumers_per_day(read: Path) -> None:
    report = usage_report(load_mesh(read), days=3)
    orders = {p.product: p for p in report.products}["shop.orders"]
    assert (orders.reads, orders.consumers) == (3, 2)
    assert orders.principals == {"ana": 2, "bob": 1} and orders.outcomes == {"ok": 3}
    assert [d.reads for d in orders.days] == [0, 0, 3] and orders.days[-1].consumers == 2
    assert orders.days[-1].day == datetime.now(UTC).date()
    totals = {p.product: p for p in report.products}["shop.daily_totals"]
    assert (totals.reads, totals.consumers) == (1, 1)

    table = cli("usage", "--mesh", str(read))
    assert table.exit_code == 0, table.output
    assert "usage over the last 30 day(s)" in table.stdout and "shop.customers_py" in table.stdout
    one = cli("usage", "shop.orders", "--days", "2", "--mesh", str(read))
    assert one.exit_code == 0, one.output
    assert "3 read(s) by 2 consumer(s)" in one.stdout and "ana (2), bob (1)" in one.stdout
    assert "no reads on the other 1 day(s)" in one.stdout
    as_json = json.loads(cli("usage", "shop.orders", "--json", "--mesh", str(read)).stdout)
    [product] = as_json["products"]
    assert product["consumers"] == 2 and len(product["days"]) == 30
    assert product["days"][-1] == {"day": datetime.now(UTC).date().isoformat(), "reads": 3,
                                   "consumers": 2, "denials": 0}
    assert product["queries_per_day"] == 0.1 and product["denials"] == 0
    assert cli("usage", "--days", "0", "--mesh", str(read)).exit_code == 2


def test_a_damaged_audit_line_or_run_record_is_a_warning_not_a_traceback(read: Path) -> None:
    audit = read / ".quanta/audit/audit.ndjson"
    lines = audit.read_text().splitlines(keepends=True)
    audit.write_text("".join(lines[:1]) + '{"time": "yesterday", "snapshot"\n' + "".join(
        lines[1:]) + "\x00garbage\n")
    (read / ".quanta/runs/20260101T000000000000Z-shop.orders-abcdef.json").write_text("[]")

    usage = cli("usage", "--mesh", str(read))
    assert usage.exit_code == 0, usage.output
    assert "2 line(s) of the audit log" in usage.stderr and "(line 2, " in usage.stderr
    assert "quanta audit verify" in usage.stderr and "Traceback" not in usage.output
    slo = cli("slo", "shop.orders", "--json", "--mesh", str(read))
    assert slo.exit_code == 0, slo.output
    warnings = json.loads(slo.stdout)["warnings"]
    assert any("run record 20260101T000000000000Z-shop.orders-abcdef.json skipped" in w
               for w in warnings)
    assert any("are not audit records" in w for w in warnings)
    # the damaged lines are skipped; every read still counts
    assert json.loads(slo.stdout)["products"][0]["reads"] == 3


def test_the_demo_shows_slos_and_usage_in_the_cli_and_the_api(demo_mesh: Path,
                                                               tmp_path: Path) -> None:
    # a copy without the audit log other tests wrote to: the demo as just built
    mesh = tmp_path / "daff"
    shutil.copytree(demo_mesh, mesh, ignore=shutil.ignore_patterns("*.tmp", "audit"))
    built = max(r.committed_at for key in load_mesh(mesh).products
                for r in MeshContext(mesh).releases(key))
    report = slo_report(load_mesh(mesh), now=built + timedelta(minutes=1))
    slos = {(s.product, s.slo): s for p in report.products for s in p.slos}
    assert all(s.status == "met" for (_, name), s in slos.items() if name == "freshness")
    assert slos["listening.play_events", "interval_of_change"].note == (
        "1 release so far; an interval needs 2")
    assert slos["listening.play_events", "availability"].note == "no reads in the window yet"
    assert slos["listening.play_events", "completeness"].status == "met"
    assert slos["artists.artist_popularity", "check_pass_rate"].status == "met"
    # the demo's sources are an extract ending on the 1st of the month: plays are not timely
    assert slos["listening.play_events", "timeliness"].breaches[0].cause.startswith(
        "release 1: its newest event (")
    assert not report.warnings

    shown = cli("slo", "--mesh", str(mesh))
    assert shown.exit_code == 0, shown.output
    for text in ("listening.play_events", "royalties.monthly_statements", "freshness",
                 "no reads in the window yet", "met"):
        assert text in shown.stdout

    ctx = MeshContext(mesh)
    token = ctx.sidecar.tokens.create("ana", ["analysts"])[0]
    with TestClient(create_app(ctx.sidecar)) as client:
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(2):
            answer = client.post("/api/v1/query", headers=headers, json={
                "sql": "SELECT device, count(*) FROM listening.play_events GROUP BY ALL"})
            assert answer.status_code == 200, answer.text
        served = client.get("/api/v1/products/listening/play_events/slo", headers=headers)
    ctx.close()
    assert served.status_code == 200, served.text
    document = served.json()
    assert document["product"] == "listening.play_events" and document["reads"] == 2
    availability = {s["slo"]: s for s in document["slos"]}["availability"]
    assert availability["attainment"] == 1.0 and availability["total"] == 2
    usage = cli("usage", "listening.play_events", "--mesh", str(mesh))
    assert usage.exit_code == 0 and "2 read(s) by 1 consumer(s)" in usage.stdout
