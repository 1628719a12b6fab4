"""CLI of release history: ``quanta vacuum`` expires old releases and reclaims their files."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape

from quanta.cli.main import JsonOption, MeshOption, app, boundary, context, err, out
from quanta.cli.security import AsOption, GroupOption, acting


def _size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} TB"


def _numbers(items: list[int]) -> str:
    """``1-4, 7`` for [1, 2, 3, 4, 7]."""
    runs: list[str] = []
    for n in sorted(items):
        if runs and runs[-1].split("-")[-1] == str(n - 1):
            runs[-1] = f"{runs[-1].split('-')[0]}-{n}"
        else:
            runs.append(str(n))
    return ", ".join(runs) or "-"


@app.command()
@boundary
def vacuum(
    products: Annotated[list[str] | None, typer.Argument(
        help="DOMAIN.PRODUCT (default: every product)", show_default=False)] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="say which releases would "
                                          "expire and what would be reclaimed; change "
                                          "nothing")] = False,
    as_principal: AsOption = None, group: GroupOption = None,
    mesh: MeshOption = None, as_json: JsonOption = False,
) -> None:
    """Expire the releases each product's release history rule lets go and delete the data
    files no kept release needs (reads of an expired release name the oldest available)."""
    from rich.table import Table

    from quanta.catalog import registry
    from quanta.control.history import vacuum as run

    ctx = context(mesh)
    report = run(ctx.sidecar, products or None, acting(ctx, as_principal, group),
                 dry_run=dry_run)
    changed = [p.product for p in report.products if p.expired and not dry_run]
    if changed:  # discovery documents list releases and the oldest available one
        for problem in registry.publish(ctx.mesh, changed, ctx.catalog).problems:
            err.print(f"[yellow]warning:[/] {escape(problem.render())}", soft_wrap=True)
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
        return
    table = Table(header_style="bold", title=f"vacuum {report.id}"
                  + (" (dry run: nothing changed)" if dry_run else ""))
    for column in ("product", "rule", "expired", "oldest available", "files", "reclaimed"):
        table.add_column(column, justify="right" if column in ("files", "reclaimed") else
                         "left")
    for item in report.products:
        if not item.kept and not item.expired and not item.skipped:
            continue  # never built
        table.add_row(item.product, item.rule, _numbers(item.expired),
                      str(item.oldest_available or "-"), f"{item.files_deleted:,}",
                      _size(item.bytes_reclaimed))
    out.print(table)
    for item in report.products:
        if item.skipped:
            out.print(f"  [yellow]skipped[/] {item.product}: {escape(item.skipped)}",
                      soft_wrap=True)
        if item.orphans:
            out.print(f"  {item.product}: {item.orphans} file(s) left by builds that were "
                      "killed before their release (counted above)", soft_wrap=True)
    verb = "would reclaim" if dry_run else "[green]✓[/] reclaimed"
    expired = sum(len(p.expired) for p in report.products)
    out.print(f"{verb} {report.files_deleted:,} file(s), {_size(report.bytes_reclaimed)}; "
              f"{expired} release(s) {'would expire' if dry_run else 'expired'}")
    if not dry_run:
        err.print(f"report: {ctx.mesh.storage_root / 'vacuum' / (report.id + '.json')}")
