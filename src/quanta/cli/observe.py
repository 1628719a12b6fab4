"""CLI of observability: SLO attainment with error budgets, and usage of products."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from quanta.cli.main import JsonOption, MeshOption, app, boundary, context, err, out

if TYPE_CHECKING:
    from quanta.observe import ProductUsage, SloReport, SloResult, UsageReport

SHOWN_BREACHES = 5
BARS = " ▁▂▃▄▅▆▇█"
STATUS = {"met": "[green]met[/]", "at_risk": "[yellow]at risk[/]",
          "breached": "[red]breached[/]", "unmeasured": "[dim]unmeasured[/]"}


@app.command()
@boundary
def slo(
    products: Annotated[list[str] | None, typer.Argument(
        help="DOMAIN.PRODUCT ... (default: every product)", show_default=False)] = None,
    window: Annotated[str, typer.Option(
        "--window", help="how far back to measure, e.g. 30d, 7d, 12h")] = "30d",
    objective: Annotated[float, typer.Option(
        "--objective", help="share of the time, intervals or releases that must meet each "
        "SLO (availability is held to its own declared share)")] = 0.99,
    check: Annotated[bool, typer.Option(
        "--check", help="exit 1 when any SLO is breached (for schedulers and CI)")] = False,
    mesh: MeshOption = None, as_json: JsonOption = False,
) -> None:
    """SLOs of products over a window: measured value, attainment, error budget left,
    status, and each breach with its cause."""
    from quanta.observe import parse_window

    ctx = context(mesh)
    report = ctx.slos(products or None, parse_window(window), objective)
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
    else:
        print_slos(report, window)
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    if check and report.breached():
        raise typer.Exit(1)


def print_slos(report: SloReport, window: str) -> None:
    """The SLO table, then the breaches of each SLO with their causes."""
    from quanta.observe.slo import percent

    table = Table(header_style="bold", title_justify="left", title=(
        f"SLOs over the last {window} (since {report.since:%Y-%m-%d %H:%M} UTC); each must "
        f"hold {percent(report.objective)} of the time, intervals or releases, availability "
        "its declared share of reads"))
    for column in ("product", "SLO", "objective", "measured", "attainment", "budget left",
                   "status"):
        table.add_column(column, no_wrap=column != "attainment",
                         min_width=16 if column == "attainment" else None)
    for product in report.products:
        if not product.slos:
            table.add_row(escape(product.product), "[dim]declares no SLOs[/]", "", "", "", "",
                          "")
        for index, item in enumerate(product.slos):
            attained = ("[dim]" + escape(item.note) + "[/]" if item.attainment is None
                        else f"{percent(item.attainment)} {escape(item.note)}")
            table.add_row(escape(product.product) if index == 0 else "", item.slo,
                          _objective(item), _measured(item), attained, _budget(item),
                          STATUS[item.status])
    out.print(table)
    breached = [s for p in report.products for s in p.slos if s.breaches]
    if not breached:
        out.print("no breaches in the window")
        return
    out.print("\n[bold]breaches[/]")
    for item in breached:
        out.print(f"  [bold]{escape(item.product)}[/] {item.slo}:")
        for breach in item.breaches[:SHOWN_BREACHES]:
            out.print(f"    - {escape(breach.cause)}", soft_wrap=True)
        if len(item.breaches) > SHOWN_BREACHES:
            out.print(f"    … and {len(item.breaches) - SHOWN_BREACHES} more (--json lists "
                      "them all)")


def _objective(item: SloResult) -> str:
    """The declared bound; the share of the unit it must hold is in the title."""
    from quanta.observe.slo import percent

    return f"≤ {item.declared}" if item.is_duration else f"≥ {percent(float(item.declared))}"


def _measured(item: SloResult) -> str:
    from quanta.observe.slo import in_words, percent

    if item.measured is None:
        return "—"
    if item.is_duration:
        prefix = {"freshness": "age ", "interval_of_change": "last ",
                  "timeliness": "lag "}[item.slo]
        return prefix + in_words(item.measured)
    return percent(item.measured)


def _budget(item: SloResult) -> str:
    left = item.budget_left
    if left is None:
        return "—"
    if left < 0:  # spent more than the whole budget: say how many times over
        return f"[red]none ({1 - left:.3g}x)[/]"
    return f"[{'yellow' if left < 0.25 else 'green'}]{left:.0%}[/]"


@app.command()
@boundary
def usage(
    product: Annotated[str | None, typer.Argument(
        help="DOMAIN.PRODUCT (default: every product)", show_default=False)] = None,
    days: Annotated[int, typer.Option("--days", min=1, help="days back, today included")] = 30,
    mesh: MeshOption = None, as_json: JsonOption = False,
) -> None:
    """Who reads products and how often: reads and distinct consumers per day, from the
    audit log."""
    ctx = context(mesh)
    report = ctx.usage([product] if product else None, days)
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
    elif product:
        print_product_usage(report, report.products[0])
    else:
        print_usage(report)
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)


def print_usage(report: UsageReport) -> None:
    """One row per product: reads, consumers, failures, last read and reads per day."""
    table = Table(header_style="bold", title_justify="left", title=(
        f"usage over the last {report.days} day(s) (since {report.since:%Y-%m-%d} UTC)"))
    for column in ("product", "reads", "consumers", "not ok", "last read", "reads per day"):
        table.add_column(column, justify="right" if column in ("reads", "consumers", "not ok")
                         else "left", no_wrap=True)
    for item in report.products:
        table.add_row(escape(item.product), f"{item.reads:,}", f"{item.consumers:,}",
                      f"{item.reads - item.outcomes.get('ok', 0):,}",
                      f"{item.last_read:%Y-%m-%d %H:%M}" if item.last_read else "never",
                      _bars([d.reads for d in item.days]))
    out.print(table)


def print_product_usage(report: UsageReport, item: ProductUsage) -> None:
    """One product: totals, its consumers, and each day with reads."""
    out.print(f"[bold]{escape(item.product)}[/]: {item.reads:,} read(s) by {item.consumers} "
              f"consumer(s) in the last {report.days} day(s); {item.rows:,} rows served")
    if item.outcomes:
        out.print("  outcomes: " + ", ".join(f"{k} {v:,}" for k, v in
                                             sorted(item.outcomes.items())))
    if item.principals:
        out.print("  consumers: " + escape(", ".join(f"{who} ({n:,})" for who, n in
                                                      item.principals.items())), soft_wrap=True)
    busy = [d for d in item.days if d.reads]
    if not busy:
        out.print("  no reads in this period")
        return
    table = Table(header_style="bold")
    for column in ("day", "reads", "consumers"):
        table.add_column(column, justify="left" if column == "day" else "right")
    for day in busy:
        table.add_row(day.day.isoformat(), f"{day.reads:,}", f"{day.consumers:,}")
    out.print(table)
    if len(busy) < len(item.days):
        out.print(f"  no reads on the other {len(item.days) - len(busy)} day(s)")


def _bars(values: list[int]) -> str:
    """A sparkline, oldest day first."""
    top = max(values, default=0)
    if not top:
        return "[dim]" + "·" * len(values) + "[/]"
    return "".join(BARS[0] if v == 0 else BARS[max(1, round(v / top * (len(BARS) - 1)))]
                   for v in values)
