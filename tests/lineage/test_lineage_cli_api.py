"""``quanta lineage`` and GET /api/v1/products/{domain}/{product}/lineage."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import cli
from quanta.context import MeshContext
from quanta.serve.http import create_app


@pytest.fixture
def built(tiny_mesh: Path) -> Path:
    ctx = MeshContext(tiny_mesh)
    assert all(r.ok for r in ctx.build())
    ctx.close()
    return tiny_mesh


def test_products_as_a_tree_and_as_json(built: Path) -> None:
    result = cli("lineage", "shop.daily_totals", "--mesh", str(built))
    assert result.exit_code == 0, result.output
    assert "shop.orders.orders" in result.stdout and "read release 1" in result.stdout
    assert "domains/shop/orders/orders.csv" in result.stdout
    assert "downstream  none" in result.stdout

    down = cli("lineage", "quanta://shop/orders", "--downstream", "--json", "--mesh", str(built))
    assert down.exit_code == 0, down.output
    document = json.loads(down.stdout)
    assert [p["product"] for p in document["downstream"]] == ["shop.customers_py",
                                                              "shop.daily_totals"]
    assert document["upstream"] == [] and document["direction"] == "downstream"

    up = cli("lineage", "shop.orders", "--upstream", "--json", "--mesh", str(built))
    assert json.loads(up.stdout)["sources"][0]["type"] == "file"


def test_columns_and_impact(built: Path) -> None:
    columns = cli("lineage", "shop.daily_totals", "--columns", "--upstream", "--mesh",
                  str(built))
    assert columns.exit_code == 0, columns.output
    assert "analysed from the SQL" in columns.stdout
    assert "shop.orders.orders.amount" in columns.stdout and "aggregation" in columns.stdout
    assert "rows chosen by" in columns.stdout

    as_json = json.loads(cli("lineage", "shop.daily_totals.totals", "--columns", "--depth", "1",
                             "--json", "--mesh", str(built)).stdout)
    [port] = as_json["ports"]
    assert port["columns"]["day"][0]["column"] == "ordered_at"
    assert port["columns"]["day"][0]["upstream"] == []  # --depth 1
    assert port["dependents"] == {"day": [], "orders": [], "total": []}

    impact = cli("lineage", "shop.orders", "--impact", "amount", "--mesh", str(built))
    assert impact.exit_code == 0, impact.output
    assert "shop.daily_totals.totals.total" in impact.stdout
    none = cli("lineage", "shop.daily_totals", "--impact", "total", "--mesh", str(built))
    assert none.exit_code == 0 and "nothing downstream depends" in none.stdout
    found = json.loads(cli("lineage", "shop.orders", "--impact", "customer_id", "--json",
                           "--mesh", str(built)).stdout)
    assert [(i["product"], i["column"]) for i in found["impacts"]] == [
        ("shop.customers_py", "customer_id")]


def test_bad_input_exits_1_with_a_hint(built: Path) -> None:
    unknown = cli("lineage", "shop.nope", "--mesh", str(built))
    assert unknown.exit_code == 1 and "no product 'shop.nope'" in unknown.stderr
    column = cli("lineage", "shop.orders", "--impact", "price", "--mesh", str(built))
    assert column.exit_code == 1 and "columns: order_id" in column.stderr
    port = cli("lineage", "shop.orders.lines", "--columns", "--json", "--mesh", str(built))
    assert port.exit_code == 1
    assert json.loads(port.stdout)["errors"][0]["code"] == "port_not_found"
    assert cli("lineage", "shop.orders", "--depth", "0", "--mesh", str(built)).exit_code == 2


@pytest.fixture
def api(built: Path) -> Iterator[tuple[TestClient, str]]:
    ctx = MeshContext(built)
    token = ctx.sidecar.tokens.create("ana")[0]
    with TestClient(create_app(ctx.sidecar)) as client:
        yield client, token
    ctx.close()


def test_api_answers_200_401_404_and_400(api: tuple[TestClient, str]) -> None:
    client, token = api
    auth = {"Authorization": f"Bearer {token}"}
    url = "/api/v1/products/shop/daily_totals/lineage"
    ok = client.get(url, headers=auth)
    assert ok.status_code == 200
    assert ok.json()["upstream"] == [{"product": "shop.orders", "distance": 1,
                                      "latest_release": 1}]
    columns = client.get(url, params={"columns": "true", "direction": "upstream"},
                         headers=auth).json()
    assert columns["ports"][0]["columns"]["total"][0]["column"] == "amount"
    impact = client.get("/api/v1/products/shop/orders/lineage",
                        params={"impact": "amount"}, headers=auth).json()
    assert impact["impacts"][0]["column"] == "total"

    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer qnt_x_nope"}).status_code == 401
    missing = client.get("/api/v1/products/shop/nope/lineage", headers=auth)
    assert missing.status_code == 404 and "shop.daily_totals" in missing.json()["error"]["hint"]
    no_port = client.get(url, params={"columns": "true", "port": "lines"}, headers=auth)
    assert no_port.status_code == 404
    sideways = client.get(url, params={"direction": "sideways"}, headers=auth)
    assert sideways.status_code == 400


def test_help_renders() -> None:
    result = cli("lineage", "--help")
    assert result.exit_code == 0 and "--impact" in result.stdout
