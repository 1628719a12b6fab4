"""Row-filter conditions: one SQL boolean expression over a port's own columns."""

from __future__ import annotations

import sqlglot
from sqlglot import exp

_REFUSED = (exp.Query, exp.Subquery, exp.Table, exp.Exists, exp.Placeholder, exp.Window)


def parse_condition(text: str, columns: set[str]) -> exp.Condition:
    """Parse ``text``; raise ValueError unless it reads only ``columns`` of one row."""
    try:
        tree = sqlglot.parse_one(text, read="duckdb", into=exp.Condition)
    except sqlglot.errors.SqlglotError as exc:
        raise ValueError(f"condition does not parse: {str(exc).splitlines()[0]}") from None
    for node in tree.walk():
        if isinstance(node, _REFUSED):
            raise ValueError(
                "a row filter may use only the port's columns, constants and functions, "
                "not subqueries, tables or windows"
            )
        if isinstance(node, exp.Column):
            if node.table:
                raise ValueError(f"write '{node.name}', not '{node.sql()}': "
                                 "a row filter reads one port")
            if node.name not in columns:
                raise ValueError(f"row filter names unknown column '{node.name}'")
    return tree
