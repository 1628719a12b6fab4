"""Bad input gives one clear error with where and why, and the last release stays served."""

from __future__ import annotations

from pathlib import Path

import pytest

from quanta.context import MeshContext
from quanta.errors import QuantaError

ORDERS = "domains/shop/orders"


def build_then_break(mesh: Path, edit: dict[str, str]) -> QuantaError:
    """Release the orders product once, apply ``edit`` (file → text), build again.

    Returns the error of the second build after checking that release 1 is still the latest
    and still reads the same three rows.
    """
    ctx = MeshContext(mesh)
    [first] = ctx.build(["shop.orders"])
    assert first.ok, first.error
    for name, text in edit.items():
        (mesh / ORDERS / name).write_text(text)
    ctx = MeshContext(mesh)
    [second] = ctx.build(["shop.orders"])
    assert not second.ok
    assert second.error is not None
    assert second.run.outcome == "failed"
    assert [r.release for r in ctx.releases("shop.orders")] == [1]
    assert ctx.query("SELECT count(*) FROM shop.orders").table.column(0)[0].as_py() == 3
    runs = ctx.runs("shop.orders")
    assert runs[-1].outcome == "failed"
    assert runs[-1].error is not None and runs[-1].error["message"] == second.error.message
    return second.error


def build_python_product(mesh: Path, code: str) -> tuple[Path, QuantaError | None]:
    """Replace shop.customers_py's transform with ``code``; build it and its upstream."""
    product = mesh / "domains/shop/customers_py"
    (product / "transform.py").write_text(code)
    results = {r.product: r for r in MeshContext(mesh).build(["shop.orders",
                                                              "shop.customers_py"])}
    return product, results["shop.customers_py"].error


def spec_text(mesh: Path) -> str:
    return (mesh / ORDERS / "dataproduct.yaml").read_text()


def test_failing_blocking_check_blocks_the_release(tiny_mesh: Path) -> None:
    csv = (tiny_mesh / ORDERS / "orders.csv").read_text() + "o1,c9,1.00,2026-11-05 10:00:00\n"
    error = build_then_break(tiny_mesh, {"orders.csv": csv})
    assert error.code == "checks_failed"
    assert "unique_order_id" in error.message
    assert "1 values of (order_id) occur more than once" in error.message


def test_warning_check_is_recorded_but_does_not_block(tiny_mesh: Path) -> None:
    spec = spec_text(tiny_mesh).replace(
        "{check: range, column: amount, min: 0, max: 10000}",
        "{check: range, column: amount, min: 0, max: 15, severity: warn}")
    (tiny_mesh / ORDERS / "dataproduct.yaml").write_text(spec)
    ctx = MeshContext(tiny_mesh)
    [result] = ctx.build(["shop.orders"])
    assert result.ok
    assert result.release is not None
    [warned] = [c for c in result.release.checks if not c.passed]
    assert warned.severity == "warn" and warned.failing_rows == 1
    assert warned.sample[0]["order_id"] == "o2"
    assert result.release.metrics["accuracy"] == pytest.approx(2 / 3, rel=1e-4)


@pytest.mark.parametrize(("sql", "named"), [
    ("SELECT * FROM raw_orders JOIN secrets USING (order_id)", "table 'secrets'"),
    ("SELECT * FROM read_csv('/etc/passwd')", "read_csv(...)"),
    ("SELECT * FROM '/etc/passwd.csv'", "file '/etc/passwd.csv'"),
    ("SELECT * FROM shop.customers_py.customers", "'shop.customers_py.customers'"),
    ("SELECT * FROM glob('/etc/*')", "glob(...)"),
])
def test_undeclared_input_is_refused_by_name(tiny_mesh: Path, sql: str, named: str) -> None:
    error = build_then_break(tiny_mesh, {"transform.sql": sql})
    assert error.code == "undeclared_input"
    assert named in error.message
    assert "declared inputs: raw_orders" in (error.hint or "")
    assert str(error.location).endswith("transform.sql:1:1")


def test_python_transform_cannot_read_undeclared_input(tiny_mesh: Path) -> None:
    _, error = build_python_product(
        tiny_mesh, "def transform(inputs):\n    return {'customers': inputs['payments']}\n")
    assert error is not None and error.code == "undeclared_input"
    assert "'payments'" in error.message


