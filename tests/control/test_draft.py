"""Life cycle states: a draft builds and its owners read it, nobody else does and discovery
does not list it until it is activated; moves follow draft → active → deprecated → retired
(reactivation aside) and others are refused clearly; every move is audited."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from conftest import cli, copy_fixture
from quanta.catalog.search import SearchQuery
from quanta.context import MeshContext
from quanta.control.grants import grant
from quanta.control.lifecycle import (
    LifecycleError,
    activate,
    deprecate,
    draft,
    reactivate,
    retire,
)
from quanta.serve.http import create_app
from quanta.sidecar import Principal
from quanta.sidecar.access import AuthorizationError
from quanta.sidecar.core import ProductDraftError

SQL = "SELECT count(*) AS n FROM shop.orders"
SUNSET = date.today() + timedelta(days=30)
OWNER = Principal("olga", frozenset({"shop"}))


@pytest.fixture
def mesh(tmp_path: Path) -> Path:
    folder = copy_fixture("tiny", tmp_path)
    # customers_py belongs to another team
    spec = folder / "domains" / "shop" / "customers_py" / "dataproduct.yaml"
    spec.write_text(spec.read_text().replace("owner: {team: shop}", "owner: {team: crm}"))
    return folder


def test_a_draft_is_read_by_its_owners_only_and_listed_once_active(mesh: Path) -> None:
    ctx = MeshContext(mesh)
    ops = ctx.sidecar.operator()
    state = draft(ctx.sidecar, OWNER, "quanta://shop/orders", "trying the new order feed")
    assert state.state == "draft"
    results = {r.product: r for r in ctx.build()}
    assert results["shop.orders"].ok  # a draft builds
    assert results["shop.daily_totals"].ok  # its own team's products read it
    error = results["shop.customers_py"].error
    assert error is not None and error.code == "input_draft"
    assert "shop.orders is a draft: only its owners read it" in error.message

    grant(ctx.sidecar, ops, "group:shop", "quanta://shop/orders")  # owners read as granted
    owned = ctx.query(SQL, principal=OWNER)
    assert owned.table.column("n")[0].as_py() == 3
    assert "shop.orders is a draft" in owned.notices[0]
    grant(ctx.sidecar, ops, "ana", "quanta://shop/orders")
    with pytest.raises(ProductDraftError, match=r"shop\.orders is a draft: only its owners "
                       r"read it until it is activated") as info:
        ctx.query(SQL, principal=Principal("ana"))
    assert info.value.code == "product_draft"
    token = ctx.sidecar.tokens.create("ana")[0]
    with TestClient(create_app(ctx.sidecar)) as http:
        refused = http.post("/api/v1/query", json={"sql": SQL},
                            headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "product_draft"

    found = {h.key for h in ctx.search(SearchQuery("order")).hits}
    assert "shop.orders" not in found and "shop.daily_totals" in found
    assert "shop.orders" not in ctx.rebuild_catalog().indexed  # a rebuild keeps it out

    done = cli("activate", "quanta://shop/orders", "--mesh", str(mesh))
    assert done.exit_code == 0, done.output
    ctx = MeshContext(mesh)
    assert ctx.query(SQL, principal=Principal("ana")).notices == []
    assert "shop.orders" in {h.key for h in ctx.search(SearchQuery("order")).hits}
    assert ctx.discovery("shop.orders")["lifecycle"]["state"] == "active"
    assert [r.ok for r in ctx.build(["shop.customers_py"])] == [True]
    history = ctx.storage("shop.orders").lifecycle().history
    assert [(t.state, t.by) for t in history] == [("draft", "olga"), ("active", "operator")]
    ctx.sidecar.audit.close()
    actions = [json.loads(line).get("action")
               for line in ctx.sidecar.audit.file.read_text().splitlines()]
    assert "lifecycle.draft" in actions and "lifecycle.active" in actions
    ctx.close()


def test_moves_follow_the_life_cycle(mesh: Path) -> None:
    ctx = MeshContext(mesh)
    sidecar, ops = ctx.sidecar, ctx.sidecar.operator()
    with pytest.raises(LifecycleError, match="is active already"):
        activate(sidecar, ops, "shop.daily_totals")
    draft(sidecar, ops, "shop.orders")
    with pytest.raises(LifecycleError, match="is draft already") as info:
        draft(sidecar, ops, "shop.orders")
    assert "quanta activate shop.orders" in (info.value.hint or "")
    with pytest.raises(LifecycleError, match="a draft: it cannot be deprecated"):
        deprecate(sidecar, ops, "shop.orders", SUNSET)
    with pytest.raises(LifecycleError, match="a draft: it cannot be retired"):
        retire(sidecar, ops, "shop.orders")
    with pytest.raises(AuthorizationError, match="may not change the life cycle"):
        activate(sidecar, Principal("ana"), "shop.orders")
    activate(sidecar, ops, "shop.orders")

    assert all(r.ok for r in ctx.build(["shop.orders", "shop.daily_totals"]))
    with pytest.raises(LifecycleError, match="only a new product, before its first release, "
                       "can be a draft") as info:
        draft(sidecar, ops, "shop.daily_totals")  # released already
    assert "quanta deprecate" in (info.value.hint or "")
    with pytest.raises(LifecycleError, match="deprecated before it is retired") as info:
        retire(sidecar, ops, "shop.daily_totals")
    assert "quanta deprecate shop.daily_totals --sunset" in (info.value.hint or "")
    deprecate(sidecar, ops, "shop.daily_totals", SUNSET)
    deprecate(sidecar, ops, "shop.daily_totals", SUNSET + timedelta(days=1))  # a new sunset
    retire(sidecar, ops, "shop.daily_totals")
    with pytest.raises(LifecycleError, match="is retired; it cannot become deprecated"):
        deprecate(sidecar, ops, "shop.daily_totals", SUNSET)
    with pytest.raises(LifecycleError, match="retired already"):
        retire(sidecar, ops, "shop.daily_totals")
    reactivate(sidecar, ops, "shop.daily_totals")
    states = [t.state for t in ctx.storage("shop.daily_totals").lifecycle().history]
    assert states == ["deprecated", "deprecated", "retired", "active"]
    ctx.close()


def test_the_cli_says_what_to_do_instead(mesh: Path) -> None:
    folder = str(mesh)
    assert cli("draft", "shop.orders", "--mesh", folder).exit_code == 0
    shown = cli("show", "shop.orders", "--mesh", folder)
    assert "draft" in shown.stdout
    refused = cli("retire", "shop.orders", "--mesh", folder)
    assert refused.exit_code == 1 and "quanta activate shop.orders" in refused.output
    assert "Traceback" not in refused.output
    assert cli("activate", "shop.orders", "--mesh", folder).exit_code == 0
    refused = cli("retire", "shop.orders", "--mesh", folder)
    assert refused.exit_code == 1 and "deprecated before it is retired" in refused.output


def test_over_http_a_draft_is_listed_to_its_owners_and_activated_into_search(
        mesh: Path) -> None:
    ctx = MeshContext(mesh)
    tokens = ctx.sidecar.tokens
    olga = tokens.create("olga", groups=["shop"])[0]
    ana = tokens.create("ana")[0]
    with TestClient(create_app(ctx.sidecar)) as http:
        def call(method: str, path: str, token: str, **body: object) -> httpx.Response:
            return http.request(method, path, headers={"Authorization": f"Bearer {token}"},
                                json=body or None)

        made = call("POST", "/api/v1/products/shop/orders/lifecycle", olga, state="draft")
        assert made.status_code == 200, made.text
        assert made.json()["lifecycle"]["state"] == "draft"
        assert ctx.build()[0].ok

        def listed(token: str) -> set[str]:
            answer = call("GET", "/api/v1/products", token)
            assert answer.status_code == 200, answer.text
            return {p["address"] for p in answer.json()["products"]}

        assert "quanta://shop/orders" in listed(olga)
        assert "quanta://shop/orders" not in listed(ana)
        refused = call("POST", "/api/v1/products/shop/orders/lifecycle", ana, state="active")
        assert refused.status_code == 403, refused.text
        done = call("POST", "/api/v1/products/shop/orders/lifecycle", olga, state="active")
        assert done.status_code == 200, done.text
        assert "quanta://shop/orders" in listed(ana)
        found = call("GET", "/api/v1/products?q=order", ana).json()["products"]
        assert "shop.orders" in {p["key"] for p in found}, found
    ctx.close()
