"""Quality checks, each compiled to one SQL query over the release candidate.

A check counts its offending rows and keeps a small sample of them; severity ``error``
blocks the release, ``warn`` is recorded and reported. Results feed the book's quality
metrics (completeness, consistency, accuracy, precision, timeliness, validity).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb

from quanta.engine.duckdb import DuckDBSession, literal, quote
from quanta.spec.durations import parse_duration
from quanta.spec.models import ProductSpec
from quanta.storage import CheckResult
from quanta.values import jsonable

SAMPLE_ROWS = 5
DIMENSIONS = {
    "not_null": "completeness", "row_count": "completeness", "unique": "consistency",
    "referential": "consistency", "accepted_values": "accuracy", "range": "accuracy",
    "regex": "precision", "freshness": "timeliness", "sql": "validity",
}


@dataclass(frozen=True)
class CheckPlan:
    """The SQL predicate (or whole query) that finds a check's offending rows."""

    offending_sql: str
    message: Callable[[int], str]


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return literal(str(value))


def _plan(check: Any, table: str, port_event_time: str | None, input_table: str | None,
          now: datetime) -> CheckPlan:
    kind = check.check
    if kind == "not_null":
        cond = " OR ".join(f"{quote(c)} IS NULL" for c in check.columns)
        return CheckPlan(f"SELECT * FROM {table} WHERE {cond}",
                         lambda n: f"{n} rows have nulls in {', '.join(check.columns)}")
    if kind == "unique":
        cols = ", ".join(quote(c) for c in check.columns)
        return CheckPlan(
            f"SELECT {cols}, count(*) AS occurrences FROM {table} GROUP BY ALL "
            "HAVING count(*) > 1",
            lambda n: f"{n} values of ({', '.join(check.columns)}) occur more than once",
        )
    if kind == "accepted_values":
        values = ", ".join(_value(v) for v in check.values)
        return CheckPlan(
            f"SELECT * FROM {table} WHERE {quote(check.column)} NOT IN ({values})",
            lambda n: f"{n} rows have {check.column} outside the accepted values",
        )
    if kind == "range":
        parts = []
        if check.min is not None:
            parts.append(f"{quote(check.column)} < {_value(check.min)}")
        if check.max is not None:
            parts.append(f"{quote(check.column)} > {_value(check.max)}")
        return CheckPlan(
            f"SELECT * FROM {table} WHERE {' OR '.join(parts)}",
            lambda n: f"{n} rows have {check.column} outside [{check.min}, {check.max}]",
        )
    if kind == "regex":
        return CheckPlan(
            f"SELECT * FROM {table} WHERE {quote(check.column)} IS NOT NULL AND NOT "
            f"regexp_full_match(CAST({quote(check.column)} AS VARCHAR), "
            f"{literal(check.pattern)})",
            lambda n: f"{n} rows have {check.column} not matching /{check.pattern}/",
        )
    if kind == "row_count":
        low = check.min if check.min is not None else 0
        high = check.max if check.max is not None else 2**62
        return CheckPlan(
            f"SELECT count(*) AS row_count FROM {table} HAVING count(*) < {low} "
            f"OR count(*) > {high}",
            lambda n: f"row count is outside [{check.min}, {check.max}]",
        )
    if kind == "freshness":
        column = str(check.column or port_event_time)
        seconds = int(parse_duration(check.max_age).total_seconds())
        now_sql = f"TIMESTAMPTZ {literal(now.isoformat())}"
        return CheckPlan(
            f"SELECT max({quote(column)}) AS newest FROM {table} HAVING max({quote(column)}) "
            f"IS NULL OR {now_sql} - CAST(max({quote(column)}) AS TIMESTAMPTZ) > "
            f"INTERVAL {seconds} SECOND",
            lambda n: f"newest {column} is older than {check.max_age}",
        )
    if kind == "referential":
        return CheckPlan(
            f"SELECT * FROM {table} t WHERE t.{quote(check.column)} IS NOT NULL AND NOT EXISTS "
            f"(SELECT 1 FROM {input_table} r WHERE r.{quote(check.to_column)} = "
            f"t.{quote(check.column)})",
            lambda n: f"{n} rows have {check.column} values missing from "
            f"{check.input}.{check.to_column}",
        )
    if kind == "sql":
        return CheckPlan(f"WITH this AS (SELECT * FROM {table}) {check.sql}",
                         lambda n: f"{n} rows returned by the check's query")
    raise ValueError(f"unknown check {kind}")


def check_name(check: Any) -> str:
    """The check's given name, or one made of its kind and columns."""
    if check.name:
        return str(check.name)
    columns = check.named_columns()
    if len(columns) > 3:
        columns = [*columns[:2], f"and_{len(columns) - 2}_more"]
    return "_".join([check.check, *columns])


def run_checks(
    session: DuckDBSession,
    spec: ProductSpec,
    port_tables: dict[str, str],
    row_counts: dict[str, int],
    now: datetime | None = None,
) -> list[CheckResult]:
    """Run every quality check of ``spec`` against the release candidate's tables."""
    now = now or datetime.now(UTC)
    results = []
    for check in spec.quality:
        port = spec.port(check.port)
        assert port is not None  # validated when the spec loaded
        table = port_tables[port.name]
        input_table = quote(check.input) if check.check == "referential" else None
        plan = _plan(check, table, port.event_time, input_table, now)
        try:
            relation = session.con.sql(plan.offending_sql)
            failing = int(session.scalar(f"SELECT count(*) FROM ({plan.offending_sql})"))
            sample = (
                [dict(zip(relation.columns, row, strict=True))
                 for row in relation.limit(SAMPLE_ROWS).fetchall()] if failing else []
            )
            message = plan.message(failing) if failing else "passed"
        except duckdb.Error as exc:
            failing, sample = -1, []
            message = f"check could not run: {str(exc).splitlines()[0]}"
        results.append(CheckResult(
            name=check_name(check), check=check.check, port=port.name, severity=check.severity,
            passed=failing == 0, failing_rows=max(failing, 0), total_rows=row_counts[port.name],
            message=message, sample=[jsonable(r) for r in sample],
            dimension=DIMENSIONS.get(check.check),
        ))
    return results


def quality_metrics(results: list[CheckResult]) -> dict[str, float]:
    """Share of rows passing, per quality dimension (the weakest check of each counts)."""
    metrics: dict[str, float] = {}
    for result in results:
        if result.dimension is None:
            continue
        if result.check in ("row_count", "freshness"):
            score = 1.0 if result.passed else 0.0
        elif result.total_rows:
            score = 1.0 - min(result.failing_rows, result.total_rows) / result.total_rows
        else:
            score = 1.0 if result.passed else 0.0
        metrics[result.dimension] = min(metrics.get(result.dimension, 1.0), round(score, 6))
    if results:
        metrics["check_pass_rate"] = round(sum(r.passed for r in results) / len(results), 6)
    return metrics
