"""CLI of retention: remove rows older than each product's declared retention."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer

from quanta.cli.main import JsonOption, MeshOption, app, boundary, context, err, out

retention_app = typer.Typer(help="Keep no row longer than its product's declared retention.",
                            no_args_is_help=True)
app.add_typer(retention_app, name="retention")


@retention_app.command("apply")
@boundary
def retention_apply(
    products: Annotated[list[str] | None, typer.Argument(
        help="DOMAIN.PRODUCT (default: every product declaring retention)",
        show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="count what would be removed; "
                                          "change nothing")] = False,
    mesh: MeshOption = None, as_json: JsonOption = False,
) -> None:
    """Remove rows whose event time is older than the product's retention from every release
    still kept (a report is kept under <storage>/retention/)."""
    from rich.table import Table

    from quanta.control.retention import apply_retention

    ctx = context(mesh)
    report = apply_retention(ctx.sidecar, products or None, dry_run=dry_run)
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
        return
    if not report.products:
        out.print("no product declares retention; nothing to do")
        return
    table = Table(header_style="bold", title=f"retention {report.id}"
                  + (" (dry run: nothing changed)" if dry_run else ""))
    for column in ("product", "release", "port", "rows removed", "cutoff"):
        table.add_column(column)
    for entry in report.trimmed:
        cutoff = datetime.fromisoformat(entry.cutoff).strftime("%Y-%m-%d %H:%M:%S UTC")
        table.add_row(entry.product, str(entry.release), entry.port, f"{entry.rows_removed:,}",
                      cutoff)
    out.print(table)
    for product in report.products:
        if product.untimed:
            out.print(f"  {product.product}: port(s) {', '.join(product.untimed)} declare no "
                      "event_time and were left alone", soft_wrap=True)
    releases = len({(t.product, t.release) for t in report.trimmed})
    names = ", ".join(p.product for p in report.products)
    if dry_run:
        out.print(f"{report.rows_removed:,} rows older than their retention in {releases} "
                  f"release(s) of {names}", soft_wrap=True)
        return
    out.print(f"[green]✓[/] removed {report.rows_removed:,} rows older than their retention "
              f"from {releases} release(s) of {names}", soft_wrap=True)
    err.print(f"report: {ctx.mesh.storage_root / 'retention' / (report.id + '.json')}")