def test_engine_blocks_file_reads_even_past_the_parser(tiny_mesh: Path) -> None:
    _, error = build_python_product(
        tiny_mesh,
        "def transform(inputs):\n"
        "    rel = inputs['orders']\n"
        "    return {'customers': rel.query('o', \"SELECT * FROM read_csv('/etc/hostname')\")}\n")
    assert error is not None
    assert "disabled by configuration" in error.message
    assert ":3:" in str(error.location)


def test_sql_syntax_error_points_into_the_transform_file(tiny_mesh: Path) -> None:
    error = build_then_break(tiny_mesh, {
        "transform.sql": "SELECT order_id\nFROM raw_orders\nWHERE amount > (1"})
    assert error.code == "transform_failed"
    assert "does not parse" in error.message
    assert error.location is not None and error.location.line == 3


def test_sql_runtime_error_is_the_users_error(tiny_mesh: Path) -> None:
    error = build_then_break(tiny_mesh, {"transform.sql": "SELECT nope FROM raw_orders"})
    assert error.code == "transform_failed"
    assert "nope" in error.message
    assert str(error.location).startswith(str(tiny_mesh / ORDERS / "transform.sql"))


def test_python_transform_that_raises_reports_the_users_line(tiny_mesh: Path) -> None:
    product, error = build_python_product(
        tiny_mesh, "def helper(x):\n    return 1 / x\n\n\ndef transform(inputs):\n    helper(0)\n")
    assert error is not None and error.code == "transform_failed"
    assert "ZeroDivisionError" in error.message
    assert str(error.location) == f"{product / 'transform.py'}:2:12"
    run = MeshContext(tiny_mesh).runs("shop.customers_py")[-1]
    assert run.error is not None and "ZeroDivisionError" in str(run.error.get("traceback"))


def test_text_in_a_numeric_column_names_column_and_rows(tiny_mesh: Path) -> None:
    csv = (tiny_mesh / ORDERS / "orders.csv").read_text() + "o4,c4,lots,2026-11-05 10:00:00\n"
    error = build_then_break(tiny_mesh, {"orders.csv": csv})
    assert error.code == "schema_mismatch"
    assert "column 'amount'" in error.message and "'lots'" in error.message
    assert "1 rows" in error.message


def test_missing_and_extra_columns_are_named(tiny_mesh: Path) -> None:
    error = build_then_break(tiny_mesh, {
        "transform.sql": "SELECT order_id, customer_id, ordered_at FROM raw_orders"})
    assert "lacks column(s): amount" in error.message
    (tiny_mesh / ORDERS / "transform.sql").write_text("SELECT *, 1 AS bonus FROM raw_orders")
    [result] = MeshContext(tiny_mesh).build(["shop.orders"])
    assert result.error is not None
    assert "undeclared column(s): bonus" in result.error.message


def test_nulls_in_a_not_nullable_column_are_refused(tiny_mesh: Path) -> None:
    csv = (tiny_mesh / ORDERS / "orders.csv").read_text() + ",c4,1.00,2026-11-05 10:00:00\n"
    error = build_then_break(tiny_mesh, {"orders.csv": csv})
    assert error.code == "schema_mismatch"
    assert "'order_id'" in error.message and "not nullable" in error.message


def test_missing_input_file_is_named(tiny_mesh: Path) -> None:
    spec = spec_text(tiny_mesh).replace("path: orders.csv", "path: orders-2026.csv")
    error = build_then_break(tiny_mesh, {"dataproduct.yaml": spec})
    assert error.code == "input_failed"
    assert "no file matches 'orders-2026.csv'" in error.message


def test_downstream_of_a_failed_build_is_not_built_and_keeps_serving(tiny_mesh: Path) -> None:
    ctx = MeshContext(tiny_mesh)
    assert all(r.ok for r in ctx.build())
    (tiny_mesh / ORDERS / "transform.sql").write_text("SELECT broken FROM raw_orders")
    results = {r.product: r for r in MeshContext(tiny_mesh).build()}
    assert results["shop.daily_totals"].error is not None
    assert results["shop.daily_totals"].error.code == "upstream_failed"
    assert ctx.query("SELECT count(*) FROM shop.daily_totals").table.num_rows == 1
