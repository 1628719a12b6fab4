"""Checks and profiles of a release built incrementally, which describe the whole port while
reading as little of the kept data files as they can.

The kept files hold rows of the previous release, unchanged. So a row-level check (not_null,
accepted_values, range, regex) that the previous release passed under the same definitions
cannot fail on them: it runs on the written rows only. A unique check also looks for the
written rows' values in the kept files whose statistics allow them. Every other check, and
any check without such a previous result, runs on the whole port.

The profile takes row counts, null counts and ranges from the kept files' Parquet footers,
means from a scan of the numeric columns, and distinct counts and quantiles from a sample
of whole row groups (the share of rows a full build's profile samples too).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from quanta.engine.duckdb import DuckDBSession, literal, quote
from quanta.quality.checks import run_checks
from quanta.quality.profile import (
    _NUMERIC,
    _TEMPORAL,
    QUANTILES,
    SAMPLE_ABOVE,
    SAMPLE_PERCENT,
    _tidy,
    profile_table,
)
from quanta.spec.models import ProductSpec
from quanta.storage import CheckResult, DataFile, Release
from quanta.storage.stats import Bound, column_bounds, may_overlap

ROW_LEVEL = {"not_null", "accepted_values", "range", "regex"}


@dataclass(frozen=True)
class PortParts:
    """One port of an incremental build: the previous release's files it keeps, the table
    of rows it writes, and a view of the whole port as it will be released."""

    keep: list[DataFile]
    kept_files: list[Path]
    table: str
    view: str
    rows: int
    clean_keys: bool = False
    """No written row's primary key is in a kept file (a merge made sure)."""


def run_release_checks(
    session: DuckDBSession, spec: ProductSpec, parts: dict[str, PortParts],
    rows: dict[str, int], previous: Release, reusable: bool,
) -> list[CheckResult]:
    """Every check of ``spec`` on the ports as released. ``reusable``: the previous
    release's checks had the same definitions, so its results hold for the kept rows."""
    results = []
    before = previous.checks if reusable and len(previous.checks) == len(spec.quality) else []
    for index, check in enumerate(spec.quality):
        port = spec.port(check.port)
        assert port is not None  # validated when the spec loaded
        part = parts[port.name]
        earlier = before[index] if before else None
        clean = earlier is not None and earlier.passed and earlier.failing_rows == 0
        scope = part.view
        if clean and check.check in ROW_LEVEL:
            scope = part.table
        elif clean and check.check == "unique":
            columns = list(check.columns)
            settled = part.clean_keys and set(port.primary_key) <= set(columns)
            if settled or not _may_repeat(session, part, columns):
                scope = part.table
        one = spec.model_copy(update={"quality": [check]})
        results += run_checks(session, one, {port.name: scope}, rows)
    return results


def value_bounds(session: DuckDBSession, table: str, columns: list[str]
                 ) -> dict[str, tuple[Bound, Bound] | None] | None:
    """Lowest and highest value of each of ``columns`` in ``table`` (None: no rows); a column
    whose values are not text or integers has unknown (None) bounds."""
    parts = ", ".join(f"min({quote(c)}), max({quote(c)})" for c in columns)
    row = session.rows(f"SELECT count(*), {parts} FROM {table}")[0]
    if not row[0]:
        return None
    found: dict[str, tuple[Bound, Bound] | None] = {}
    for index, column in enumerate(columns):
        low, high = row[1 + 2 * index], row[2 + 2 * index]
        usable = all(isinstance(v, str | int) and not isinstance(v, bool) for v in (low, high))
        found[column] = (low, high) if usable else None
    return found


