"""Planning a query over products served by different endpoints.

The query is parsed with sqlglot; each mesh table it names (``domain.product[.port]``) becomes
a local relation, and each gets a query of its own for the endpoint serving it: the columns the
query uses, and the filters of the query that concern that table alone. The endpoints answer
those through their sidecars (masks, row filters, grants, audit); the whole query then runs
here over what they sent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import traverse_scope

from quanta.address import Address
from quanta.errors import QueryError
from quanta.sidecar.gate import REFUSED_NODES

DIALECT = "duckdb"
# a filter holding one of these stays where the query put it
_NOT_PUSHED: tuple[type[exp.Expr], ...] = (
    exp.Subquery, exp.Select, exp.AggFunc, exp.Window, exp.Rand, exp.Anonymous, exp.Exists,
)
_INNER = ("", "INNER", "CROSS")


@dataclass
class MeshTable:
    """One mesh table a query names, and what its endpoint is asked for."""

    relation: str  # the local relation's name
    written: str  # as the query names it: domain.product or domain.product.port
    product: str  # domain.product
    alias: str
    occurrences: int = 1
    columns: list[str] | None = None  # None: every column
    filters: list[str] = field(default_factory=list)

    def remote_sql(self, available: list[str]) -> str:
        """The query its endpoint answers: the columns used (at least one, so that rows
        are counted), under the filters that concern this table alone."""
        wanted = [c for c in available if self.columns is None or c in self.columns]
        chosen = wanted or available[:1]
        listing = ", ".join(f'"{c}"' for c in chosen) if chosen else "*"
        sql = f'SELECT {listing} FROM {self.written} AS "{self.alias}"'
        if self.filters:
            sql += " WHERE " + " AND ".join(f"({f})" for f in self.filters)
        return sql


@dataclass
class FederatedPlan:
    """The mesh tables of a query and the query to run here over their local relations."""

    tables: list[MeshTable]
    local_sql: str
    tree: exp.Expr

    @property
    def products(self) -> list[str]:
        return list(dict.fromkeys(t.product for t in self.tables))


def parse(sql: str) -> FederatedPlan:
    """Parse ``sql``: one SELECT whose tables are mesh ports (or its own CTEs); each mesh
    table is renamed to a local relation."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=DIALECT) if s is not None]
    except SqlglotError as exc:
        errors = getattr(exc, "errors", None) or [{}]
        where = (f" at line {errors[0].get('line')}, column {errors[0].get('col')}"
                 if errors[0] else "")
        raise QueryError(f"query does not parse{where}: "
                         f"{errors[0].get('description', 'syntax error')}",
                         hint="write one SELECT in DuckDB's SQL dialect",
                         code="query_refused") from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise QueryError("send one SELECT query", hint="data products are read-only",
                         code="query_refused")
    tree = statements[0]
    refused = next((n for n in tree.walk() if isinstance(n, REFUSED_NODES)), None)
    if refused is not None:
        raise QueryError(f"{refused.key.upper()} is not allowed in a query",
                         hint="data products are read-only; write a SELECT",
                         code="query_refused")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    tables: dict[str, MeshTable] = {}
    for table in list(tree.find_all(exp.Table)):
        if not isinstance(table.this, exp.Identifier):
            raise QueryError(f"table function {table.this.sql(DIALECT).split('(')[0]}(...) "
                             "is not allowed", code="query_refused",
                             hint="read data products by name, e.g. domain.product.port")
        parts = [p for p in (table.catalog, table.db, table.name) if p]
        if len(parts) == 1 and parts[0] in ctes:
            continue
        if len(parts) == 1:
            raise QueryError(f"unknown table '{parts[0]}'", code="query_unknown_table",
                             hint="name a port as <domain>.<product>.<port> or "
                             "<domain>.<product>")
        written = ".".join(parts).lower()
        address = Address.parse(written)
        alias = table.alias or parts[-1]
        if written in tables:
            tables[written].occurrences += 1
        else:
            tables[written] = MeshTable(f"__mesh_{len(tables)}", written,
                                        address.product_key, alias)
        table.replace(exp.Table(this=exp.to_identifier(tables[written].relation),
                                alias=exp.TableAlias(this=exp.to_identifier(alias))))
    for column in tree.find_all(exp.Column):
        # domain.product.port.column: the column's table part is the alias, as in SQL
        path = ".".join(p for p in (column.catalog, column.table) if p)
        if column.args.get("db") and f"{column.db}.{path}".lower() in tables:
            column.set("db", None)
            column.set("catalog", None)
    return FederatedPlan(list(tables.values()), tree.sql(DIALECT), tree)


def narrow(plan: FederatedPlan, columns_of: Callable[[MeshTable], list[str]]) -> None:
    """Set each table's columns and pushed filters, from the columns each one has. Whatever
    cannot be worked out is fetched whole (correct, only slower)."""
    schema: dict[str, object] = {t.relation: dict.fromkeys(columns_of(t), "TEXT")
                                 for t in plan.tables}
    try:
        qualified = qualify(plan.tree.copy(), schema=schema, dialect=DIALECT,
                            quote_identifiers=False, validate_qualify_columns=True)
        scopes = traverse_scope(qualified)
    except (SqlglotError, RecursionError, KeyError, ValueError):
        return  # every table fetched whole; the local engine reports real mistakes
    by_relation = {t.relation: t for t in plan.tables}
    used: dict[str, set[str]] = {t.relation: set() for t in plan.tables}
    whole: set[str] = set()
    for scope in scopes:
        for node in scope.expression.find_all(exp.Star):
            if not isinstance(node.parent, exp.Count):
                whole.update(used)  # a star qualify could not expand
        for column in scope.columns:
            source = scope.sources.get(column.table)
            if isinstance(source, exp.Table) and source.name in used:
                used[source.name].add(column.name)
        _push_filters(scope, by_relation)
    for relation, names in used.items():
        by_relation[relation].columns = None if relation in whole else sorted(names)


def _push_filters(scope: object, tables: dict[str, MeshTable]) -> None:
    """Conjuncts of a SELECT's WHERE that read one mesh table alone (named once in the
    query), when every join of the SELECT is inner: its endpoint filters them first."""
    select = getattr(scope, "expression", None)
    sources = getattr(scope, "sources", {})
    if not isinstance(select, exp.Select) or select.args.get("where") is None:
        return
    if any((j.side or "").upper() or (j.kind or "").upper() not in _INNER
           for j in select.args.get("joins") or []):
        return
    for conjunct in select.args["where"].this.flatten() if isinstance(
            select.args["where"].this, exp.And) else [select.args["where"].this]:
        aliases = {c.table for c in conjunct.find_all(exp.Column)}
        if len(aliases) != 1 or conjunct.find(*_NOT_PUSHED) is not None:
            continue
        source = sources.get(next(iter(aliases)))
        if not isinstance(source, exp.Table):
            continue
        table = tables.get(source.name)
        if table is not None and table.occurrences == 1 and source.alias_or_name == table.alias:
            table.filters.append(conjunct.sql(DIALECT))
