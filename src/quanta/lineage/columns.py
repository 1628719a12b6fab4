"""Column lineage of one product: which input columns each output column is made from.

SQL transforms are analysed here, with sqlglot: the query is qualified against the columns of
its inputs (a product input's columns are the upstream port's fields; a file or database
input's columns are unknown), split into scopes (CTEs, subqueries, set operations), and
each output column is followed back to the input columns it is computed from (``direct``
sources) and the columns that decide which rows it has: filters, joins, grouping, sorting
and windows (``indirect`` sources, kept per port). Where a column cannot be tied to a
column of an input (``count(*)``, an input whose columns are unknown), the source is the
input as a whole (``column`` None).

Python transforms cannot be analysed: ``quanta.lineage.ports`` reads their declared
lineage and chooses, per port, between declaration, analysis and ``unknown_lineage``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope

# how an output column is made from a source column: direct subtypes, weakest first
DIRECT = ("identity", "transformation", "aggregation")
# what a source column decides about the rows of a port: indirect subtypes
INDIRECT = ("filter", "join", "group_by", "sort", "window")
Method = Literal["sql", "declared", "unknown"]


@dataclass(frozen=True, order=True)
class ColumnSource:
    """One input column (or, with ``column`` None, a whole input) an output depends on."""

    input: str
    column: str | None
    subtype: str

    @property
    def direct(self) -> bool:
        """True when the output's values are computed from it (not only its rows chosen)."""
        return self.subtype in DIRECT or self.subtype == "unknown"

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.input, "column": self.column, "subtype": self.subtype,
                "type": "DIRECT" if self.direct else "INDIRECT"}


@dataclass(frozen=True)
class PortColumns:
    """Column lineage of one output port."""

    port: str
    method: Method
    columns: dict[str, tuple[ColumnSource, ...]]
    dataset: tuple[ColumnSource, ...] = ()
    note: str = ""

    def sources(self, column: str) -> tuple[ColumnSource, ...]:
        """The direct sources of ``column`` (empty for a constant)."""
        return self.columns.get(column, ())


Deps = dict[tuple[str, str | None], str]


def _merge(into: Deps, more: Deps) -> None:
    """Add ``more`` to ``into``, keeping the strongest subtype of each source."""
    for key, subtype in more.items():
        old = into.get(key)
        if old is None or _rank(subtype) > _rank(old):
            into[key] = subtype


def _rank(subtype: str) -> int:
    return DIRECT.index(subtype) if subtype in DIRECT else len(DIRECT)


def _stronger(deps: Deps, subtype: str) -> Deps:
    """Compose: a value made by ``subtype`` from columns made by ``deps``."""
    return {k: v if _rank(v) >= _rank(subtype) else subtype for k, v in deps.items()}


