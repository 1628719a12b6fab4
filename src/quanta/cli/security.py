"""CLI commands of the sidecar: tokens, grants and the audit log."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from quanta.cli.main import JsonOption, MeshOption, app, boundary, context, err, out
from quanta.errors import QuantaError

if TYPE_CHECKING:
    from quanta.context import MeshContext
    from quanta.sidecar import Principal

SUBJECT = re.compile(r"^(group:)?[A-Za-z0-9_.@:-]+$")

token_app = typer.Typer(help="Create, list and revoke bearer tokens.", no_args_is_help=True)
audit_app = typer.Typer(help="Inspect and verify the audit log.", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(audit_app, name="audit")


def check_subject(text: str) -> str:
    if not SUBJECT.match(text):
        raise QuantaError(f"{text!r} is not a principal or group",
                          hint="write a name like alice or svc-churn, or group:analysts",
                          code="subject_invalid")
    return text


AsOption = Annotated[str | None, typer.Option(
    "--as", help="who acts (default: the mesh operator)")]
GroupOption = Annotated[list[str] | None, typer.Option(help="a group of --as (repeatable)")]


def acting(ctx: MeshContext, name: str | None, groups: list[str] | None) -> Principal:
    """The principal a control command acts as: ``--as`` in ``--group``s, or the operator."""
    if name is None:
        return ctx.sidecar.operator()
    check_subject(name)
    return ctx.principal(name, groups)


def parse_expiry(text: str | None) -> timedelta | None:
    from quanta.spec.durations import parse_duration

    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise QuantaError(f"--expires {text}: {exc}", code="duration_invalid") from None


@token_app.command("create")
@boundary
def token_create(
    principal: Annotated[str, typer.Argument(help="who the token authenticates")],
    group: Annotated[list[str] | None, typer.Option(help="a group of the principal")] = None,
    expires: Annotated[str | None, typer.Option(help="lifetime, e.g. 30d")] = None,
    mesh: MeshOption = None,
) -> None:
    """Create a token; it is shown once and stored only as a hash."""
    check_subject(principal)
    for name in group or []:
        check_subject(f"group:{name}")
    ctx = context(mesh)
    token, record = ctx.sidecar.tokens.create(principal, group, parse_expiry(expires))
    out.print(token, highlight=False, soft_wrap=True)
    err.print(f"[green]✓[/] token {record.id} for {principal}"
              + (f" (groups: {', '.join(record.groups)})" if record.groups else "")
              + (f", expires {record.expires_at[:19]}" if record.expires_at else "")
              + "\n  store it now: it cannot be shown again")


@token_app.command("list")
@boundary
def token_list(mesh: MeshOption = None, as_json: JsonOption = False) -> None:
    """List tokens (never their secrets)."""
    from dataclasses import asdict

    from rich.table import Table

    ctx = context(mesh)
    records = ctx.sidecar.tokens.records()
    if as_json:
        out.print_json(json.dumps([{k: v for k, v in asdict(r).items() if k != "digest"}
                                   for r in records]))
        return
    table = Table(header_style="bold", title="tokens")
    for column in ("id", "principal", "groups", "created", "expires", "state"):
        table.add_column(column)
    for r in records:
        table.add_row(r.id, r.principal, ", ".join(r.groups), r.created_at[:19],
                      (r.expires_at or "")[:19], "revoked" if r.revoked_at else "active")
    out.print(table)


@token_app.command("revoke")
@boundary
def token_revoke(
    token: Annotated[str, typer.Argument(help="token id, or a principal to revoke all theirs")],
    mesh: MeshOption = None,
) -> None:
    """Revoke a token (or every token of a principal); effective at once."""
    ctx = context(mesh)
    for record in ctx.sidecar.tokens.revoke(token):
        out.print(f"[green]✓[/] revoked token {record.id} of {record.principal}")


@app.command()
@boundary
def grant(
    subject: Annotated[str, typer.Argument(help="a principal, or group:<name>")],
    address: Annotated[str, typer.Argument(help="quanta://domain/product[/port]")],
    purpose: Annotated[str | None, typer.Option(help="only for this purpose")] = None,
    expires: Annotated[str | None, typer.Option(help="lifetime, e.g. 90d")] = None,
    mesh: MeshOption = None,
) -> None:
    """Let a principal or group read a product (or one port); effective at once."""
    from quanta.address import Address
    from quanta.control.grants import grant as give

    check_subject(subject)
    ctx = context(mesh)
    parsed = Address.parse(address)
    record = give(ctx.sidecar, ctx.sidecar.operator(), subject, parsed, purpose,
                  parse_expiry(expires))
    out.print(f"[green]✓[/] {subject} may read {parsed}"
              + (f" for {purpose}" if purpose else "")
              + (f" until {record.expires_at[:19]}" if record.expires_at else "")
              + f" (grant {record.id})")


@app.command()
@boundary
def revoke(
    subject: Annotated[str, typer.Argument(help="a principal, or group:<name>")],
    address: Annotated[str, typer.Argument(help="quanta://domain/product[/port]")],
    purpose: Annotated[str | None, typer.Option(help="only the grant for this purpose")] = None,
    mesh: MeshOption = None,
) -> None:
    """Remove grants; new queries are refused at once."""
    from quanta.control.grants import revoke as take

    ctx = context(mesh)
    for record in take(ctx.sidecar, ctx.sidecar.operator(), subject, address, purpose):
        out.print(f"[green]✓[/] revoked grant {record.id}: {record.subject} on "
                  f"{record.product}" + (f"/{record.port}" if record.port else ""))


@app.command()
@boundary
def grants(mesh: MeshOption = None, as_json: JsonOption = False) -> None:
    """List the grants made with 'quanta grant' (spec policies are shown by 'quanta show')."""
    from dataclasses import asdict

    from rich.table import Table

    ctx = context(mesh)
    records = ctx.sidecar.grants.grants()
    if as_json:
        out.print_json(json.dumps([asdict(g) for g in records]))
        return
    table = Table(header_style="bold", title="grants")
    for column in ("id", "subject", "product", "port", "purpose", "expires"):
        table.add_column(column)
    for g in records:
        table.add_row(g.id, g.subject, g.product, g.port or "*", g.purpose or "any",
                      (g.expires_at or "never")[:19])
    out.print(table)


@audit_app.command("verify")
@boundary
def audit_verify(mesh: MeshOption = None, as_json: JsonOption = False) -> None:
    """Check the audit log's hash chain; exit 1 when any record was edited, removed or moved."""
    ctx = context(mesh)
    report = ctx.sidecar.audit.verify()
    if as_json:
        out.print_json(json.dumps({"ok": report.ok, "records": report.records,
                                   "problems": report.problems}))
    else:
        for problem in report.problems:
            out.print(f"[red]✗[/] {problem}", soft_wrap=True)
        if report.ok:
            out.print(f"[green]✓[/] {report.records} audit records, chain intact")
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command("tail")
@boundary
def audit_tail(
    count: Annotated[int, typer.Option("-n", help="records to show")] = 20,
    mesh: MeshOption = None, as_json: JsonOption = False,
) -> None:
    """Show the newest audit records."""
    from rich.table import Table

    ctx = context(mesh)
    records = ctx.sidecar.audit.tail(count)
    if as_json:
        out.print_json(json.dumps(records, default=str))
        return
    table = Table(header_style="bold", title="audit log (newest last)")
    for column in ("seq", "time (UTC)", "principal", "mode", "outcome", "rows", "ms", "query"):
        table.add_column(column, justify="right" if column in ("seq", "rows", "ms") else "left")
    for r in records:
        detail = r.get("query") or (r.get("error") or {}).get("message", "")
        table.add_row(str(r["seq"]), str(r["time"])[:19], str(r.get("principal")),
                      str(r.get("mode", "")), str(r.get("outcome")), str(r.get("rows", "")),
                      str(r.get("duration_ms", "")), str(detail)[:60])
    out.print(table)



