"""The query gate: accept one read-only SELECT over mesh ports, and resolve its table names.

In SQL a port is the table ``<domain>.<product>.<port>`` and ``<domain>.<product>`` is the
product's first port. The engine never sees these names: each is rewritten to the name of a
relation the sidecar prepared at a pinned release.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

from quanta.address import Address
from quanta.errors import QueryError
from quanta.sidecar.functions import refused_function

REFUSED_NODES: tuple[type[exp.Expression], ...] = (
    exp.Insert, exp.Update, exp.Delete, exp.Create, exp.Drop, exp.Alter, exp.Command,
    exp.Copy, exp.Pragma, exp.Set, exp.Use, exp.Merge, exp.Attach, exp.Detach, exp.Into,
)


@dataclass(frozen=True)
class GatedQuery:
    """A query that passed the gate: the ports it reads and the SQL the engine will run."""

    text: str
    ports: tuple[Address, ...]
    rewritten: str
    tree: exp.Expr | None = field(default=None, compare=False, repr=False)


def gate(sql: str, resolve: Callable[[Address], Address],
         relation_name: Callable[[Address], str]) -> GatedQuery:
    """Parse ``sql``; refuse anything but one SELECT over mesh ports; rewrite table names."""
    try:
        return _gate(sql, resolve, relation_name)
    except RecursionError:
        raise QueryError("query is nested too deeply to check", code="query_refused",
                         hint="flatten the expression, e.g. with a CTE") from None


def _gate(sql: str, resolve: Callable[[Address], Address],
          relation_name: Callable[[Address], str]) -> GatedQuery:
    """Parse ``sql``; refuse anything but one SELECT over mesh ports; rewrite table names.

    ``resolve`` turns a written address into a full one (with port) or raises; ``relation_name``
    gives the engine-side relation for a resolved address.
    """
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        where = f" at line {first.get('line')}, column {first.get('col')}" if first else ""
        raise QueryError(
            f"query does not parse{where}: {first.get('description', 'syntax error')}",
            hint="write one SELECT in DuckDB's SQL dialect", code="query_refused",
        ) from None
    except sqlglot.errors.SqlglotError as exc:
        raise QueryError(f"query does not parse: {exc}", code="query_refused") from None
    except RecursionError:
        raise QueryError("query is nested too deeply to check", code="query_refused",
                         hint="flatten the expression, e.g. with a CTE") from None
    if len(statements) != 1:
        raise QueryError(
            f"one statement per query, got {len(statements)}",
            hint="send the statements one at a time", code="query_refused",
        )
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise QueryError(
            f"only SELECT queries are allowed, not {tree.key.upper()}",
            hint="data products are read-only; write a SELECT", code="query_refused",
        )
    for node in tree.walk():
        if isinstance(node, REFUSED_NODES):
            raise QueryError(
                f"{node.key.upper()} is not allowed in a query",
                hint="data products are read-only; write a SELECT", code="query_refused",
            )
    for function in tree.find_all(exp.Func):
        name = refused_function(function)
        if name:
            raise QueryError(
                f"function {name}() is not allowed in a query",
                hint="queries may use computations over data products, not functions that "
                "read files, settings or the system", code="query_refused",
            )
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    ports: list[Address] = []
    for table in list(tree.find_all(exp.Table)):
        if not isinstance(table.this, exp.Identifier):
            function = table.this.sql("duckdb").split("(")[0]
            raise QueryError(
                f"table function {function}(...) is not allowed",
                hint="read data products by name, e.g. listening.play_events.plays",
                code="query_refused",
            )
        parts = [p for p in (table.catalog, table.db, table.name) if p]
        if len(parts) == 1 and parts[0] in ctes:
            continue
        if len(parts) == 1:
            raise QueryError(
                f"unknown table '{parts[0]}'",
                hint="name a port as <domain>.<product>.<port> or <domain>.<product>",
                code="query_unknown_table",
            )
        address = resolve(Address.parse(".".join(parts)))
        ports.append(address)
        alias = table.alias or parts[-1]
        replacement = exp.Table(
            this=exp.to_identifier(relation_name(address), quoted=True),
            alias=exp.TableAlias(this=exp.to_identifier(alias, quoted=True)),
        )
        table.replace(replacement)
    return GatedQuery(sql, tuple(dict.fromkeys(ports)), tree.sql("duckdb", copy=False), tree)
