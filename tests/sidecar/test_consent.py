"""Consent: for a purpose that needs it, only rows of subjects who consented are served; a
withdrawn consent holds for old releases too; every mode enforces it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pyarrow.flight as flight
import pytest

from conftest import Served, cli, copy_fixture
from quanta.context import MeshContext
from quanta.errors import QuantaError
from quanta.sidecar import Principal
from quanta.spec.mesh import load_mesh

SQL = "SELECT play_id FROM people.plays ORDER BY play_id"
EVERY_PLAY = ["p1", "p2", "p3", "p4", "p5"]
CONSENTED = ["p1", "p2", "p4", "p5"]  # l2 (p3) did not agree to marketing


@pytest.fixture
def ctx(tmp_path: Path) -> MeshContext:
    context = MeshContext(copy_fixture("secure", tmp_path))
    assert all(r.ok for r in context.build())
    return context


def plays(ctx: MeshContext, who: Principal, purpose: str | None, as_of: int | None = None
          ) -> list[str]:
    table = ctx.query(SQL, as_of, principal=who, purpose=purpose).table
    return table.column("play_id").to_pylist()


def test_rows_need_consent_only_for_the_purposes_named(ctx: MeshContext) -> None:
    ana = Principal("ana")
    assert plays(ctx, ana, "marketing") == CONSENTED
    assert plays(ctx, ana, "research") == EVERY_PLAY
    assert plays(ctx, ana, None) == EVERY_PLAY
    assert plays(ctx, Principal("pia", frozenset({"privacy"})), "marketing") == EVERY_PLAY
    counted = ctx.query("SELECT count(*) AS n, count(DISTINCT listener_id) AS l "
                        "FROM people.plays", principal=ana, purpose="marketing").table
    assert counted.to_pylist() == [{"n": 4, "l": 3}]  # no aggregate sees around it


def test_a_withdrawn_consent_holds_for_old_releases(ctx: MeshContext) -> None:
    consents = ctx.root / "domains/people/consents/consents.csv"
    consents.write_text(consents.read_text().replace("l1,true", "l1,false"))
    [result] = ctx.build(["people.consents"])
    assert result.ok and result.release is not None and result.release.release == 2
    assert plays(ctx, Principal("ana"), "marketing", as_of=1) == ["p4", "p5"]


def test_explain_names_the_consent(ctx: MeshContext) -> None:
    report = ctx.sidecar.explain(Principal("ana"), SQL, purpose="marketing")
    [port] = report["ports"]
    assert port["consents"] == [
        "listener_id consented (marketing) in quanta://people/consents/consents: policy 3 of "
        "people.plays: for purpose marketing, only rows whose listener_id consented (marketing "
        "in quanta://people/consents), unless group:privacy"]
    assert "IN (SELECT" in report["rewritten"]
    shown = cli("policy", "explain", "--as", "ana", "--purpose", "marketing", SQL,
                "--mesh", str(ctx.root))
    assert "only where listener_id consented" in shown.stdout


def test_no_consent_release_means_no_rows_that_need_it(tmp_path: Path) -> None:
    ctx = MeshContext(copy_fixture("secure", tmp_path))
    assert all(r.ok for r in ctx.build(["people.plays"]))
    with pytest.raises(QuantaError, match="has no release") as info:
        ctx.query(SQL, principal=Principal("ana"), purpose="marketing")
    assert info.value.code == "consent_unavailable"
    assert len(ctx.query(SQL, principal=Principal("ana")).table) == 5


@pytest.mark.parametrize(("edit", "words"), [
    ('source: "quanta://people/consents"', "is not a port of this mesh"),
    ("consented: marketing", "has no boolean column 'listener_id'"),
    ("column: listener_id", "consent names unknown column 'track'"),
])
def test_consent_policies_are_checked(tmp_path: Path, edit: str, words: str) -> None:
    root = copy_fixture("secure", tmp_path)
    spec = root / "domains/people/plays/dataproduct.yaml"
    replacement = {"source": 'source: "quanta://people/nobody"',
                   "consented": "consented: listener_id",
                   "column": "column: track"}[edit.split(":")[0]]
    spec.write_text(spec.read_text().replace(edit, replacement))
    problems = load_mesh(root).problems
    assert any(words in p.message for p in problems), [p.render() for p in problems]


def test_every_mode_enforces_consent(served: Served) -> None:
    body = {"sql": SQL, "purpose": "marketing"}
    with served.client("alice") as http:
        ndjson = http.post("/api/v1/query", json=body, headers={"Accept": "application/x-ndjson"})
        assert [json.loads(line)["play_id"] for line in ndjson.text.splitlines()] == CONSENTED
        rows = http.get("/api/v1/products/people/plays/ports/plays/rows",
                        params={"purpose": "marketing"})
        assert [r["play_id"] for r in rows.json()["rows"]] == CONSENTED
    client = flight.connect(served.flight)
    options = flight.FlightCallOptions(headers=[
        (b"authorization", f"Bearer {served.tokens['alice']}".encode())])
    ticket = flight.Ticket(json.dumps(body).encode())
    table = client.do_get(ticket, options).read_all()
    assert table.column("play_id").to_pylist() == CONSENTED
    client.close()
    assert httpx.post(f"{served.http}/api/v1/query", json={"sql": SQL},
                      headers={"Authorization": f"Bearer {served.tokens['alice']}"}
                      ).text.count("\n") == len(EVERY_PLAY)
