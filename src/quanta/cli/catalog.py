"""CLI of the catalog: search, joinable products, the polyseme registry and rebuilding."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from quanta.cli.main import JsonOption, MeshOption, app, boundary, context, err, out

if TYPE_CHECKING:
    from quanta.catalog import SearchResult
    from quanta.catalog.joins import Joins

catalog_app = typer.Typer(help="The mesh's catalog: rebuild it, list polysemes.",
                          no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")


@app.command()
@boundary
def search(
    text: Annotated[str, typer.Argument(help="words to look for in names, descriptions, "
                                        "fields, tags and owners")] = "",
    domain: Annotated[str | None, typer.Option(help="only this domain")] = None,
    kind: Annotated[str | None, typer.Option(help="only this kind, e.g. aggregate")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="only products with this tag "
                                                  "(repeatable: all of them)")] = None,
    owner: Annotated[str | None, typer.Option(help="only this owning team (or email)")
                     ] = None,
    classification: Annotated[str | None, typer.Option(
        help="only products with a field of this classification, e.g. pii")] = None,
    slo_status: Annotated[str | None, typer.Option(
        "--slo-status", help="only products whose SLOs are: met, at_risk, breached, "
        "unmeasured or none")] = None,
    limit: Annotated[int, typer.Option(help="products shown (at most 200)")] = 20,
    mesh: MeshOption = None, as_json: JsonOption = False,
) -> None:
    """Search the catalog: ranked full-text over the mesh's products, with facets."""
    from quanta.catalog import SearchQuery

    ctx = context(mesh)
    found = ctx.search(SearchQuery(text, domain, kind, tuple(tag or ()), owner, classification,
                                   limit, slo_status=slo_status))
    if as_json:
        out.print_json(json.dumps(found.to_dict()))
    else:
        print_search(found)


def print_search(found: SearchResult) -> None:
    """Hits as a table, then counts per facet value."""
    words = f" matching '{escape(found.query.text)}'" if found.query.text.strip() else ""
    if not found.hits:
        if not words and not found.query.filters() and not found.query.offset:
            out.print("the catalog is empty: products are registered at each release "
                      "(quanta build), or from storage with: quanta catalog rebuild")
            return
        out.print(f"no products{words}" + (f" with {_filters(found)}" if found.query.filters()
                                           else ""))
        return
    table = Table(header_style="bold", title_justify="left",
                  title=f"{found.total} product(s){words}")
    for column in ("product", "kind", "owner", "tags", "description"):
        table.add_column(column, overflow="fold")
    for hit in found.hits:
        state = "" if hit.lifecycle == "active" else f" [yellow]({hit.lifecycle})[/]"
        table.add_row(hit.address + state, hit.kind, hit.owner, ", ".join(hit.tags),
                      escape(hit.description[:100]))
    out.print(table)
    for facet, values in found.facets.items():
        if values:
            counts = ", ".join(f"{escape(v)} ({n})" for v, n in values.items())
            out.print(f"[bold]{facet}[/]: {counts}", soft_wrap=True)
    if found.total > len(found.hits) + found.query.offset:
        out.print(f"[dim]showing {len(found.hits)} of {found.total}; --limit shows more[/]")


def _filters(found: SearchResult) -> str:
    return ", ".join(f"{k} {', '.join(v) if isinstance(v, list) else v}"
                     for k, v in found.query.filters().items())


@app.command()
@boundary
def joinable(
    address: Annotated[str, typer.Argument(help="quanta://domain/product[/port]")],
    mesh: MeshOption = None, as_json: JsonOption = False,
) -> None:
    """Products joinable with this one: ports sharing a polyseme, and the join keys."""
    ctx = context(mesh)
    found = ctx.joinable(address)
    if as_json:
        out.print_json(json.dumps(found.to_dict()))
        return
    if found.notice:
        err.print(f"[yellow]note:[/] {escape(found.notice)}", soft_wrap=True)
    print_joins(found)


def print_joins(found: Joins) -> None:
    if not found.polysemes:
        out.print(f"{found.address} has no field with a polyseme, so nothing joins with it "
                  "by meaning (declare 'polyseme:' on its key fields)")
        return
    carried = "; ".join(f"{p}: {', '.join(f)}" for p, f in found.polysemes.items())
    out.print(f"[bold]{found.address}[/] carries {carried}")
    if not found.joinable:
        out.print("no other product carries these polysemes")
        return
    table = Table(header_style="bold")
    for column in ("joins with", "on (this = that)", "polyseme"):
        table.add_column(column, overflow="fold")
    for port in found.joinable:
        table.add_row(port.address,
                      ", ".join(f"{port.left_port}.{k.left} = {k.right}" for k in port.keys),
                      ", ".join(dict.fromkeys(k.polyseme for k in port.keys)))
    out.print(table)
    first = found.joinable[0]
    out.print(f"e.g. quanta query \"{first.sql(found.address.product_key)}\"", soft_wrap=True,
              highlight=False, markup=False)


@catalog_app.command("rebuild")
@boundary
def rebuild(
    write_documents: Annotated[bool, typer.Option(
        "--write-documents", help="first write each released product's discovery document "
        "from its spec (for releases made before the catalog)")] = False,
    mesh: MeshOption = None, as_json: JsonOption = False,
) -> None:
    """Recreate the catalog from the discovery documents kept beside the releases."""
    ctx = context(mesh)
    report = ctx.rebuild_catalog(write_documents)
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
        return
    if report.set_aside:
        err.print(f"[yellow]![/] the damaged catalog was set aside as {report.set_aside}",
                  soft_wrap=True)
    for problem in report.skipped:
        err.print(f"[yellow]skipped[/] {escape(problem.render())}", soft_wrap=True)
    out.print(f"[green]✓[/] catalog rebuilt: {len(report.indexed)} product(s) indexed"
              + (f", {len(report.skipped)} skipped" if report.skipped else ""))


@catalog_app.command("polysemes")
@boundary
def polysemes(
    name: Annotated[str | None, typer.Argument(help="one polyseme (default: all)")] = None,
    mesh: MeshOption = None, as_json: JsonOption = False,
) -> None:
    """The polyseme registry: which products carry each shared concept, in which field."""
    ctx = context(mesh)
    found = ctx.polysemes(name)
    if as_json:
        out.print_json(json.dumps(found.to_dict()))
        return
    if found.notice:
        err.print(f"[yellow]note:[/] {escape(found.notice)}", soft_wrap=True)
    groups = found.by_polyseme()
    if not groups:
        out.print(f"no product carries {name}" if name else "no polysemes declared")
        return
    table = Table(header_style="bold")
    for column in ("polyseme", "product", "port.field", "type", "classification"):
        table.add_column(column)
    for polyseme, carriers in groups.items():
        for number, c in enumerate(carriers):
            table.add_row(polyseme if number == 0 else "", c.product, f"{c.port}.{c.field}",
                          c.type, c.classification)
    out.print(table)
