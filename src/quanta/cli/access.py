"""CLI of the control port's access requests: request, list, approve, deny."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from quanta.cli.main import JsonOption, MeshOption, app, boundary, context, out
from quanta.cli.security import AsOption, GroupOption, acting, parse_expiry

if TYPE_CHECKING:
    from quanta.control import AccessRequest

access_app = typer.Typer(help="Ask for access to a product; owners approve or deny.",
                         no_args_is_help=True)
app.add_typer(access_app, name="access")



def _line(item: AccessRequest) -> str:
    what = f"{item.address}" + (f" for {item.purpose}" if item.purpose else "")
    return escape(f"request {item.id}: {item.requester} → {what} [{item.state}]")


@access_app.command("request")
@boundary
def access_request(
    address: Annotated[str, typer.Argument(help="quanta://domain/product[/port]")],
    reason: Annotated[str, typer.Option(help="what you will use the data for")] = "",
    purpose: Annotated[str | None, typer.Option(help="the purpose the access is for")] = None,
    as_principal: AsOption = None, group: GroupOption = None, mesh: MeshOption = None,
) -> None:
    """Ask the product's owners for read access; they see it in 'quanta access list'."""
    ctx = context(mesh)
    requests = ctx.access_requests()
    item = requests.request(acting(ctx, as_principal, group), address, purpose, reason)
    out.print(f"[green]✓[/] {_line(item)}\n  the owners decide: {requests.owners(item.product)}",
              soft_wrap=True)


@access_app.command("list")
@boundary
def access_list(
    pending: Annotated[bool, typer.Option("--pending", help="only undecided requests")] = False,
    as_principal: AsOption = None, group: GroupOption = None, mesh: MeshOption = None,
    as_json: JsonOption = False,
) -> None:
    """Requests you made and requests you may decide (the operator sees all)."""
    from rich.table import Table

    ctx = context(mesh)
    items = ctx.access_requests().visible_to(acting(ctx, as_principal, group),
                                             "pending" if pending else None)
    if as_json:
        out.print_json(json.dumps([i.to_dict() for i in items]))
        return
    if not items:
        out.print("no access requests" + (" pending" if pending else ""))
        return
    table = Table(header_style="bold", title="access requests")
    for column in ("id", "requester", "address", "purpose", "reason", "state", "decided by",
                   "expires"):
        table.add_column(column)
    for i in items:
        table.add_row(i.id, i.requester, str(i.address), i.purpose or "any", i.reason,
                      i.state, i.decided_by or "", (i.expires_at or "")[:19])
    out.print(table)


@access_app.command("approve")
@boundary
def access_approve(
    request_id: Annotated[str, typer.Argument(help="the request's id")],
    expires: Annotated[str, typer.Option(help="lifetime of the grant, e.g. 90d")] = "90d",
    comment: Annotated[str | None, typer.Option(help="a note for the requester")] = None,
    as_principal: AsOption = None, group: GroupOption = None, mesh: MeshOption = None,
) -> None:
    """Approve a request: the requester gets an expiring grant for what they asked."""
    ctx = context(mesh)
    item = ctx.access_requests().approve(acting(ctx, as_principal, group), request_id,
                                         parse_expiry(expires), comment)
    out.print(f"[green]✓[/] {_line(item)}: grant {item.grant_id} until "
              f"{(item.expires_at or '')[:19]}", soft_wrap=True)


@access_app.command("deny")
@boundary
def access_deny(
    request_id: Annotated[str, typer.Argument(help="the request's id")],
    comment: Annotated[str, typer.Option(help="why (the requester sees it)")] = "",
    as_principal: AsOption = None, group: GroupOption = None, mesh: MeshOption = None,
) -> None:
    """Deny a request, saying why."""
    ctx = context(mesh)
    item = ctx.access_requests().deny(acting(ctx, as_principal, group), request_id, comment)
    out.print(f"[green]✓[/] {_line(item)}", soft_wrap=True)
