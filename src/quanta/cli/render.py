"""Turn library results into terminal tables and JSON documents."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
from rich.table import Table

from quanta.catalog.document import product_document  # noqa: F401  (quanta show uses it)
from quanta.storage import Release, RunRecord
from quanta.values import jsonable


def dumps(value: Any) -> str:
    """Indented JSON of ``value``."""
    return json.dumps(jsonable(value), indent=2, ensure_ascii=False)


def arrow_table(table: pa.Table, max_rows: int = 50) -> Table:
    """A rich table of the first ``max_rows`` rows of an Arrow table."""
    out = Table(show_lines=False, header_style="bold")
    for field in table.schema:
        kind = field.type
        numeric = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(
            kind)
        out.add_column(f"{field.name}\n[dim]{field.type}[/]",
                       justify="right" if numeric else "left")
    for row in table.slice(0, max_rows).to_pylist():
        out.add_row(*("[dim]null[/]" if v is None else str(v) for v in row.values()))
    return out


def releases_table(key: str, releases: list[Release]) -> Table:
    out = Table(title=f"releases of {key}", header_style="bold")
    for column in ("release", "committed (UTC)", "version", "rows", "checks", "run"):
        out.add_column(column, justify="right" if column in ("release", "rows") else "left")
    for r in releases:
        out.add_row(str(r.release), f"{r.committed_at:%Y-%m-%d %H:%M:%S}", r.interface_version,
                    f"{r.rows:,}", check_summary(r), r.run_id)
    return out


def check_summary(release: Release) -> str:
    passed = sum(c.passed for c in release.checks)
    warned = sum(1 for c in release.checks if not c.passed and c.severity == "warn")
    text = f"{passed}/{len(release.checks)} passed"
    return text + (f", [yellow]{warned} warn[/]" if warned else "")


def runs_table(runs: list[RunRecord]) -> Table:
    out = Table(title="build runs", header_style="bold")
    for column in ("started (UTC)", "product", "outcome", "release", "rows", "seconds", "detail"):
        out.add_column(column, justify="right" if column in ("rows", "seconds", "release")
                       else "left")
    colors = {"released": "green", "failed": "red", "unchanged": "blue"}
    for run in runs:
        detail = (run.error or {}).get("message", "") if run.error else "; ".join(run.warnings)
        out.add_row(
            f"{run.started_at:%Y-%m-%d %H:%M:%S}", run.product,
            f"[{colors[run.outcome]}]{run.outcome}[/]", str(run.release or ""),
            f"{sum(run.rows.values()):,}" if run.rows else "", f"{run.seconds:.2f}",
            str(detail)[:120],
        )
    return out


def schema_table(port: dict[str, Any]) -> Table:
    out = Table(title=f"port {port['name']}  ([bold]{port['sql_name']}[/])",
                header_style="bold", title_justify="left")
    for column in ("field", "type", "null", "class", "polyseme", "description"):
        out.add_column(column)
    for f in port["fields"]:
        marks = []
        if f["name"] == port["event_time"]:
            marks.append("event time")
        if f["name"] in port["primary_key"]:
            marks.append("key")
        name = f["name"] + (f" [dim]({', '.join(marks)})[/]" if marks else "")
        out.add_row(name, f["type"], "yes" if f.get("nullable", True) else "no",
                    f.get("classification", ""), f.get("polyseme") or "",
                    (f.get("description") or "") + (f" [{f['unit']}]" if f.get("unit") else ""))
    return out