def _may_repeat(session: DuckDBSession, part: PortParts, columns: list[str]) -> bool:
    """True unless no written row's ``columns`` values occur in the kept files."""
    if not part.kept_files:
        return False
    nulls = " OR ".join(f"{quote(c)} IS NULL" for c in columns)
    if int(session.scalar(f"SELECT count(*) FROM {part.table} WHERE {nulls}")):
        return True  # unique counts null as a value, which statistics do not bound
    bounds = value_bounds(session, part.table, columns)
    if bounds is None:
        return False
    files = [f for f in part.kept_files if may_overlap(column_bounds(f), bounds)]
    if not files:
        return False
    listing = ", ".join(literal(str(f)) for f in files)
    match = " AND ".join(f"k.{quote(c)} = n.{quote(c)}" for c in columns)
    return bool(int(session.scalar(
        f"SELECT count(*) FROM (SELECT DISTINCT {', '.join(quote(c) for c in columns)} FROM "
        f"{part.table}) n WHERE EXISTS (SELECT 1 FROM read_parquet([{listing}]) k "
        f"WHERE {match})")))


def profile_release(session: DuckDBSession, table: str, view: str, kept_files: list[Path],
                    total: int) -> dict[str, dict[str, Any]]:
    """The profile of a port released as ``kept_files`` plus ``table`` (``view``: both),
    with the same statistics as ``profile_table`` of the whole port."""
    if not kept_files:
        return profile_table(session, table)
    columns = session.rows(f"SELECT column_name, column_type FROM (DESCRIBE {table})")
    footers = _footer_facts(kept_files)
    exact: list[str] = []
    for name, _ in columns:
        col = quote(name)
        exact += [f"count(*) - count({col})", f"min({col})", f"max({col})"]
    written = session.rows(f"SELECT {', '.join(exact)} FROM {table}")[0]
    profile: dict[str, dict[str, Any]] = {}
    scan: list[tuple[str, str, str]] = []
    for index, (name, column_type) in enumerate(columns):
        nulls, low, high = written[3 * index: 3 * index + 3]
        entry: dict[str, Any] = {}
        kept = footers.get(name)
        if kept is None or kept[0] is None:
            scan.append((name, "nulls", f"count(*) - count({quote(name)})"))
        else:
            entry["nulls"] = kept[0] + nulls
        ranged = column_type.startswith((*_NUMERIC, *_TEMPORAL, "VARCHAR"))
        if ranged:
            if kept is not None and kept[1] is not None and _comparable(kept[1:], (low, high)):
                entry["min"] = kept[1] if low is None else min(kept[1], low)
                entry["max"] = kept[2] if high is None else max(kept[2], high)
            else:
                scan += [(name, "min", f"min({quote(name)})"), (name, "max", f"max({quote(name)})")]
        if column_type.startswith(_NUMERIC):
            scan.append((name, "mean", f"avg({quote(name)})"))
        profile[name] = entry
    if scan:
        row = session.rows(f"SELECT {', '.join(expr for _, _, expr in scan)} FROM {view}")[0]
        for (name, stat, _), value in zip(scan, row, strict=True):
            profile[name][stat] = value
    sampled = total > SAMPLE_ABOVE
    source = _sample(table, kept_files, columns) if sampled else view
    qs = ", ".join(str(q) for q in QUANTILES)
    estimated: list[tuple[str, str, str]] = []
    for name, column_type in columns:
        estimated.append((name, "distinct", f"approx_count_distinct({quote(name)})"))
        if column_type.startswith(_NUMERIC):
            estimated.append((name, "quantiles", f"approx_quantile({quote(name)}, [{qs}])"))
    row = session.rows(f"SELECT {', '.join(e for _, _, e in estimated)} FROM {source}")[0]
    for (name, stat, _), value in zip(estimated, row, strict=True):
        profile[name][stat] = value
    ordered: dict[str, dict[str, Any]] = {}
    stats: tuple[str, ...] = ("nulls", "min", "max", "mean", "distinct", "quantiles")
    for name, _ in columns:  # the order of profile_table's entries
        entry = profile[name]
        ordered[name] = {k: entry[k] for k in stats if k in entry}
        _tidy(ordered[name], total)
        if sampled:
            ordered[name]["sampled"] = SAMPLE_PERCENT / 100
    return ordered


