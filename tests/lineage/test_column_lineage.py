"""Column lineage: SQL analysed with sqlglot, Python declared in lineage.yaml, and impact."""

from __future__ import annotations

from pathlib import Path

import pytest

from quanta.errors import NotFoundError, QuantaError
from quanta.lineage import MeshLineage
from quanta.lineage.columns import ColumnSource, sql_lineage
from quanta.spec.mesh import load_mesh

CUSTOMERS = "domains/shop/customers_py"


def triples(sources: tuple[ColumnSource, ...]) -> set[tuple[str, str | None, str]]:
    return {(s.input, s.column, s.subtype) for s in sources}


def test_daily_totals_columns_come_from_the_orders_columns(tiny_mesh: Path) -> None:
    lineage = MeshLineage(load_mesh(tiny_mesh))
    port = lineage.port_columns("shop.daily_totals")["totals"]
    assert port.method == "sql"
    assert triples(port.columns["day"]) == {("orders", "ordered_at", "transformation")}
    assert triples(port.columns["total"]) == {("orders", "amount", "aggregation")}
    assert triples(port.columns["orders"]) == {("orders", None, "aggregation")}  # count(*)
    assert ("orders", "ordered_at", "group_by") in triples(port.dataset)


def test_origins_are_followed_to_the_source_files(tiny_mesh: Path) -> None:
    lineage = MeshLineage(load_mesh(tiny_mesh))
    [view] = lineage.columns("quanta://shop/daily_totals/totals", "upstream")
    [origin] = view.columns["total"]
    assert (origin.dataset, origin.column, origin.kind) == ("shop.orders.orders", "amount",
                                                            "port")
    [source] = origin.upstream
    assert (source.dataset, source.column, source.kind, source.subtype) == (
        "file domains/shop/orders/orders.csv", "amount", "source", "identity")
    [shallow] = lineage.columns("shop.daily_totals", "upstream", depth=1)
    assert shallow.columns["total"][0].upstream == []
    assert view.dependents == {}


def test_sql_shapes_ctes_unions_subqueries_and_unknown_inputs() -> None:
    sql = """
        WITH paid AS (SELECT o.id, o.amount * r.rate AS eur FROM orders o
                      JOIN rates r ON r.currency = o.currency WHERE o.state = 'paid')
        SELECT id, eur, (SELECT max(amount) FROM orders) AS top, 'EUR' AS unit FROM paid
        UNION ALL
        SELECT id, total, NULL, 'EUR' FROM legacy
    """
    port = sql_lineage(sql, "p", ["id", "eur", "top", "unit"], {
        "orders": ["id", "amount", "currency", "state"], "rates": ["currency", "rate"],
        "legacy": None})
    assert triples(port.columns["id"]) == {("orders", "id", "identity"),
                                           ("legacy", "id", "identity")}
    assert triples(port.columns["eur"]) == {("orders", "amount", "transformation"),
                                            ("rates", "rate", "transformation"),
                                            ("legacy", "total", "identity")}
    assert triples(port.columns["top"]) == {("orders", "amount", "aggregation")}
    assert port.columns["unit"] == ()  # a constant comes from no input
    assert {("orders", "currency", "join"), ("rates", "currency", "join"),
            ("orders", "state", "filter")} <= triples(port.dataset)


def test_a_chain_of_unions_takes_its_column_names_from_the_first_branch() -> None:
    port = sql_lineage("SELECT a FROM t UNION ALL SELECT b FROM u UNION SELECT c FROM v", "p",
                       ["a"], {"t": ["a"], "u": ["b"], "v": ["c"]})
    assert triples(port.columns["a"]) == {("t", "a", "identity"), ("u", "b", "identity"),
                                          ("v", "c", "identity")}


def test_sql_that_does_not_parse_gives_whole_inputs_with_a_note() -> None:
    port = sql_lineage("SELEC nope FROM", "p", ["a"], {"x": None})
    assert port.method == "unknown" and port.note
    assert triples(port.columns["a"]) == {("x", None, "unknown")}


def test_python_lineage_is_declared_in_lineage_yaml(tiny_mesh: Path) -> None:
    port = MeshLineage(load_mesh(tiny_mesh)).port_columns("shop.customers_py")["customers"]
    assert port.method == "declared"
    assert triples(port.columns["customer_id"]) == {("orders", "customer_id", "transformation")}
    assert triples(port.columns["orders"]) == {("orders", None, "transformation")}


