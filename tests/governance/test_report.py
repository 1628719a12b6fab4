"""The governance report: compliance per product and domain, policies in force, grants due,
pending access requests, missing SLOs, unprotected PII and fitness functions over time.

The spec scenario is the tiny mesh plus a crm.contacts product that breaks a blocking standard
(a field named 'order'), leaves one PII field unprotected and one field undescribed; the
access scenario is the secure mesh with real grants and access requests.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from conftest import Served, cli, copy_fixture
from quanta.address import Address
from quanta.context import MeshContext
from quanta.governance import FitnessHistory, GovernanceReport
from quanta.sidecar import Principal

CONTACTS = """\
apiVersion: quanta/v1
name: contacts
domain: crm
kind: source-aligned
version: 1.0.0
owner: {team: crm, email: crm@example.com}
description: Contacts of the shop's customers.
inputs:
  - {name: raw, type: file, path: contacts.csv}
transform: {type: sql, sql: "SELECT * FROM raw"}
outputs:
  - name: contacts
    event_time: added_at
    primary_key: [contact_id]
    fields:
      - {name: contact_id, type: string, description: Contact id, classification: internal}
      - {name: phone, type: string, description: Phone number, classification: pii}
      - {name: email, type: string, description: "  ", classification: pii}
      - {name: order, type: string, description: Last order, classification: internal}
      - {name: added_at, type: timestamp, description: When added, classification: internal}
policies:
  - {type: mask, columns: [email], method: redact}
