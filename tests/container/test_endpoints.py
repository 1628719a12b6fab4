"""Endpoints in the catalog (SQLite and PostgreSQL): register, renew, resolve, deregister;
stale ones are ignored."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from units import catalog_url, pg_catalog  # noqa: F401

from quanta.catalog import Catalog
from quanta.catalog.schema import HEAD
from quanta.container.endpoints import Endpoint, EndpointRegistry, Heartbeat
from quanta.errors import NotFoundError, QuantaError


def endpoint(product: str, port: int) -> Endpoint:
    return Endpoint.starting(product, "tiny", "1.0.0", f"http://127.0.0.1:{port}/",
                             f"grpc://127.0.0.1:{port + 1}", "0.1.0")


@pytest.fixture
def registry(catalog_url: str) -> EndpointRegistry:  # noqa: F811
    opened = EndpointRegistry.open(catalog_url)
    with opened.catalog.engine.begin() as conn:
        conn.execute(text("DELETE FROM catalog_endpoints"))
    yield opened  # type: ignore[misc]
    opened.close()


def test_register_resolve_deregister(registry: EndpointRegistry) -> None:
    orders = registry.register(endpoint("shop.orders", 9000))
    assert orders.http_url == "http://127.0.0.1:9000"
    registry.register(endpoint("shop.daily_totals", 9010))
    assert registry.resolve("shop.orders") == orders
    assert [e.product for e in registry.live()] == ["shop.daily_totals", "shop.orders"]
    assert registry.locate("shop.orders") == "http://127.0.0.1:9000 (Flight grpc://127.0.0.1:9001)"
    assert registry.deregister(orders) and not registry.deregister(orders)
    with pytest.raises(NotFoundError) as caught:
        registry.resolve("shop.orders")
    assert caught.value.code == "product_not_served"
    assert "products served now: shop.daily_totals" in (caught.value.hint or "")
    assert registry.locate("shop.orders") is None


def test_stale_endpoints_are_ignored_and_a_new_one_at_the_url_replaces_them(
        registry: EndpointRegistry) -> None:
    old = endpoint("shop.orders", 9000)
    registry.catalog.register_endpoint(replace(old, heartbeat_at="2020-01-01T00:00:00.000000Z"
                                               ).row())
    assert registry.live("shop.orders") == []
    with pytest.raises(NotFoundError, match="no heartbeat since 2020-01-01"):
        registry.resolve("shop.orders")
    new = registry.register(endpoint("shop.orders", 9000))  # restarted at the same URL
    assert [row["id"] for row in registry.catalog.endpoints()] == [new.id]
    assert registry.resolve("shop.orders").id == new.id


def test_the_freshest_of_several_endpoints_wins(registry: EndpointRegistry) -> None:
    first = registry.register(endpoint("shop.orders", 9000))
    second = registry.register(endpoint("shop.orders", 9100))
    registry.beat(first)
    assert registry.resolve("shop.orders").id == first.id
    registry.beat(second)
    assert registry.resolve("shop.orders").id == second.id


def test_a_heartbeat_registers_again_when_its_row_went(registry: EndpointRegistry) -> None:
    orders = registry.register(endpoint("shop.orders", 9000))
    registry.catalog.deregister_endpoint(orders.id)  # e.g. someone cleaned the table
    registry.beat(orders)
    assert registry.resolve("shop.orders").id == orders.id


def test_the_heartbeat_thread_registers_renews_and_deregisters(
        registry: EndpointRegistry) -> None:
    reports: list[QuantaError | None] = []
    beat = Heartbeat(registry, endpoint("shop.orders", 9000), reports.append, interval=0.05)
    beat.start()
    try:
        assert reports == [None]
        first = registry.resolve("shop.orders").heartbeat_at
        import time

        deadline = time.monotonic() + 10
        while registry.resolve("shop.orders").heartbeat_at == first:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        beat.stop()
    assert registry.live() == []


def test_endpoints_survive_clearing_the_index(registry: EndpointRegistry) -> None:
    registry.register(endpoint("shop.orders", 9000))
    registry.catalog.clear()  # 'quanta catalog rebuild' replaces documents, not endpoints
    assert registry.resolve("shop.orders")


def test_a_catalog_of_schema_0002_gains_the_endpoints_table(tmp_path: Path) -> None:
    from quanta.catalog.store import upgrade_schema

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        upgrade_schema(conn, "0002")
    engine.dispose()
    registry = EndpointRegistry(Catalog(url))
    try:
        registry.register(endpoint("shop.orders", 9000))
        with registry.catalog.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM catalog_version")).scalar() \
                == HEAD == "0003"
    finally:
        registry.close()
