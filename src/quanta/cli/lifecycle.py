"""CLI of a product's life cycle: draft, activate, deprecate, retire, reactivate."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from quanta.cli.main import MeshOption, app, boundary, context, err, out
from quanta.cli.security import AsOption, GroupOption, acting
from quanta.errors import QuantaError

ReasonOption = Annotated[str | None, typer.Option(help="why, told to consumers")]


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise QuantaError(f"--sunset {text!r} is not a date", hint="write YYYY-MM-DD",
                          code="date_invalid") from None


@app.command()
@boundary
def draft(
    address: Annotated[str, typer.Argument(help="quanta://domain/product")],
    reason: ReasonOption = None, as_principal: AsOption = None, group: GroupOption = None,
    mesh: MeshOption = None,
) -> None:
    """Declare a new product a draft (before its first release): it builds and its owners
    read it, but it is not listed in discovery and others cannot read it."""
    from quanta.control.lifecycle import draft as run

    ctx = context(mesh)
    run(ctx.sidecar, acting(ctx, as_principal, group), address, reason)
    key = ctx.product(address).key
    out.print(f"[yellow]✓[/] {key} is a draft; when it is ready: quanta activate {key}")


@app.command()
@boundary
def activate(
    address: Annotated[str, typer.Argument(help="quanta://domain/product")],
    reason: ReasonOption = None, as_principal: AsOption = None, group: GroupOption = None,
    mesh: MeshOption = None,
) -> None:
    """Activate a draft: listed in discovery and readable by those granted it."""
    _activate(address, reason, as_principal, group, mesh)


@app.command()
@boundary
def deprecate(
    address: Annotated[str, typer.Argument(help="quanta://domain/product")],
    sunset: Annotated[str, typer.Option(help="the day reads stop, YYYY-MM-DD")],
    replacement: Annotated[str | None, typer.Option(help="what consumers should read "
                                                    "instead")] = None,
    reason: ReasonOption = None, as_principal: AsOption = None, group: GroupOption = None,
    mesh: MeshOption = None,
) -> None:
    """Deprecate a product: still served, with a notice and a sunset date on every answer."""
    from quanta.control.lifecycle import deprecate as run

    ctx = context(mesh)
    state = run(ctx.sidecar, acting(ctx, as_principal, group),
                address, _day(sunset), replacement, reason)
    out.print(f"[yellow]✓[/] {escape(state.notice(ctx.product(address).key) or '')}",
              soft_wrap=True)


@app.command()
@boundary
def retire(
    address: Annotated[str, typer.Argument(help="quanta://domain/product")],
    replacement: Annotated[str | None, typer.Option(help="what consumers should read "
                                                    "instead")] = None,
    reason: ReasonOption = None, as_principal: AsOption = None, group: GroupOption = None,
    mesh: MeshOption = None,
) -> None:
    """Retire a product: reads are refused naming the replacement; it is not built again."""
    from quanta.control.lifecycle import retire as run

    ctx = context(mesh)
    state = run(ctx.sidecar, acting(ctx, as_principal, group),
                address, replacement, reason)
    out.print(f"[red]✓[/] {escape(state.notice(ctx.product(address).key) or '')}",
              soft_wrap=True)


@app.command()
@boundary
def reactivate(
    address: Annotated[str, typer.Argument(help="quanta://domain/product")],
    reason: ReasonOption = None, as_principal: AsOption = None, group: GroupOption = None,
    mesh: MeshOption = None,
) -> None:
    """Undo a deprecation or a retirement."""
    _activate(address, reason, as_principal, group, mesh)


def _activate(address: str, reason: str | None, as_principal: str | None,
              group: list[str] | None, mesh: Path | None) -> None:
    from quanta.catalog import registry
    from quanta.control.lifecycle import activate as run

    ctx = context(mesh)
    before = ctx.storage(ctx.product(address).key).lifecycle().state
    run(ctx.sidecar, acting(ctx, as_principal, group), address, reason)
    key = ctx.product(address).key
    out.print(f"[green]✓[/] {key} is active")
    published = registry.publish_activated(ctx.mesh, key, before, ctx.catalog)
    for problem in published.problems if published else []:
        err.print(f"[yellow]warning:[/] {escape(problem.render())}", soft_wrap=True)