slos: {interval_of_change: 1d}
"""
SHOP = ["shop.customers_py", "shop.daily_totals", "shop.orders"]
LISTENERS = "quanta://people/listeners"
CONSENTS = "quanta://people/consents"
OWNER = Principal("olga", frozenset({"people"}))  # the owning team of the people products


@pytest.fixture
def mesh(tmp_path: Path) -> Path:
    """tiny + crm.contacts; shop.orders and shop.daily_totals built, the others not."""
    root = copy_fixture("tiny", tmp_path)
    folder = root / "domains/crm/contacts"
    folder.mkdir(parents=True)
    (folder / "dataproduct.yaml").write_text(CONTACTS)
    (folder / "contacts.csv").write_text(
        "contact_id,phone,email,order,added_at\nk1,555,a@b.example,o1,2026-11-01 10:00:00\n")
    totals = root / "domains/shop/daily_totals/dataproduct.yaml"  # a warn check that fails
    totals.write_text(totals.read_text().replace(
        "  - {check: row_count, min: 1}",
        "  - {check: row_count, min: 1}\n  - {check: row_count, min: 1000, severity: warn}"))
    results = MeshContext(root).build(["shop.orders", "shop.daily_totals"])
    assert [r.ok for r in results] == [True, True]
    return root


def fitness(report: GovernanceReport) -> dict[str, tuple[float | None, float | None]]:
    return {f.name: (f.value, f.previous) for f in report.fitness}


def history_lines(root: Path) -> list[str]:
    file = root / ".quanta/governance/fitness.ndjson"
    return file.read_text().splitlines() if file.exists() else []


def test_each_section_lists_exactly_what_the_mesh_holds(mesh: Path) -> None:
    ctx = MeshContext(mesh)
    report = ctx.governance_report()

    findings = ctx.standards().findings
    assert [p.product for p in report.products] == ["crm.contacts", *SHOP]
    for p in report.products:
        assert list(p.findings) == [f for f in findings if f.product == p.product]
        assert p.warnings == sum(1 for f in p.findings if f.severity == "warn")
    contacts = report.products[0]
    assert not contacts.complies and contacts.errors == 1
    assert [f.code for f in contacts.findings if f.severity == "error"] == ["naming-convention"]
    assert all(p.complies and p.errors == 0 for p in report.products[1:])
    assert [(d.domain, d.products, d.complying, d.errors) for d in report.domains] == [
        ("crm", 1, 0, 1), ("shop", 3, 3, 0)]
    assert report.domains[1].warnings == sum(p.warnings for p in report.products[1:])

    assert report.policies == {"crm.contacts": ("mask columns email (redact)",),
                               **{key: () for key in SHOP}}
    assert report.slos_missing == ("shop.customers_py", "shop.daily_totals")
    assert [(f.code, f.product) for f in report.pii_unprotected] == [
        ("pii-protected", "crm.contacts")]
    assert "'phone'" in report.pii_unprotected[0].message
    assert [(r.product, r.release, r.passing) for r in report.releases] == [
        ("crm.contacts", None, False), ("shop.customers_py", None, False),
        ("shop.daily_totals", 1, True), ("shop.orders", 1, True)]  # a failed warn check passes
    assert report.grants_expiring == report.grants_expired == report.pending_requests == ()

    # 14 fields, 11 described (customers_py's two and contacts.email are not); 4 PII fields
    assert fitness(report) == {
        "standards_met": (0.75, None), "slos_declared": (0.5, None),
        "fields_documented": (round(11 / 14, 4), None), "pii_protected": (0.75, None),
        "access_approval_time": (None, None), "releases_passing": (0.5, None)}
    assert {f.name: f.detail for f in report.fitness}["pii_protected"] == "3 of 4 PII fields"
    assert report.recorded and report.snapshots == 1 and report.warnings == ()


def test_fitness_history_grows_one_line_per_report_and_shows_the_change(mesh: Path) -> None:
    first = MeshContext(mesh).governance_report()
    assert len(history_lines(mesh)) == 1 and first.previous_at is None

    totals = mesh / "domains/shop/daily_totals/dataproduct.yaml"
    totals.write_text(totals.read_text() + "slos: {freshness: 1d}\n")
    second = MeshContext(mesh).governance_report()
    lines = history_lines(mesh)
    assert len(lines) == 2 and second.snapshots == 2
    assert second.previous_at == first.generated_at
    changes = {f.name: f.change for f in second.fitness}
    assert fitness(second)["slos_declared"] == (0.75, 0.5) and changes["slos_declared"] == 0.25
    assert changes["standards_met"] == 0.0 and changes["access_approval_time"] is None
    snapshot = json.loads(lines[1])
    assert snapshot["time"] == second.generated_at.isoformat()
    assert snapshot["fitness"]["slos_declared"] == 0.75

    dry = MeshContext(mesh).governance_report(record=False)
    assert len(history_lines(mesh)) == 2 and not dry.recorded and dry.snapshots == 2
    assert fitness(dry)["slos_declared"] == (0.75, 0.75)


def test_grants_and_access_requests(tmp_path: Path) -> None:
    ctx = MeshContext(copy_fixture("secure", tmp_path))
    grants = ctx.sidecar.grants
    soon = grants.grant("carol", Address.parse(LISTENERS), None, timedelta(days=10))
    grants.grant("dora", Address.parse(LISTENERS), "analytics", timedelta(days=45))
    grants.grant("group:auditors", Address.parse(CONSENTS))  # never expires
    gone = grants.grant("frank", Address.parse(f"{LISTENERS}/listeners"), None,
                        timedelta(seconds=1))
    requests = ctx.access_requests()
    waiting = requests.request(Principal("bob"), LISTENERS, None, "churn analysis")
    asked = requests.request(Principal("dave"), CONSENTS, "audit", "consent audit")
    refused = requests.request(Principal("erin"), CONSENTS, None, "curiosity")
    time.sleep(1.1)
    approved = requests.approve(OWNER, asked.id, timedelta(days=7), "for the audit")
    denied = requests.deny(OWNER, refused.id, "no purpose given")

    report = ctx.governance_report()
    assert [(g.id, g.subject) for g in report.grants_expiring] == [
        (approved.grant_id, "dave"), (soon.id, "carol")]
    assert timedelta(days=6) < report.grants_expiring[0].left <= timedelta(days=7)
    assert [(g.id, g.subject, g.port) for g in report.grants_expired] == [
        (gone.id, "frank", "listeners")]
    assert [(r.id, r.requester, r.product) for r in report.pending_requests] == [
        (waiting.id, "bob", "people.listeners")]
    assert timedelta(seconds=1) <= report.pending_requests[0].age < timedelta(minutes=5)

    decided = [(approved, asked), (denied, refused)]
    spans = [_span(done.requested_at, done.decided_at) for done, _ in decided]
    assert fitness(report)["access_approval_time"] == (round(sum(spans) / 2, 3), None)
    assert {f.name: f.detail for f in report.fitness}["access_approval_time"] == (
        "2 decided request(s)")
    assert report.policies["people.plays"][0] == "* may read"
    assert report.policies["(global)"] == (
        "federation.yaml#1: everyone may not read for resale: listener data is never sold",
        "federation.yaml#2: group:auditors may read for audit",
        "regions (Python, regions.py:8)")

    document = report.to_dict(principals=False)
    text = json.dumps(document)
    for person in ("carol", "dave", "frank", "bob"):
        assert f'"{person}"' not in text
    assert document["grants"]["expired"][0]["subject"] is None
    assert document["access_requests"]["pending"][0]["requester"] is None
    assert "churn analysis" not in json.dumps(report.to_dict())  # reasons are never shown


def _span(start: str, end: str | None) -> float:
    from datetime import datetime

    assert end is not None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def test_the_cli_report_json_and_dry(mesh: Path) -> None:
    shown = cli("governance", "report", "--mesh", str(mesh))
    assert shown.exit_code == 0, shown.output
    for section in ("standards compliance", "by domain", "policies in force",
                    "grants expiring within 30 days", "grants expired",
                    "pending access requests", "products missing SLOs",
                    "PII without protection", "latest releases", "fitness functions"):
        assert section in shown.stdout
    assert "mask columns email (redact)" in shown.stdout
    assert "naming-convention" in shown.stdout and "75.0%" in shown.stdout
    assert "fitness snapshot 1 recorded" in shown.stdout

    totals = mesh / "domains/shop/daily_totals/dataproduct.yaml"
    totals.write_text(totals.read_text() + "slos: {freshness: 1d}\n")
    raw = cli("governance", "report", "--json", "--dry", "--mesh", str(mesh))
    assert raw.exit_code == 0, raw.output
    document = json.loads(raw.stdout)
    assert set(document) == {
        "mesh", "generated_at", "compliance", "policies", "grants", "access_requests",
        "slos_missing", "pii_unprotected", "releases", "fitness", "history", "warnings",
        "problems"}
    assert document["history"] == {"snapshots": 1, "recorded": False,
                                   "previous_at": document["history"]["previous_at"]}
    assert set(document["compliance"]) == {"products", "domains"}
    assert document["compliance"]["products"][0]["findings"][0]["file"].endswith(
        "dataproduct.yaml")
    slos = next(f for f in document["fitness"] if f["name"] == "slos_declared")
    assert slos == {"name": "slos_declared", "unit": "share", "value": 0.75, "previous": 0.5,
                    "change": 0.25, "detail": "3 of 4 products",
                    "description": "products promising freshness or interval_of_change"}
    assert document["slos_missing"] == ["shop.customers_py"]
    assert len(history_lines(mesh)) == 1

    trend = cli("governance", "report", "--mesh", str(mesh))
    assert "+25.0 pts" in trend.stdout and "fitness snapshot 2 recorded" in trend.stdout


def test_a_corrupt_history_line_is_skipped_with_a_warning(mesh: Path) -> None:
    MeshContext(mesh).governance_report()
    file = FitnessHistory(mesh / ".quanta").file
    good = file.read_text()
    file.write_bytes(good.encode() + b'not json{\n{"time": "2026-01-01T00:00:00+00:00", '
                     b'"fitness": {"slos_declared": "high"}}\n\xff\xfe\n{"torn": ')

    shown = cli("governance", "report", "--mesh", str(mesh))
    assert shown.exit_code == 0, shown.output
    assert "Traceback" not in shown.output
    for line in (2, 3, 4, 5):
        assert f"fitness.ndjson line {line} is not a fitness snapshot" in shown.stdout
    report = MeshContext(mesh).governance_report(record=False)
    assert len(report.warnings) == 4
    assert fitness(report)["slos_declared"] == (0.5, 0.5)  # the appended line is whole
    assert report.snapshots == 2
    assert file.read_bytes().splitlines()[-1].startswith(b'{"time":')


def test_the_http_endpoint(served: Served) -> None:
    ctx = served.context
    ctx.sidecar.grants.grant("zed_reader", Address.parse(CONSENTS), None, timedelta(days=3))
    ctx.sidecar.grants.grant("group:gov_auditors", Address.parse(CONSENTS), None,
                             timedelta(days=3))
    asked = ctx.access_requests().request(Principal("zed_asker"), CONSENTS, "gov",
                                          "a governance test")
    with served.client("bob") as client:
        answer = client.get("/api/v1/governance/report")
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert document["mesh"] == "secure"
    assert [p["product"] for p in document["compliance"]["products"]] == [
        "people.consents", "people.listeners", "people.plays"]
    subjects = [g["subject"] for g in document["grants"]["expiring"]]
    assert "group:gov_auditors" in subjects and None in subjects
    assert asked.id in [r["id"] for r in document["access_requests"]["pending"]]
    assert "zed_reader" not in answer.text and "zed_asker" not in answer.text
    assert not document["history"]["recorded"]
    assert not FitnessHistory(served.mesh / ".quanta").file.exists()

    with served.client(None) as anonymous:
        refused = anonymous.get("/api/v1/governance/report")
    assert refused.status_code == 401
    assert httpx.get(f"{served.http}/api/v1/governance/report",
                     headers={"Authorization": "Bearer qnt_bad_token"}).status_code == 401
