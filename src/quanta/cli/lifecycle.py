"""CLI of a product's life cycle: deprecate, retire, reactivate."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
from rich.markup import escape

from quanta.cli.main import MeshOption, app, boundary, context, out
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
    from quanta.control.lifecycle import reactivate as run

    ctx = context(mesh)
    run(ctx.sidecar, acting(ctx, as_principal, group), address, reason)
    out.print(f"[green]✓[/] {ctx.product(address).key} is active")
