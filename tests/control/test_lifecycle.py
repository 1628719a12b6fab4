"""Life cycle: a deprecated product is served with notices in every mode; a retired one is
refused naming its replacement and not built; only owners change the state; all audited."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import httpx
import pyarrow.flight as flight
import pytest

from conftest import Served, cli, copy_fixture
from quanta.context import MeshContext
from quanta.control.lifecycle import LifecycleError, deprecate, reactivate, retire
from quanta.sidecar import Principal
from quanta.sidecar.access import AuthorizationError
from quanta.sidecar.core import ProductRetiredError

SUNSET = date.today() + timedelta(days=60)
SQL = "SELECT count(*) AS n FROM people.plays"


@pytest.fixture
def ctx(tmp_path: Path) -> MeshContext:
    context = MeshContext(copy_fixture("secure", tmp_path))
    assert all(r.ok for r in context.build())
    return context


def test_deprecate_then_retire_then_reactivate(ctx: MeshContext) -> None:
    ops = ctx.sidecar.operator()
    state = deprecate(ctx.sidecar, ops, "quanta://people/plays", SUNSET,
                      "quanta://people/listeners", "plays move into listening")
    assert state.state == "deprecated" and state.sunset == SUNSET
    result = ctx.query(SQL, principal=Principal("ana"))
    assert result.table.column("n")[0].as_py() == 5  # still served
    assert result.notices == [f"people.plays is deprecated (plays move into listening); sunset "
                              f"{SUNSET.isoformat()}; use quanta://people/listeners"]

    retire(ctx.sidecar, ops, "quanta://people/plays")
    with pytest.raises(ProductRetiredError, match=r"people\.plays is retired") as info:
        ctx.query(SQL, principal=Principal("ana"))
    assert "quanta://people/listeners" in (info.value.hint or "")  # kept from the deprecation
    [built] = ctx.build(["people.plays"])
    assert not built.ok and built.error is not None and built.error.code == "product_retired"
    assert [r.release for r in ctx.releases("people.plays")] == [1]  # data kept

    reactivate(ctx.sidecar, ops, "quanta://people/plays", "the move was called off")
    assert ctx.query(SQL, principal=Principal("ana")).notices == []
    history = ctx.storage("people.plays").lifecycle().history
    assert [t.state for t in history] == ["deprecated", "retired", "active"]
    ctx.sidecar.audit.close()
    actions = [json.loads(line).get("action") for line in
               ctx.sidecar.audit.file.read_text().splitlines()]
    assert {"lifecycle.deprecated", "lifecycle.retired", "lifecycle.active"} <= set(actions)


def test_only_owners_change_the_state_and_bad_input_is_refused(ctx: MeshContext) -> None:
    with pytest.raises(AuthorizationError, match="may not change the life cycle"):
        deprecate(ctx.sidecar, Principal("ana"), "quanta://people/plays", SUNSET)
    owner = Principal("olga", frozenset({"people"}))
    with pytest.raises(LifecycleError, match="in the past"):
        deprecate(ctx.sidecar, owner, "quanta://people/plays", date(2020, 1, 1))
    with pytest.raises(LifecycleError, match="cannot replace itself"):
        deprecate(ctx.sidecar, owner, "quanta://people/plays", SUNSET, "quanta://people/plays")
    with pytest.raises(Exception, match=r"people\.nothing"):
        retire(ctx.sidecar, owner, "quanta://people/plays", "quanta://people/nothing")
    with pytest.raises(LifecycleError, match="active already"):
        reactivate(ctx.sidecar, owner, "quanta://people/plays")
    assert ctx.storage("people.plays").lifecycle().state == "active"
    deprecate(ctx.sidecar, owner, "quanta://people/plays", SUNSET)
    assert ctx.storage("people.plays").lifecycle().state == "deprecated"


def test_downstream_builds_stop_at_a_retired_input(tmp_path: Path) -> None:
    ctx = MeshContext(copy_fixture("tiny", tmp_path))
    assert all(r.ok for r in ctx.build())
    deprecate(ctx.sidecar, ctx.sidecar.operator(), "quanta://shop/orders", SUNSET)
    retire(ctx.sidecar, ctx.sidecar.operator(), "quanta://shop/orders", reason="replaced")
    results = {r.product: r for r in ctx.build(["shop.daily_totals"])}
    error = results["shop.daily_totals"].error
    assert error is not None and error.code == "input_retired"
    assert "shop.orders is retired" in error.message


def test_the_cli(ctx: MeshContext) -> None:
    mesh = str(ctx.root)
    done = cli("deprecate", "quanta://people/plays", "--sunset", SUNSET.isoformat(),
               "--replacement", "quanta://people/listeners", "--mesh", mesh)
    assert done.exit_code == 0 and "deprecated" in done.stdout
    read = cli("query", SQL, "--mesh", mesh)
    assert read.exit_code == 0 and "warning people.plays is deprecated" in read.stderr
    shown = cli("show", "people.plays", "--mesh", mesh)
    assert f"deprecated, sunset {SUNSET.isoformat()}" in shown.stdout
    bad = cli("deprecate", "quanta://people/plays", "--sunset", "soon", "--mesh", mesh)
    assert bad.exit_code == 1 and "YYYY-MM-DD" in bad.output
    assert cli("retire", "quanta://people/plays", "--mesh", mesh).exit_code == 0
    refused = cli("query", SQL, "--mesh", mesh)
    assert refused.exit_code == 1 and "retired" in refused.output
    assert "Traceback" not in refused.output


def test_every_mode_tells_the_consumer(served: Served) -> None:
    sidecar = served.context.sidecar
    deprecate(sidecar, sidecar.operator(), "quanta://people/plays", SUNSET,
              "quanta://people/listeners")
    try:
        with served.client("alice") as http:
            answer = http.post("/api/v1/query", json={"sql": SQL})
            assert answer.status_code == 200
            assert answer.headers["Deprecation"] == "true"
            assert answer.headers["Sunset"].endswith("00:00:00 GMT")
            assert answer.headers["Link"] == '<quanta://people/listeners>; rel="successor-version"'
            rows = http.get("/api/v1/products/people/plays/ports/plays/rows")
            assert rows.headers["Deprecation"] == "true"
            listed = http.get("/api/v1/products").json()["products"]
            assert {p["name"]: p["lifecycle"]["state"] for p in listed}["plays"] == "deprecated"
        client = flight.connect(served.flight)
        options = flight.FlightCallOptions(headers=[
            (b"authorization", f"Bearer {served.tokens['alice']}".encode())])
        table = client.do_get(flight.Ticket(json.dumps({"sql": SQL}).encode()),
                              options).read_all()
        assert b"deprecated" in table.schema.metadata[b"quanta.notices"]
        retire(sidecar, sidecar.operator(), "quanta://people/plays")
        gone = httpx.post(f"{served.http}/api/v1/query", json={"sql": SQL},
                          headers={"Authorization": f"Bearer {served.tokens['alice']}"})
        assert gone.status_code == 410 and "retired" in gone.json()["error"]["message"]
        with pytest.raises(flight.FlightServerError, match="retired"):
            client.do_get(flight.Ticket(json.dumps({"sql": SQL}).encode()), options).read_all()
        client.close()
    finally:
        reactivate(sidecar, sidecar.operator(), "quanta://people/plays")