def _sample(table: str, kept_files: list[Path], columns: list[tuple[str, str]]) -> str:
    """Whole row groups, one in ``100 / SAMPLE_PERCENT``, of the kept files (Parquet row
    groups are skipped unread), and the same share of the written rows."""
    from quanta.storage.products import ROW_GROUP_ROWS

    names = ", ".join(quote(name) for name, _ in columns)
    listing = ", ".join(literal(str(f)) for f in kept_files)
    every = ROW_GROUP_ROWS * (100 // SAMPLE_PERCENT)
    return (f"(SELECT {names} FROM read_parquet([{listing}]) "
            f"WHERE file_row_number % {every} < {ROW_GROUP_ROWS} UNION ALL "
            f"SELECT {names} FROM {table} USING SAMPLE {SAMPLE_PERCENT} PERCENT (system, 42))")


Facts = tuple[int | None, Any, Any]


def _footer_facts(files: list[Path]) -> dict[str, Facts]:
    """Per column of ``files``: nulls, lowest and highest value, from their Parquet footers
    (None where a row group lacks the statistic)."""
    facts: dict[str, Facts] = {}
    for file in files:
        for name, (nulls, low, high) in _file_facts(file).items():
            have = facts.get(name)
            if have is None:
                facts[name] = (nulls, low, high)
                continue
            facts[name] = (None if have[0] is None or nulls is None else have[0] + nulls,
                           _pick(have[1], low, min), _pick(have[2], high, max))
    return {name: (n, None if lo is _NONE else lo, None if hi is _NONE else hi)
            for name, (n, lo, hi) in facts.items()}


# Released data files never change: their facts are read once per process (a runner builds
# the same product again and again on top of the same files).
_facts: dict[tuple[str, int, int], dict[str, Facts]] = {}


def _file_facts(file: Path) -> dict[str, Facts]:
    stat = file.stat()
    key = (str(file), stat.st_size, stat.st_mtime_ns)
    if key not in _facts:
        if len(_facts) > 4096:
            _facts.clear()
        _facts[key] = _read_facts(file)
    return _facts[key]


def _read_facts(file: Path) -> dict[str, Facts]:
    facts: dict[str, Facts] = {}
    metadata = pq.ParquetFile(file).metadata
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for index in range(row_group.num_columns):
            chunk = row_group.column(index)
            nulls, low, high = facts.get(chunk.path_in_schema, (0, _NONE, _NONE))
            stats = chunk.statistics
            counted = stats is not None and stats.has_null_count
            if nulls is not None:
                nulls = nulls + stats.null_count if counted and stats else None
            if stats is not None and stats.has_min_max and not _cut(stats.min, stats.max):
                low, high = _pick(low, stats.min, min), _pick(high, stats.max, max)
            elif not (counted and stats and stats.null_count == row_group.num_rows):
                low = high = None  # values without a range: unknown
            facts[chunk.path_in_schema] = (nulls, low, high)
    return facts


def _cut(*values: Any) -> bool:
    """Long strings' statistics are cut (the maximum's last character raised): bounds, but
    not values of the column."""
    return any(isinstance(v, str) and len(v) >= STATISTICS_CUT for v in values)


STATISTICS_CUT = 255
_NONE: Any = object()  # no value seen yet (None: unknown)


def _pick(current: Any, value: Any, pick: Any) -> Any:
    """``pick`` of two bounds; None (unknown) wins, _NONE (nothing seen) loses."""
    if current is None or value is None:
        return None
    if current is _NONE or value is _NONE:
        return value if current is _NONE else current
    if type(current) is not type(value):
        return None
    return pick(current, value)


def _comparable(kept: tuple[Any, Any], written: tuple[Any, Any]) -> bool:
    """Footer values and engine values of one column can be combined (same Python type)."""
    kinds = (int, float, str, Decimal, datetime, date, bool)
    for value in (*kept, *written):
        if value is not None and not isinstance(value, kinds):
            return False
    types = {type(v) for v in (*kept, *written) if v is not None}
    return len(types) <= 1