policy_app = typer.Typer(help="Explain how policies apply.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")


@policy_app.command("explain")
@boundary
def policy_explain(
    sql: Annotated[str, typer.Argument(help="the query to explain")],
    as_principal: Annotated[str | None, typer.Option(
        "--as", help="the principal (default: the mesh operator)")] = None,
    group: Annotated[list[str] | None, typer.Option(help="a group of --as (repeatable)")] = None,
    purpose: Annotated[str | None, typer.Option(help="the purpose of the query")] = None,
    mesh: MeshOption = None, as_json: JsonOption = False,
) -> None:
    """Which policies let a principal read each port, what they mask and filter, and the
    query the engine would run."""
    import sqlglot

    ctx = context(mesh)
    who = ctx.principal(as_principal, group) if as_principal else None
    report = ctx.sidecar.explain(who or ctx.sidecar.operator(), sql, purpose=purpose)
    if as_json:
        out.print_json(json.dumps(report, default=str))
        return
    out.print(f"[bold]{report['principal']}[/]" + (f" for purpose '{purpose}'" if purpose
                                                    else ""))
    for port in report["ports"]:
        mark = "[green]allowed[/]" if port["allowed"] else "[red]denied[/]"
        out.print(f"\n{mark} {port['port']}")
        for why in port["why"]:
            out.print(f"  because: {why}", soft_wrap=True)
        if port.get("hint"):
            out.print(f"  hint: {port['hint']}", soft_wrap=True)
        for column, how in (port.get("masked") or {}).items():
            out.print(f"  [yellow]masked[/] {column.rsplit('.', 1)[-1]}: {how}", soft_wrap=True)
        for condition in port.get("row_filters") or []:
            out.print(f"  [yellow]rows[/] only where {condition}", soft_wrap=True)
        for consent in port.get("consents") or []:
            out.print(f"  [yellow]rows[/] only where {consent}", soft_wrap=True)
    if report.get("rewritten"):
        pretty = sqlglot.transpile(report["rewritten"], read="duckdb", write="duckdb",
                                   pretty=True)[0]
        out.print("\n[bold]the engine runs[/]")
        out.print(pretty, highlight=False, soft_wrap=True)
    if not report["allowed"]:
        raise typer.Exit(1)


