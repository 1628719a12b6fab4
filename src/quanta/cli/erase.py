"""CLI of erasure: remove a data subject from every product carrying their polyseme."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from quanta.cli.main import JsonOption, MeshOption, app, boundary, context, err, out


@app.command()
@boundary
def erase(
    polyseme: Annotated[str, typer.Option(help="the concept identifying the subject, "
                                          "e.g. listener_id")],
    value: Annotated[str, typer.Option(help="the subject's value, e.g. l000042")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count what would be removed; "
                                          "change nothing")] = False,
    mesh: MeshOption = None, as_json: JsonOption = False,
) -> None:
    """Remove a subject's rows from every release of every product carrying the polyseme,
    then verify that no trace is left (a report is kept under <storage>/erasures/)."""
    from rich.table import Table

    from quanta.control.erasure import erase as run_erasure

    ctx = context(mesh)
    report = run_erasure(ctx.sidecar, polyseme, value, dry_run=dry_run)
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
        return
    table = Table(header_style="bold", title=f"erasure {report.id}"
                  + (" (dry run: nothing changed)" if dry_run else ""))
    for column in ("product", "release", "port", "rows removed"):
        table.add_column(column)
    for entry in report.erased:
        table.add_row(entry.product, str(entry.release), entry.port, f"{entry.rows_removed:,}")
    out.print(table)
    if dry_run:
        out.print(f"{report.rows_removed:,} rows of subject {report.subject} in "
                  f"{len(report.erased)} port release(s) of {', '.join(report.products)}")
        return
    out.print(f"[green]✓[/] removed {report.rows_removed:,} rows of subject {report.subject}; "
              f"verified {report.verified_files} files: no trace left; "
              f"{len(report.scrubbed_files)} metadata file(s) scrubbed", soft_wrap=True)
    err.print(f"report: {ctx.mesh.storage_root / 'erasures' / (report.id + '.json')}")
