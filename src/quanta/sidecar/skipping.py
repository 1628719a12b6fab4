"""File skipping: read only the data files whose bounds can hold the keys a query asks for.

A lookup such as ``SELECT * FROM d.p WHERE id = 'x'`` (or ``id IN (...)``) needs one file of a
release, not all of them. The rule is deliberately narrow, so skipping never changes an answer:

- the port is read exactly once, as the only table of a plain top-level SELECT;
- the WHERE clause is a conjunction with ``column = literal`` or ``column IN (literals)``
  on a column the reader sees in clear (never a masked column: its stored values are not the
  values the reader compares with);
- the literal and the column's statistics are both strings or both integers.

Anything else reads every file of the release, as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sqlglot import exp

from quanta.storage.stats import Bound, column_bounds

Lookups = dict[str, frozenset[Bound]]


def lookups(tree: exp.Expr, relation: str, clear: set[str]) -> Lookups:
    """The key values a query's WHERE clause pins, per column, for the relation ``relation``;
    only columns in ``clear`` (lower case: the port's fields the reader sees unmasked)."""
    if not isinstance(tree, exp.Select) or tree.args.get("with_"):
        return {}
    tables = [t for t in tree.find_all(exp.Table) if t.name == relation]
    source = tree.args.get("from_")
    if (len(tables) != 1 or tree.args.get("joins") or source is None
            or source.this is not tables[0]):
        return {}
    alias = tables[0].alias_or_name
    where = tree.args.get("where")
    if where is None:
        return {}
    found: dict[str, set[Bound]] = {}
    for term in _conjuncts(where.this):
        pinned = _pinned(term, alias)
        if pinned is None or pinned[0] not in clear:
            continue
        column, values = pinned
        # two terms on one column: a row must satisfy both
        found[column] = found[column] & values if column in found else values
    return {column: frozenset(values) for column, values in found.items()}


def keep(files: Iterable[Path], wanted: Lookups) -> list[Path]:
    """The files that may hold a row matching every lookup in ``wanted``."""
    files = list(files)
    if not wanted:
        return files
    return [f for f in files if _may_match(column_bounds(f), wanted)]


def _may_match(bounds: dict[str, tuple[Bound, Bound]], wanted: Lookups) -> bool:
    lowered = {name.lower(): bound for name, bound in bounds.items()}
    for column, values in wanted.items():
        bound = lowered.get(column)
        if bound is None:
            continue
        low, high = bound
        if any(type(v) is not type(low) for v in values):
            continue  # the engine casts one side; bounds of another type prove nothing
        if not any(low <= v <= high for v in values):  # type: ignore[operator]
            return False
    return True


def _conjuncts(node: exp.Expr) -> Iterable[exp.Expr]:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        yield from _conjuncts(node.left)
        yield from _conjuncts(node.right)
    else:
        yield node


def _pinned(term: exp.Expr, alias: str) -> tuple[str, set[Bound]] | None:
    if isinstance(term, exp.EQ):
        for column, value in ((term.left, term.right), (term.right, term.left)):
            literal = _literal(value)
            name = _column(column, alias)
            if name is not None and literal is not None:
                return name, {literal}
        return None
    if isinstance(term, exp.In) and not term.args.get("query") and not term.args.get("unnest"):
        name = _column(term.this, alias)
        literals = [_literal(v) for v in term.expressions]
        if name is None or not literals or any(v is None for v in literals):
            return None
        return name, {v for v in literals if v is not None}
    return None


def _column(node: exp.Expr, alias: str) -> str | None:
    if not isinstance(node, exp.Column) or (node.table and node.table != alias):
        return None
    return node.name.lower()


def _literal(node: exp.Expr) -> Bound | None:
    if not isinstance(node, exp.Literal):
        return None
    if node.is_string:
        return str(node.this)
    try:
        return int(node.this)
    except ValueError:
        return None  # decimals and floats: not compared with integer bounds
