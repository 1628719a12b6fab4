"""Write a query result to the terminal or a file in the format asked for."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from rich.console import Console
from rich.markup import escape

from quanta.cli.render import arrow_table
from quanta.errors import QuantaError
from quanta.sidecar import QueryResult
from quanta.values import jsonable

FORMATS = ("table", "csv", "json", "parquet")


def write_result(out: Console, err: Console, result: QueryResult, fmt: str,
                 output: Path | None, max_rows: int) -> None:
    """Render ``result`` as ``fmt`` to ``output`` (or stdout); the snapshot goes to stderr."""
    if fmt not in FORMATS:
        raise QuantaError(f"unknown format {fmt!r}", hint=f"use one of: {', '.join(FORMATS)}",
                          code="format_invalid")
    table = result.table
    for notice in result.notices:
        err.print(f"[yellow]warning[/] {escape(notice)}", soft_wrap=True)
    if fmt == "table" and output is None:
        out.print(arrow_table(table, max_rows))
        more = table.num_rows - max_rows
        tail = f", {more:,} more not shown (use --format csv or -o FILE)" if more > 0 else ""
        err.print(f"[dim]{table.num_rows:,} rows{tail}; snapshot {result.snapshot_header()}[/]")
        for column, why in result.masked.items():
            err.print(f"[yellow]masked[/] {column} ({why})", soft_wrap=True)
        return
    if fmt == "parquet":
        if output is None and sys.stdout.isatty():
            raise QuantaError("parquet is binary; it will not be written to a terminal",
                              hint="add -o result.parquet", code="output_required")
        target = output or sys.stdout.buffer
        pq.write_table(table, target)
    elif fmt == "csv":
        buffer = io.BytesIO()
        pacsv.write_csv(table, buffer)
        _emit(buffer.getvalue(), output)
    else:
        document = {"snapshot": result.snapshot, "masked": result.masked,
                    "notices": result.notices, "rows": jsonable(table.to_pylist())}
        _emit((json.dumps(document, ensure_ascii=False) + "\n").encode(), output)
    if output is not None:
        err.print(f"[green]✓[/] wrote {table.num_rows:,} rows to {output} "
                  f"(snapshot {result.snapshot_header()})")


def _emit(data: bytes, output: Path | None) -> None:
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        output.write_bytes(data)