def test_without_lineage_yaml_a_python_port_depends_on_every_input(tiny_mesh: Path) -> None:
    (tiny_mesh / CUSTOMERS / "lineage.yaml").unlink()
    lineage = MeshLineage(load_mesh(tiny_mesh))
    port = lineage.port_columns("shop.customers_py")["customers"]
    assert port.method == "unknown" and "lineage.yaml" in port.note
    assert triples(port.columns["orders"]) == {("orders", None, "unknown")}
    _, _, impacts = lineage.impact("shop.orders", "amount")
    uncertain = {(i.product, i.column) for i in impacts if not i.certain}
    assert uncertain == {("shop.customers_py", "customer_id"), ("shop.customers_py", "orders")}


@pytest.mark.parametrize(("text", "message", "line"), [
    ("nope:\n  customer_id: orders.customer_id\n", "no output port 'nope'", 1),
    ("customers:\n  who: orders.customer_id\n", "has no column 'who'", 2),
    ("customers:\n  orders: [orders.id, payments.id]\n", "'payments.id' does not name", 2),
])
def test_a_wrong_lineage_yaml_is_an_error_with_its_line(tiny_mesh: Path, text: str,
                                                         message: str, line: int) -> None:
    (tiny_mesh / CUSTOMERS / "lineage.yaml").write_text(text)
    with pytest.raises(QuantaError) as caught:
        MeshLineage(load_mesh(tiny_mesh)).port_columns("shop.customers_py")
    assert message in caught.value.message
    assert caught.value.location is not None and caught.value.location.line == line
    assert caught.value.code == "lineage_invalid"


def test_impact_names_what_breaks_downstream(tiny_mesh: Path) -> None:
    lineage = MeshLineage(load_mesh(tiny_mesh))
    key, port, impacts = lineage.impact("shop.orders", "amount")
    assert (key, port) == ("shop.orders", "orders")
    assert [(i.product, i.port, i.column, i.subtype) for i in impacts] == [
        ("shop.daily_totals", "totals", "total", "aggregation")]
    _, _, by_customer = lineage.impact("quanta://shop/orders/orders", "customer_id")
    assert {(i.product, i.column) for i in by_customer} == {("shop.customers_py",
                                                             "customer_id")}
    _, _, by_time = lineage.impact("shop.orders", "ordered_at")
    found = {(i.product, i.column, i.subtype, i.direct) for i in by_time}
    assert ("shop.daily_totals", "day", "transformation", True) in found
    assert ("shop.daily_totals", None, "group_by", False) in found  # its rows are grouped by it
    assert lineage.impact("shop.daily_totals", "total")[2] == []


def test_impact_of_unknown_columns_and_ports_is_a_clear_error(tiny_mesh: Path) -> None:
    lineage = MeshLineage(load_mesh(tiny_mesh))
    with pytest.raises(NotFoundError) as column:
        lineage.impact("shop.orders", "price")
    assert "amount" in (column.value.hint or "") and column.value.code == "column_not_found"
    with pytest.raises(NotFoundError) as port:
        lineage.impact("shop.orders.lines", "amount")
    assert "orders" in (port.value.hint or "")
    with pytest.raises(NotFoundError):
        lineage.columns("shop.orders.lines")


def test_impact_follows_columns_across_several_products(demo_mesh: Path) -> None:
    lineage = MeshLineage(load_mesh(demo_mesh))
    _, _, impacts = lineage.impact("listening.play_events", "ms_played")
    found = {(i.product, i.column): i.distance for i in impacts}
    assert found[("listening.listener_sessions", "ms_played")] == 1
    assert found[("marketing.churn_features", "skip_rate")] == 1
    assert found[("royalties.monthly_statements", "royalty_cents")] == 1
    # sessions' ended_at is made from ms_played; churn features filter on sessions' start
    _, _, catalog = lineage.impact("artists.catalog.tracks", "artist_id")
    assert ("royalties.monthly_statements", "artist_id") in {
        (i.product, i.column) for i in catalog}
    declared = lineage.port_columns("artists.catalog")["artists"]
    assert declared.method == "declared"
    assert triples(declared.columns["artist_name"]) == {
        ("raw_artists", "name", "transformation")}
