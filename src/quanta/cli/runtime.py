"""CLI of the decentralized runtime: ``quanta run``, ``quanta trigger``, ``quanta triggers``."""

from __future__ import annotations

import getpass
import signal
import threading
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from quanta.cli.main import JsonOption, MeshOption, app, boundary, err, out

if TYPE_CHECKING:
    from quanta.runtime import MeshRuntime
    from quanta.runtime.runner import RuntimeEvent

_STYLE = {"started": "cyan", "released": "green", "unchanged": "dim", "failed": "red",
          "retrying": "yellow", "stopped": "yellow", "waiting": "dim"}


def _runtime(mesh: Path | None, products: list[str] | None, workers: int = 2,
             poll: float = 1.0, quiet: bool = False, into: Path | None = None,
             sources: Path | None = None, catalog: str | None = None) -> MeshRuntime:
    from quanta.runtime import MeshRuntime
    from quanta.spec.mesh import find_mesh_root

    root = Path(mesh).resolve() if mesh else None
    if products and len(products) == 1 and _is_unit(products[0]):
        # a bundle (or an unpacked one): the product runs alone, in its own mesh folder
        from quanta.container.unit import open_unit

        unit = open_unit(products[0], mesh, into, sources)
        root, products = unit.root, [unit.key]
        if unit.lock is not None:
            for warning in unit.lock.differences():
                err.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    root = root or find_mesh_root()
    listener = None if quiet else _print_event
    runtime = MeshRuntime(root, products, workers=workers, poll=poll, listener=listener,
                          catalog=catalog)
    runtime.mesh.raise_problems()
    return runtime


def _is_unit(target: str) -> bool:
    from quanta.container.bundle import LOCK_FILE, is_bundle

    path = Path(target)
    return is_bundle(target) or path.is_file() or (path / LOCK_FILE).is_file()


def _print_event(event: RuntimeEvent) -> None:
    style = _STYLE.get(event.kind, "white")
    out.print(f"{datetime.now():%H:%M:%S} [{style}]{event.kind:<9}[/] {event.product}  "
              f"[dim]{escape(event.message)}[/]", soft_wrap=True)


@app.command("run")
@boundary
def run_mesh(
    product: Annotated[list[str] | None, typer.Option(
        "--product", help="run only this product (repeat for more; default: all), or run a "
        "bundle from 'quanta package' alone")] = None,
    once: Annotated[bool, typer.Option(
        help="build what is pending now (and what that triggers downstream), then exit")
    ] = False,
    workers: Annotated[int, typer.Option(help="builds running at the same time")] = 2,
    poll: Annotated[float, typer.Option(help="seconds between looks at clocks and sources")
                    ] = 1.0,
    grace: Annotated[float, typer.Option(
        help="on Ctrl-C or SIGTERM, seconds builds in flight get to finish")] = 60.0,
    into: Annotated[Path | None, typer.Option(
        help="bundle: the folder to unpack it into (default: beside it)")] = None,
    sources: Annotated[Path | None, typer.Option(
        help="bundle: the folder holding the sources it reads (or QUANTA_SOURCES)")] = None,
    catalog: Annotated[str | None, typer.Option(
        help="catalog (SQLAlchemy URL) where the units serving the products it reads are "
        "found (default: QUANTA_CATALOG_URL, else mesh.yaml's catalog)")] = None,
    mesh: MeshOption = None,
) -> None:
    """Run the mesh: each product rebuilds when its own triggers fire (no central scheduler).

    Triggers are declared per product in dataproduct.yaml: on: upstream, on: source-change,
    every: 15m, on: manual. Each build runs in its own process with the product's runtime
    limits; stop with Ctrl-C or SIGTERM (builds in flight finish or roll back)."""
    runtime = _runtime(mesh, product, workers, poll, into=into, sources=sources,
                       catalog=catalog)
    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        if not stop.is_set():
            err.print(f"[yellow]stopping[/] (builds in flight get {grace:.0f} s to finish)")
        stop.set()

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        if not once:
            out.print(f"[green]✓[/] running {len(runtime.keys)} product(s) of mesh "
                      f"'{runtime.mesh.spec.name}'; stop: Ctrl-C")
        report = runtime.run(once=once, stop=stop, grace=grace)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if once:
        built = [o for o in report.outcomes if o.outcome == "released"]
        out.print(f"{len(built)} release(s), {len(report.failed)} failure(s)"
                  if report.outcomes else "nothing pending")
    if once and report.failed:  # a long-running runner stopped on request ends cleanly
        raise typer.Exit(1)


@app.command()
@boundary
def trigger(
    product: Annotated[str, typer.Argument(help="domain.product or quanta://domain/product")],
    mesh: MeshOption = None,
) -> None:
    """Ask for a build of a product now, whatever its triggers say (quanta run builds it)."""
    runtime = _runtime(mesh, None, quiet=True)
    key = runtime.mesh.product(product).key
    seq = runtime.trigger(key, getpass.getuser())
    out.print(f"[green]✓[/] triggered {key} (event {seq}); a running 'quanta run' builds it, "
              "or: quanta run --once")


@app.command()
@boundary
def triggers(
    product: Annotated[list[str] | None, typer.Argument(help="only these products")] = None,
    mesh: MeshOption = None, as_json: JsonOption = False,
) -> None:
    """Show each product's triggers and whether a build is pending, and why."""
    runtime = _runtime(mesh, product or None, quiet=True)
    states = runtime.status()
    if as_json:
        from quanta.cli import render

        out.print_json(render.dumps([
            {"product": p.product, "pending": p.due, "reasons": p.reasons, "held": p.held,
             "retry_at": p.retry_at, "upstream_problems": runtime.upstream_problems(p.product)}
            for p in states]))
        return
    table = Table(show_edge=False, pad_edge=False, box=None)
    table.add_column("product", no_wrap=True)
    for column in ("triggers", "state", "why"):
        table.add_column(column)
    for item in states:
        spec = runtime.mesh.products[item.product].spec
        declared = ", ".join(f"every {t.every}" if t.every else f"on {t.on}"
                             for t in spec.triggers) or "upstream, source-change (default)"
        state = ("[yellow]held[/]" if item.held else "[cyan]pending[/]" if item.due
                 else "[green]up to date[/]")
        why = "; ".join(item.reasons)
        if item.held:
            why = f"{item.held}: {why}" if why else item.held
        problems = runtime.upstream_problems(item.product)
        if problems:
            why = "; ".join([why, *problems]) if why else "; ".join(problems)
        table.add_row(item.product, declared, state, escape(why))
    out.print(table)
