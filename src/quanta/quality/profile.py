"""Column profiles of a release: null share, distinct count, min, max, mean, quantiles.

One aggregate query per port computes every column's profile in a single scan.
"""

from __future__ import annotations

from typing import Any

from quanta.engine.duckdb import DuckDBSession, quote

_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "FLOAT", "DOUBLE", "DECIMAL",
            "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")
_ORDERED = ("DATE", "TIMESTAMP", "TIME", "VARCHAR")
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def profile_table(session: DuckDBSession, table: str) -> dict[str, dict[str, Any]]:
    """Profile every column of ``table`` (a quoted name) in one scan."""
    columns = session.rows(f"SELECT column_name, column_type FROM (DESCRIBE {table})")
    parts = ["count(*)"]
    plan: list[tuple[str, list[str]]] = []
    for name, column_type in columns:
        col = quote(name)
        stats = ["nulls", "distinct"]
        parts += [f"count(*) - count({col})", f"approx_count_distinct({col})"]
        numeric = column_type.startswith(_NUMERIC)
        if numeric or column_type.startswith(_ORDERED):
            stats += ["min", "max"]
            parts += [f"min({col})", f"max({col})"]
        if numeric:
            qs = ", ".join(str(q) for q in QUANTILES)
            stats += ["mean", "quantiles"]
            parts += [f"avg({col})", f"approx_quantile({col}, [{qs}])"]
        plan.append((name, stats))
    row = session.rows(f"SELECT {', '.join(parts)} FROM {table}")[0]
    total = int(row[0])
    profile: dict[str, dict[str, Any]] = {}
    position = 1
    for name, stats in plan:
        values = row[position:position + len(stats)]
        position += len(stats)
        entry = dict(zip(stats, values, strict=True))
        entry["null_share"] = round(entry.pop("nulls") / total, 6) if total else 0.0
        for key in ("min", "max"):
            if key in entry and not isinstance(entry[key], int | float | type(None)):
                entry[key] = str(entry[key])
        if "quantiles" in entry and entry["quantiles"] is not None:
            entry["quantiles"] = dict(zip(
                [str(q) for q in QUANTILES], [float(v) for v in entry["quantiles"]],
                strict=True,
            ))
        if entry.get("mean") is not None:
            entry["mean"] = float(entry["mean"])
        if entry.get("min") is not None and isinstance(entry["min"], float):
            entry["min"], entry["max"] = float(entry["min"]), float(entry["max"])
        profile[name] = entry
    return profile
