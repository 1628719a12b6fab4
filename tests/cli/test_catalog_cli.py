"""quanta search, quanta joinable, quanta catalog rebuild|polysemes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import cli, copy_fixture
from quanta.catalog import URL_ENV


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(URL_ENV, raising=False)
        folder = copy_fixture("tiny", tmp_path_factory.mktemp("catalog-cli"))
        assert cli("build", "--mesh", str(folder)).exit_code == 0
        yield folder


@pytest.fixture(autouse=True)
def default_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(URL_ENV, raising=False)


def test_search(mesh: Path) -> None:
    shown = cli("search", "order value", "--mesh", str(mesh))
    assert shown.exit_code == 0, shown.output
    assert "quanta://shop/daily_totals" in shown.stdout and "domain: shop" in shown.stdout
    found = json.loads(cli("search", "customer", "--json", "--mesh", str(mesh)).stdout)
    assert found["products"][0]["key"] == "shop.customers_py"
    assert found["facets"]["classification"]["pii"] == found["total"]
    kinds = json.loads(cli("search", "--kind", "aggregate", "--json", "--mesh",
                           str(mesh)).stdout)
    assert [p["key"] for p in kinds["products"]] == ["shop.daily_totals"]
    owned = json.loads(cli("search", "--owner", "shop@example.com", "--json", "--mesh",
                           str(mesh)).stdout)
    assert [p["key"] for p in owned["products"]] == ["shop.orders"]
    none = cli("search", 'NEAR("zebra* -x:', "--tag", "t", "--mesh", str(mesh))
    assert none.exit_code == 0 and "no products matching" in none.stdout


def test_joinable_and_polysemes(mesh: Path) -> None:
    shown = cli("joinable", "quanta://shop/orders", "--mesh", str(mesh))
    assert shown.exit_code == 0 and "quanta://shop/customers_py/customers" in shown.stdout
    found = json.loads(cli("joinable", "shop.orders", "--json", "--mesh", str(mesh)).stdout)
    assert found["source"] == "catalog"
    [join] = found["joinable"]
    assert join["keys"] == [{"polyseme": "customer_id", "field": "customer_id",
                             "joins": "customer_id"}]
    lonely = cli("joinable", "shop.daily_totals", "--mesh", str(mesh))
    assert lonely.exit_code == 0 and "no field with a polyseme" in lonely.stdout
    registry = json.loads(cli("catalog", "polysemes", "--json", "--mesh", str(mesh)).stdout)
    assert [c["product"] for c in registry["polysemes"]["customer_id"]] == [
        "shop.customers_py", "shop.orders"]
    assert cli("joinable", "shop.nothing", "--mesh", str(mesh)).exit_code == 1


def test_rebuild_and_a_damaged_catalog(tmp_path: Path) -> None:
    folder = copy_fixture("tiny", tmp_path)
    (folder / ".quanta").mkdir()
    database = folder / ".quanta" / "catalog.db"
    database.write_bytes(b"\x00garbage" * 4096)
    built = cli("build", "--mesh", str(folder))
    assert built.exit_code == 0, built.output  # the releases are made all the same
    assert "did not index" in built.stdout and "quanta catalog rebuild" in built.stdout
    failed = cli("search", "orders", "--mesh", str(folder))
    assert failed.exit_code == 1 and "catalog" in failed.stderr
    assert "Traceback" not in failed.output and "rebuild" in failed.stderr
    as_json = cli("search", "orders", "--json", "--mesh", str(folder))
    assert json.loads(as_json.stdout)["errors"][0]["code"] == "catalog_unavailable"
    query = cli("query", "SELECT count(*) AS n FROM shop.orders", "--json", "--mesh",
                str(folder))
    assert query.exit_code == 0  # reading data never needs the catalog
    (folder / ".quanta" / "products" / "shop" / "orders" / "discovery.json").write_text("[]")
    rebuilt = cli("catalog", "rebuild", "--mesh", str(folder))
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "set aside" in rebuilt.stderr and "skipped" in rebuilt.stderr
    assert "2 product(s) indexed, 1 skipped" in rebuilt.stdout
    assert cli("search", "orders", "--mesh", str(folder)).exit_code == 0
