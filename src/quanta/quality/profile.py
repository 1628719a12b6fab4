"""Column profiles of a release: null share, distinct count, min, max, mean, quantiles.

Counts, nulls, numeric and temporal ranges and means are exact, from one scan. Distinct
counts, quantiles and text ranges are estimates; on large ports they come from a sample,
and the profile says so (``sampled``: the fraction of rows they saw).
"""

from __future__ import annotations

from typing import Any

from quanta.engine.duckdb import DuckDBSession, quote

_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DECIMAL",
            "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")
_TEMPORAL = ("DATE", "TIMESTAMP", "TIME")
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
SAMPLE_ABOVE = 200_000
SAMPLE_PERCENT = 10


def profile_table(session: DuckDBSession, table: str) -> dict[str, dict[str, Any]]:
    """Profile every column of ``table`` (a quoted name)."""
    columns = session.rows(f"SELECT column_name, column_type FROM (DESCRIBE {table})")
    total = int(session.scalar(f"SELECT count(*) FROM {table}"))
    sampled = total > SAMPLE_ABOVE
    exact: list[tuple[str, str, str]] = []
    estimated: list[tuple[str, str, str]] = []
    qs = ", ".join(str(q) for q in QUANTILES)
    for name, column_type in columns:
        col = quote(name)
        exact.append((name, "nulls", f"count(*) - count({col})"))
        estimated.append((name, "distinct", f"approx_count_distinct({col})"))
        numeric = column_type.startswith(_NUMERIC)
        ranged = estimated if column_type.startswith("VARCHAR") else exact
        if numeric or column_type.startswith(_TEMPORAL) or column_type.startswith("VARCHAR"):
            ranged += [(name, "min", f"min({col})"), (name, "max", f"max({col})")]
        if numeric:
            exact.append((name, "mean", f"avg({col})"))
            estimated.append((name, "quantiles", f"approx_quantile({col}, [{qs}])"))
    source = (f"(SELECT * FROM {table} USING SAMPLE {SAMPLE_PERCENT} PERCENT (system, 42))"
              if sampled else table)
    profile: dict[str, dict[str, Any]] = {name: {} for name, _ in columns}
    for parts, relation in ((exact, table), (estimated, source)):
        if not parts:
            continue
        row = session.rows(f"SELECT {', '.join(expr for _, _, expr in parts)} FROM {relation}")[0]
        for (name, stat, _), value in zip(parts, row, strict=True):
            profile[name][stat] = value
    for entry in profile.values():
        _tidy(entry, total)
        if sampled:
            entry["sampled"] = SAMPLE_PERCENT / 100
    return profile


def _tidy(entry: dict[str, Any], total: int) -> None:
    """Make values JSON-ready: shares, floats, text for dates and decimals."""
    entry["null_share"] = round(entry.pop("nulls") / total, 6) if total else 0.0
    for key in ("min", "max"):
        value = entry.get(key)
        if value is not None and not isinstance(value, int | float | str):
            entry[key] = str(value)
    if entry.get("quantiles") is not None:
        entry["quantiles"] = dict(zip(
            [str(q) for q in QUANTILES], [float(v) for v in entry["quantiles"]], strict=True
        ))
    if entry.get("mean") is not None:
        entry["mean"] = float(entry["mean"])