class _Resolver:
    """Follows columns through the scopes of one qualified query to the declared inputs."""

    def __init__(self, inputs: Mapping[str, list[str] | None]) -> None:
        self.inputs = inputs
        self.memo: dict[tuple[int, str | int], Deps] = {}

    # --- direct lineage ------------------------------------------------------------------

    def projection(self, scope: Scope, name: str) -> Deps:
        """Sources of the output column ``name`` of ``scope``."""
        select = scope.expression
        if isinstance(select, exp.SetOperation):
            left = scope  # the first branch names the columns of a UNION
            while left.set_operation_scopes:
                left = left.set_operation_scopes[0]
            position = _position(left.expression, name)
            return self.position(scope, position) if position is not None else {}
        if not isinstance(select, exp.Select):
            return {}
        key = (id(scope), name)
        if key in self.memo:
            return self.memo[key]
        self.memo[key] = {}  # a recursive CTE reads itself: stop there
        deps: Deps = {}
        for item in select.selects:
            if item.alias_or_name == name and not _is_star(item):
                deps = self.expression(scope, item.unalias())
                break
        else:
            for item in select.selects:
                if _is_star(item):
                    tables = [item.table] if isinstance(item, exp.Column) and item.table else \
                        list(scope.selected_sources)
                    for table in tables:
                        _merge(deps, self.column(scope, table, name))
        self.memo[key] = deps
        return deps

    def position(self, scope: Scope, index: int) -> Deps:
        """Sources of the ``index``-th output column of a set operation (UNION ...)."""
        deps: Deps = {}
        for branch in scope.set_operation_scopes:
            inner = branch.expression
            if isinstance(inner, exp.SetOperation):
                _merge(deps, self.position(branch, index))
            elif isinstance(inner, exp.Select) and index < len(inner.selects):
                _merge(deps, self.projection(branch, inner.selects[index].alias_or_name))
        return deps

    def expression(self, scope: Scope, node: exp.Expr) -> Deps:
        """Sources of an expression evaluated in ``scope``, composed with how it uses them."""
        how = "identity" if isinstance(node, exp.Column) else (
            "aggregation" if _has_aggregate(node) else "transformation")
        deps = self.columns(scope, node)
        if not deps and _reads_rows(node):
            deps = self.whole(scope)  # count(*): the rows of every source
        return _stronger(deps, how)

    def columns(self, scope: Scope, node: exp.Expr) -> Deps:
        """Sources of every column and subquery in ``node`` (not composed)."""
        deps: Deps = {}
        for item in _own_nodes(node):
            if isinstance(item, exp.Column) and not isinstance(item.this, exp.Star):
                _merge(deps, self.column(scope, item.table, item.name))
            elif isinstance(item, exp.Query):
                child = _child_scope(scope, item)
                if child is not None:
                    _merge(deps, self.subquery(scope, child))
        return deps

    def subquery(self, scope: Scope, child: Scope) -> Deps:
        """A scalar or IN subquery: its output columns and the outer columns it reads."""
        deps: Deps = {}
        query = child.expression
        if isinstance(query, exp.Select):
            for item in query.selects:
                _merge(deps, self.projection(child, item.alias_or_name))
        elif isinstance(query, exp.SetOperation):
            _merge(deps, self.position(child, 0))
        for column in child.external_columns:
            _merge(deps, self.column(scope, column.table, column.name))
        return deps

    def column(self, scope: Scope, table: str, name: str) -> Deps:
        """Sources of the column ``table.name`` seen from ``scope`` (table may be empty)."""
        if not table:
            candidates = list(scope.selected_sources)
            if len(candidates) > 1:
                known = [t for t in candidates if self._has(scope.sources[t], name)]
                if len(known) == 1:
                    candidates = known
                elif not known:  # an input of unknown columns holds it, but which one?
                    deps: Deps = {}
                    for t in candidates:
                        source = scope.sources[t]
                        if isinstance(source, exp.Table) and source.name in self.inputs:
                            deps[(source.name, None)] = "transformation"
                    return deps
            if not candidates:
                return {}
            table = candidates[0]
        if table not in scope.sources:
            parent = scope.parent
            return self.column(parent, table, name) if parent is not None else {}
        source = scope.sources[table]
        if isinstance(source, Scope):
            return self.projection(source, name)
        if isinstance(source, exp.Table) and source.name in self.inputs:
            return {(source.name, name): "identity"}
        return {}

    def whole(self, scope: Scope) -> Deps:
        """Every input the rows of ``scope`` come from, as a whole."""
        deps: Deps = {}
        for name in scope.selected_sources:
            source = scope.sources.get(name)
            if isinstance(source, Scope):
                _merge(deps, self.whole(source) if not source.set_operation_scopes else
                       _union(self.whole(s) for s in source.set_operation_scopes))
            elif isinstance(source, exp.Table) and source.name in self.inputs:
                deps[(source.name, None)] = "aggregation"
        return deps

    def _has(self, source: object, name: str) -> bool:
        if isinstance(source, Scope):
            return isinstance(source.expression, exp.Select) and (
                _position(source.expression, name) is not None)
        if isinstance(source, exp.Table):
            known = self.inputs.get(source.name)
            return known is not None and name in known
        return False

    # --- indirect lineage ----------------------------------------------------------------

    def indirect(self, root: Scope) -> set[tuple[str, str | None, str]]:
        """Columns that choose, join, group, order or window the rows (every scope), as
        (input, column, subtype)."""
        found: set[tuple[str, str | None, str]] = set()
        for scope in root.traverse():
            select = scope.expression
            if not isinstance(select, exp.Select):
                continue
            clauses: list[tuple[str, exp.Expr | None]] = [
                ("filter", select.args.get("where")), ("filter", select.args.get("having")),
                ("filter", select.args.get("qualify")),
            ]
            clauses += [("join", j.args.get("on")) for j in select.args.get("joins") or []]
            clauses += [("window", w) for w in select.args.get("windows") or []]
            for item in select.selects:
                clauses += [("window", w) for w in item.find_all(exp.Window)]
            group = select.args.get("group")
            if group is not None and group.args.get("all"):
                for item in select.selects:  # GROUP BY ALL: every non-aggregate output
                    if not _has_aggregate(item):
                        found |= {(i, c, "group_by") for i, c in self.expression(
                            scope, item.unalias())}
            elif group is not None:
                clauses.append(("group_by", group))
            order = select.args.get("order")
            if order is not None:
                for ordered in order.expressions:
                    found |= {(i, c, "sort") for i, c in self._order_key(scope, ordered.this)}
            for subtype, clause in clauses:
                if clause is not None:
                    keys = _window_keys(clause) if isinstance(clause, exp.Window) else clause
                    found |= {(i, c, subtype) for i, c in self.columns(scope, keys)}
        return {item for item in found if item[1] is not None}

    def _order_key(self, scope: Scope, node: exp.Expr) -> Deps:
        select = scope.expression
        if (isinstance(node, exp.Column) and not node.table and isinstance(select, exp.Select)
                and _position(select, node.name) is not None):  # ORDER BY an output alias
            return self.projection(scope, node.name)
        if isinstance(node, exp.Var) and node.name.upper() == "ALL":
            deps: Deps = {}
            for item in getattr(select, "selects", []):
                _merge(deps, self.projection(scope, item.alias_or_name))
            return deps
        return self.columns(scope, node)


