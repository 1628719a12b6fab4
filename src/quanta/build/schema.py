"""Fit a transform's output to its port's declared schema, or say exactly why it does not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from quanta.engine.duckdb import DuckDBSession, literal, quote
from quanta.engine.types import arrow_type, duckdb_type
from quanta.errors import SchemaMismatchError, TransformError
from quanta.spec.models import OutputPort

RECORDED_AT = "_recorded_at"
SAMPLE_ROWS = 5

# DESCRIBE spells some types differently from how they are written in a CAST
_SAME_TYPE = {"TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ"}


def arrow_schema(port: OutputPort) -> pa.Schema:
    """The Arrow schema a port is stored with, system columns included."""
    fields = [pa.field(f.name, arrow_type(f.type), nullable=f.nullable) for f in port.fields]
    fields.append(pa.field(RECORDED_AT, pa.timestamp("us", tz="UTC"), nullable=False))
    return pa.schema(fields)


def conform(
    session: DuckDBSession, port: OutputPort, source: str, target: str, recorded_at: str,
    product: str, previous: list[Path] | None = None,
) -> int:
    """Cast ``source`` into table ``target`` with the declared schema; return its row count.

    Raises SchemaMismatchError naming the column and showing offending rows when a column is
    missing, unexpected, does not convert, or holds nulls it must not.
    """
    actual = dict(session.rows(f"SELECT column_name, column_type FROM (DESCRIBE {source})"))
    declared = [f.name for f in port.fields]
    where = f"port '{port.name}' of {product}"
    missing = [name for name in declared if name not in actual]
    if missing:
        raise SchemaMismatchError(
            f"transform output for {where} lacks column(s): {', '.join(missing)}",
            hint=f"the transform returned: {', '.join(actual) or 'no columns'}; select or alias "
            "the missing columns",
        )
    extra = [name for name in actual if name not in declared]
    if extra:
        raise SchemaMismatchError(
            f"transform output for {where} has undeclared column(s): {', '.join(extra)}",
            hint="declare them under outputs[].fields, or leave them out of the result",
        )
    casts = [f"CAST({quote(f.name)} AS {duckdb_type(f.type)}) AS {quote(f.name)}"
             for f in port.fields]
    stamp = f"TIMESTAMPTZ {literal(recorded_at)}"
    if previous and port.primary_key:
        sql = _carry_recorded_at(port, casts, source, stamp, previous)
    else:
        sql = f"SELECT {', '.join(casts)}, {stamp} AS {RECORDED_AT} FROM {source}"
    # Cast in one pass; only when that fails, or nulls appear where they must not, run the
    # slower per-column queries that say which column and which rows.
    try:
        session.load_query(target, sql)
    except duckdb.Error as exc:
        _diagnose(session, port, source, actual, where)
        raise TransformError(f"transform failed: {str(exc).splitlines()[0]}",
                             hint="fix the transform and build again") from None
    required = [f for f in port.fields if not f.nullable]
    if required:
        counts = session.rows("SELECT " + ", ".join(
            f"count(*) FILTER (WHERE {quote(f.name)} IS NULL)" for f in required
        ) + f" FROM {quote(target)}")[0]
        for field, nulls in zip(required, counts, strict=True):
            if nulls:
                _raise_if_rows(
                    session, quote(target), f"{quote(field.name)} IS NULL", "*",
                    f"column '{field.name}' of {where} is declared not nullable but has nulls",
                    "filter or fill the nulls in the transform, or declare 'nullable: true'",
                )
    return int(session.scalar(f"SELECT count(*) FROM {quote(target)}"))


def _diagnose(session: DuckDBSession, port: OutputPort, source: str, actual: dict[str, str],
              where: str) -> None:
    """Raise SchemaMismatchError for the first column whose values do not convert."""
    for field in port.fields:
        wanted = duckdb_type(field.type)
        if _SAME_TYPE.get(actual[field.name], actual[field.name]) == wanted:
            continue
        col = quote(field.name)
        _raise_if_rows(
            session, source, f"{col} IS NOT NULL AND TRY_CAST({col} AS {wanted}) IS NULL", col,
            f"column '{field.name}' of {where} has values that are not {field.type} "
            f"(transform gives {actual[field.name]})",
            f"cast or clean the column in the transform, or declare type matching "
            f"{actual[field.name]}",
        )


def _carry_recorded_at(
    port: OutputPort, casts: list[str], source: str, stamp: str, previous: list[Path]
) -> str:
    """SQL keeping each unchanged row's ``_recorded_at`` from the previous release.

    A row is unchanged when a row with the same primary key and the same values was in the
    previous release; only new or changed rows get this release's time.
    """
    names = [quote(f.name) for f in port.fields]
    keys = [quote(k) for k in port.primary_key]
    files = ", ".join(literal(str(f)) for f in previous)
    join = " AND ".join(f"n.{k} IS NOT DISTINCT FROM p.{k}" for k in keys)
    # grouping makes p unique per (key, values), so the join never multiplies rows
    return (
        f"WITH n AS (SELECT {', '.join(casts)} FROM {source}), "
        f"p AS (SELECT {', '.join(keys)}, hash({', '.join(names)}) AS __row, "
        f"min({RECORDED_AT}) AS {RECORDED_AT} FROM read_parquet([{files}]) GROUP BY ALL) "
        f"SELECT n.*, coalesce(p.{RECORDED_AT}, {stamp}) AS {RECORDED_AT} "
        f"FROM n LEFT JOIN p ON {join} "
        f"AND p.__row = hash({', '.join('n.' + name for name in names)})"
    )


def _raise_if_rows(
    session: DuckDBSession, source: str, condition: str, show: str, message: str, hint: str
) -> None:
    count = int(session.scalar(f"SELECT count(*) FROM {source} WHERE {condition}"))
    if not count:
        return
    relation = session.con.sql(f"SELECT {show} FROM {source} WHERE {condition} LIMIT {SAMPLE_ROWS}")
    sample: list[dict[str, Any]] = [
        dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()
    ]
    shown = "; ".join(", ".join(f"{k}={v!r}" for k, v in row.items()) for row in sample)
    raise SchemaMismatchError(f"{message}: {count} rows, e.g. {shown}", hint=hint)
