"""Queries: one read-only SELECT over ports, names resolved by the sidecar, joins welcome."""

from __future__ import annotations

from pathlib import Path

import pytest

from quanta.context import MeshContext
from quanta.errors import NotFoundError, QuantaError, QueryError


@pytest.fixture
def built(tiny_mesh: Path) -> MeshContext:
    ctx = MeshContext(tiny_mesh)
    assert all(r.ok for r in ctx.build())
    return ctx


def test_two_and_three_part_names_and_aliases(built: MeshContext) -> None:
    two = built.query("SELECT count(*) FROM shop.orders").table.column(0)[0].as_py()
    three = built.query("SELECT count(*) FROM shop.orders.orders").table.column(0)[0].as_py()
    assert two == three == 3
    qualified = built.query(
        "SELECT orders.order_id FROM shop.orders ORDER BY 1 LIMIT 1").table.to_pylist()
    assert qualified == [{"order_id": "o1"}]


def test_join_across_products_with_ctes_and_windows(built: MeshContext) -> None:
    sql = """
        WITH ranked AS (
            SELECT customer_id, amount,
                   row_number() OVER (PARTITION BY customer_id ORDER BY amount DESC) AS rn
            FROM shop.orders
        )
        SELECT r.customer_id, r.amount, c.orders
        FROM ranked r JOIN shop.customers_py c USING (customer_id)
        WHERE rn = 1 ORDER BY customer_id
    """
    result = built.query(sql)
    assert [(r["customer_id"], str(r["amount"]), r["orders"])
            for r in result.table.to_pylist()] == [("c1", "10.50", 2), ("c2", "20.00", 1)]
    assert result.snapshot == {"shop.orders": 1, "shop.customers_py": 1}
    assert result.snapshot_header() == "shop.customers_py@1,shop.orders@1"


@pytest.mark.parametrize(("sql", "reason"), [
    ("DELETE FROM shop.orders", "only SELECT"),
    ("SELECT 1; SELECT 2", "one statement per query"),
    ("COPY (SELECT * FROM shop.orders) TO '/tmp/x.csv'", "only SELECT"),
    ("ATTACH '/tmp/other.db' AS o", "only SELECT"),
    ("PRAGMA database_list", "only SELECT"),
    ("SET threads = 1", "only SELECT"),
    ("INSTALL httpfs", "only SELECT"),
    ("SELECT * FROM read_parquet('/etc/x.parquet')", "read_parquet()"),
    ("SELECT * FROM duckdb_tables()", "duckdb_tables()"),
    ("SELECT * FROM '/etc/passwd'", "unknown table '/etc/passwd'"),
    ("SELECT * FROM secrets", "unknown table 'secrets'"),
    ("SELECT * FROM (SELECT 1) t WHERE", "does not parse"),
    ("SELECT 42", "reads no data product"),
    ("CREATE TABLE t AS SELECT * FROM shop.orders", "only SELECT"),
])
def test_refused_queries_say_why(built: MeshContext, sql: str, reason: str) -> None:
    with pytest.raises(QueryError) as info:
        built.query(sql)
    assert reason.lower() in info.value.message.lower()
    assert "/tmp/" not in info.value.message or "/tmp/" in sql


def test_unknown_product_and_port_list_what_exists(built: MeshContext) -> None:
    with pytest.raises(NotFoundError) as product:
        built.query("SELECT * FROM shop.invoices")
    assert "shop.orders" in (product.value.hint or "")
    with pytest.raises(NotFoundError) as port:
        built.query("SELECT * FROM shop.orders.lines")
    assert port.value.hint == "ports: orders"


def test_system_catalogs_are_not_reachable(built: MeshContext) -> None:
    for sql in ("SELECT * FROM information_schema.tables",
                "SELECT * FROM main.duckdb_settings", "SELECT * FROM pg_catalog.pg_tables"):
        with pytest.raises(QuantaError):
            built.query(sql)


def test_engine_errors_do_not_leak_storage_paths(built: MeshContext, tiny_mesh: Path) -> None:
    with pytest.raises(QueryError) as info:
        built.query("SELECT no_such_column FROM shop.orders")
    assert "no_such_column" in info.value.message
    assert str(tiny_mesh) not in info.value.render()
    assert ".quanta" not in info.value.render()
