"""CLI of the governance report: compliance, policies, access and fitness of the whole mesh."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from quanta.cli.main import JsonOption, MeshOption, app, boundary, context, out

if TYPE_CHECKING:
    from quanta.governance.report import Fitness, GovernanceReport, GrantDue

governance_app = typer.Typer(help="Govern the whole mesh: compliance and fitness functions.",
                             no_args_is_help=True)
app.add_typer(governance_app, name="governance")

UNITS = ((86_400, "d"), (3_600, "h"), (60, "m"), (1, "s"))


@governance_app.command("report")
@boundary
def report(
    dry: Annotated[bool, typer.Option(
        "--dry", help="do not add this report's fitness numbers to the history")] = False,
    mesh: MeshOption = None, as_json: JsonOption = False,
) -> None:
    """Standards compliance per product and domain, policies in force, expiring grants,
    pending access requests, missing SLOs, unprotected PII and the mesh's fitness functions
    with their trend."""
    ctx = context(mesh)
    found = ctx.governance_report(record=not dry)
    if as_json:
        out.print_json(json.dumps(found.to_dict()))
        return
    print_report(found)


def print_report(found: GovernanceReport) -> None:
    """The report as rich tables, one per section."""
    out.print(f"[bold]governance report of mesh '{escape(found.mesh)}'[/] "
              f"({found.generated_at:%Y-%m-%d %H:%M} UTC)")
    for problem in found.problems:
        out.print(f"[red]problem:[/] {escape(problem)}", soft_wrap=True)
    _compliance(found)
    _policies(found)
    _grants("grants expiring within 30 days", found.grants_expiring, "left")
    _grants("grants expired", found.grants_expired, "expired")
    _requests(found)
    out.print("\n[bold]products missing SLOs[/] (neither freshness nor interval_of_change)")
    out.print("  " + (escape(", ".join(found.slos_missing)) or "none"))
    _pii(found)
    _releases(found)
    _fitness(found)
    for warning in found.warnings:
        out.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    if found.recorded:
        out.print(f"\nfitness snapshot {found.snapshots} recorded in "
                  f"{escape(str(found.history_file))}", soft_wrap=True)
    else:
        out.print(f"\n--dry: nothing recorded ({found.snapshots} snapshot(s) on record)")


def _table(title: str, *columns: str) -> Table:
    out.print()
    table = Table(title=title, title_justify="left", title_style="bold", header_style="bold")
    for column in columns:
        table.add_column(column)
    return table


def _compliance(found: GovernanceReport) -> None:
    table = _table("standards compliance", "product", "complies", "errors", "warnings",
                   "error findings")
    for p in found.products:
        codes = sorted({f.code for f in p.findings if f.severity == "error"})
        table.add_row(escape(p.product), "[green]yes[/]" if p.complies else "[red]no[/]",
                      str(p.errors), str(p.warnings), escape(", ".join(codes)))
    out.print(table)
    domains = _table("by domain", "domain", "products", "complying", "errors", "warnings")
    for d in found.domains:
        domains.add_row(escape(d.domain), str(d.products), str(d.complying), str(d.errors),
                        str(d.warnings))
    out.print(domains)


def _policies(found: GovernanceReport) -> None:
    table = _table("policies in force", "product", "policy")
    for product, policies in found.policies.items():
        if not policies:
            table.add_row(escape(product), "[dim]none: only the mesh operator and grants read[/]")
        for index, words in enumerate(policies):
            table.add_row(escape(product) if index == 0 else "", escape(words))
    out.print(table)


def _address(product: str, port: str | None) -> str:
    return escape(product + (f"/{port}" if port else ""))


def _grants(title: str, grants: tuple[GrantDue, ...], column: str) -> None:
    if not grants:
        out.print(f"\n[bold]{title}[/]\n  none")
        return
    table = _table(title, "grant", "subject", "product", "purpose", "expires", column)
    for g in grants:
        table.add_row(g.id, escape(g.subject), _address(g.product, g.port),
                      escape(g.purpose or "any"), f"{g.expires_at:%Y-%m-%d %H:%M}",
                      duration(abs(g.left.total_seconds())) + (" ago" if column == "expired"
                                                               else ""))
    out.print(table)


def _requests(found: GovernanceReport) -> None:
    if not found.pending_requests:
        out.print("\n[bold]pending access requests[/]\n  none")
        return
    table = _table("pending access requests", "request", "requester", "product", "purpose",
                   "requested", "age")
    for r in found.pending_requests:
        table.add_row(r.id, escape(r.requester), _address(r.product, r.port),
                      escape(r.purpose or "any"), f"{r.requested_at:%Y-%m-%d %H:%M}",
                      duration(r.age.total_seconds()))
    out.print(table)


def _pii(found: GovernanceReport) -> None:
    if not found.pii_unprotected:
        out.print("\n[bold]PII without protection[/]\n  none")
        return
    table = _table("PII without protection", "product", "finding", "where")
    for f in found.pii_unprotected:
        where = f"{f.location.file}:{f.location.line}" if f.location else ""
        table.add_row(escape(f.product or ""), escape(f.message), escape(where))
    out.print(table)


def _releases(found: GovernanceReport) -> None:
    table = _table("latest releases", "product", "release", "blocking checks")
    for r in found.releases:
        state = ("[dim]not released[/]" if r.release is None
                 else "[green]passed[/]" if r.passing
                 else "[red]failed:[/] " + escape(", ".join(r.failed_checks)))
        table.add_row(escape(r.product), str(r.release or ""), state)
    out.print(table)


def _fitness(found: GovernanceReport) -> None:
    since = (f" (change since {found.previous_at:%Y-%m-%d %H:%M})" if found.previous_at
             else " (no earlier snapshot)")
    table = _table(f"fitness functions{since}", "fitness", "value", "previous", "change",
                   "measured on")
    for f in found.fitness:
        table.add_row(f.name, value(f, f.value),
                      value(f, f.previous), change(f), escape(f.detail))
    out.print(table)


def value(f: Fitness, number: float | None) -> str:
    """A share as a percentage, a duration in words; '—' when nothing was measured."""
    if number is None:
        return "—"
    return f"{number:.1%}" if f.unit == "share" else duration(number)


def change(f: Fitness) -> str:
    """The change since the previous snapshot, coloured by whether it is for the better."""
    delta = f.change
    if delta is None:
        return "—"
    if delta == 0:
        return "="
    better = delta > 0 if f.unit == "share" else delta < 0
    sign = "+" if delta > 0 else "-"
    text = (f"{sign}{abs(delta) * 100:.1f} pts" if f.unit == "share"
            else f"{sign}{duration(abs(delta))}")
    return f"[{'green' if better else 'red'}]{text}[/]"


def duration(seconds: float) -> str:
    """Seconds in words with the two largest units, e.g. '2d 3h' or '45s'."""
    whole = round(timedelta(seconds=seconds).total_seconds())
    parts = []
    for size, unit in UNITS:
        amount, whole = divmod(whole, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return " ".join(parts[:2]) or "0s"