@policy_app.command("test")
@boundary
def policy_test(mesh: MeshOption = None, as_json: JsonOption = False) -> None:
    """Run the policy tests (*.test.yaml in the policy folders, policies.test.yaml beside
    products): each request must get the decision it expects. Exit 1 on any failure."""
    from dataclasses import asdict

    from rich.markup import escape

    from quanta.control.policy_tests import run_policy_tests

    ctx = context(mesh)
    report = run_policy_tests(ctx.mesh)  # specs and policies only: no storage is touched
    if as_json:
        out.print_json(json.dumps({
            "ok": report.ok, "tests": [asdict(o) for o in report.outcomes],
            "problems": [p.to_dict() for p in report.problems]}))
    else:
        for error in report.problems:
            out.print(escape(error.render()), highlight=False, soft_wrap=True)
        for o in report.outcomes:
            mark = "[green]PASS[/]" if o.passed else "[red]FAIL[/]"
            out.print(f"{mark} {escape(o.name)}  [dim]{o.file}:{o.line}[/]", soft_wrap=True)
            for text in o.problems:
                out.print(f"     {escape(text)}", highlight=False, soft_wrap=True)
        failed = sum(1 for o in report.outcomes if not o.passed)
        if not report.outcomes and not report.problems:
            err.print("no policy tests found: add *.test.yaml files to the policy folders "
                      "(governance.policies in mesh.yaml) or policies.test.yaml beside a "
                      "product")
        elif report.ok:
            out.print(f"[green]✓[/] {len(report.outcomes)} policy test(s) passed")
        else:
            err.print(f"[red]✗[/] {failed} of {len(report.outcomes)} policy test(s) failed"
                      + (f", {len(report.problems)} problem(s)" if report.problems else ""))
    if not report.ok:
        raise typer.Exit(1)