def _union(parts: Iterator[Deps]) -> Deps:
    deps: Deps = {}
    for part in parts:
        _merge(deps, part)
    return deps


def _window_keys(node: exp.Window) -> exp.Expr:
    """Of a window, only what partitions and orders it (its function is a projection's)."""
    keys = [*(node.args.get("partition_by") or [])]
    order = node.args.get("order")
    if order is not None:
        keys.append(order)
    return exp.Tuple(expressions=[k.copy() for k in keys])


def _is_star(node: exp.Expr) -> bool:
    return isinstance(node, exp.Star) or (
        isinstance(node, exp.Column) and isinstance(node.this, exp.Star))


def _position(select: exp.Expr, name: str) -> int | None:
    if not isinstance(select, exp.Select):
        return None
    for index, item in enumerate(select.selects):
        if item.alias_or_name == name and not _is_star(item):
            return index
    return None


def _has_aggregate(node: exp.Expr) -> bool:
    return any(isinstance(n, exp.AggFunc) for n in _own_nodes(node))


def _reads_rows(node: exp.Expr) -> bool:
    """True for ``count(*)`` and friends: values made from rows, not from any column."""
    return any(isinstance(n, exp.Star | exp.AggFunc) for n in _own_nodes(node))


def _own_nodes(node: exp.Expr) -> Iterator[exp.Expr]:
    """``node`` and its descendants, not descending into subqueries (their own scopes)."""
    stack = [node]
    while stack:
        item = stack.pop()
        yield item
        if item is not node and isinstance(item, exp.Query):
            continue
        if isinstance(item, exp.Window):  # partition and order keys choose rows: indirect
            stack.append(item.this)
            continue
        stack.extend(item.iter_expressions())


def _child_scope(scope: Scope, query: exp.Expr) -> Scope | None:
    for child in scope.subquery_scopes:
        if child.expression is query:
            return child
    return None


# --- per product -------------------------------------------------------------------------


def _sources(deps: Deps) -> tuple[ColumnSource, ...]:
    return tuple(sorted(ColumnSource(i, c, s) for (i, c), s in deps.items()))


def sql_lineage(sql: str, port: str, columns: list[str],
                inputs: Mapping[str, list[str] | None]) -> PortColumns:
    """Column lineage of a SQL transform filling ``port`` with ``columns``.

    ``inputs`` maps each declared input to its column names, or None when unknown. A query
    sqlglot cannot analyse gives every column every input as a whole, with a note.
    """
    schema: dict[str, object] = {name: dict.fromkeys(cols, "UNKNOWN")
                                 for name, cols in inputs.items() if cols}
    try:
        tree = sqlglot.parse_one(sql.strip().rstrip(";"), dialect="duckdb")
        tree = qualify(tree, schema=schema, dialect="duckdb", validate_qualify_columns=False,
                       identify=False)
        root = build_scope(tree)
        if root is None:
            return unknown_lineage(port, columns, list(inputs), "the SQL is not a query")
        resolver = _Resolver(inputs)
        found = {column: _sources(resolver.projection(root, column)) for column in columns}
        indirect = tuple(sorted(ColumnSource(*item) for item in resolver.indirect(root)))
    except Exception as exc:  # sqlglot's analysis is third-party code on the user's SQL
        text = str(exc).splitlines()[0] if str(exc) else ""
        reason = text if isinstance(exc, SqlglotError) else f"{type(exc).__name__}: {text}"
        return unknown_lineage(port, columns, list(inputs),
                               f"the SQL could not be analysed: {reason}")
    return PortColumns(port, "sql", found, indirect)


def unknown_lineage(port: str, columns: list[str], inputs: list[str], note: str) -> PortColumns:
    """Every column from every input, as a whole: what is known without analysis."""
    every = tuple(ColumnSource(name, None, "unknown") for name in sorted(inputs))
    return PortColumns(port, "unknown", dict.fromkeys(columns, every), note=note)
