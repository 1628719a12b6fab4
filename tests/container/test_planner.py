"""Planning a query over separately served products: which columns and filters each
endpoint is asked for, and what stays here."""

from __future__ import annotations

import pytest

from quanta.container.planner import FederatedPlan, narrow, parse
from quanta.errors import QueryError

COLUMNS = {
    "people.listeners": ["listener_id", "email", "country", "birth_date", "plan", "hidden"],
    "people.plays": ["play_id", "listener_id", "track_id"],
}


def planned(sql: str) -> FederatedPlan:
    plan = parse(sql)
    narrow(plan, lambda t: COLUMNS[t.product])
    return plan


def remote(plan: FederatedPlan) -> dict[str, str]:
    return {t.written: t.remote_sql(COLUMNS[t.product]) for t in plan.tables}


def test_a_join_asks_each_endpoint_for_its_columns_and_own_filters() -> None:
    plan = planned("SELECT l.email, count(*) AS n FROM people.listeners l "
                   "JOIN people.plays p ON l.listener_id = p.listener_id "
                   "WHERE l.country = 'DE' AND p.track_id <> 't9' AND l.plan <> p.play_id "
                   "GROUP BY ALL")
    assert plan.products == ["people.listeners", "people.plays"]
    assert remote(plan) == {
        "people.listeners": 'SELECT "listener_id", "email", "country", "plan" FROM '
                            "people.listeners AS \"l\" WHERE (l.country = 'DE')",
        "people.plays": 'SELECT "play_id", "listener_id", "track_id" FROM people.plays AS "p" '
                        "WHERE (p.track_id <> 't9')",
    }
    assert "__mesh_0 AS l" in plan.local_sql and "__mesh_1 AS p" in plan.local_sql
    assert "l.country = 'DE'" in plan.local_sql  # filters stay here too: applied twice, same


def test_outer_joins_self_joins_and_subqueries_keep_their_filters_here() -> None:
    left = planned("SELECT * FROM people.listeners l LEFT JOIN people.plays p "
                   "ON l.listener_id = p.listener_id WHERE p.track_id IS NULL")
    assert all(not t.filters for t in left.tables)
    assert all(t.columns is not None for t in left.tables)  # the star was expanded
    self_join = planned("SELECT a.email FROM people.listeners a JOIN people.listeners b "
                        "ON a.listener_id = b.listener_id WHERE a.country = 'DE'")
    [table] = self_join.tables
    assert table.occurrences == 2 and not table.filters
    nested = planned("SELECT email FROM people.listeners l WHERE l.listener_id IN "
                     "(SELECT listener_id FROM people.plays)")
    assert all(not t.filters for t in nested.tables)


def test_ctes_and_full_names_resolve() -> None:
    plan = planned("WITH de AS (SELECT listener_id FROM people.listeners.listeners "
                   "WHERE country = 'DE') SELECT people.plays.track_id FROM people.plays "
                   "JOIN de USING (listener_id)")
    assert remote(plan) == {
        "people.listeners.listeners": 'SELECT "listener_id", "country" FROM '
                                      "people.listeners.listeners AS \"listeners\" "
                                      "WHERE (listeners.country = 'DE')",
        "people.plays": 'SELECT "listener_id", "track_id" FROM people.plays AS "plays"',
    }
    assert "people." not in plan.local_sql


def test_a_count_still_fetches_one_column() -> None:
    plan = planned("SELECT count(*) FROM people.plays")
    assert remote(plan) == {"people.plays": 'SELECT "play_id" FROM people.plays AS "plays"'}


def test_an_unknown_column_fetches_whole_tables_and_fails_here() -> None:
    plan = planned("SELECT nope FROM people.plays")
    assert plan.tables[0].columns is None


@pytest.mark.parametrize("sql, message", [
    ("DELETE FROM people.plays", "send one SELECT"),
    ("SELECT 1; SELECT 2", "send one SELECT"),
    ("SELECT * FROM plays", "unknown table 'plays'"),
    ("SELECT * FROM read_csv('/etc/passwd')", "table function"),
    ("SELEC 1", "does not parse"),
])
def test_refusals(sql: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse(sql)
