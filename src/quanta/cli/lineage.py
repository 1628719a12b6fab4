"""CLI of lineage: ``quanta lineage ADDRESS`` for products, columns and change impact."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.tree import Tree

from quanta.cli.main import JsonOption, MeshOption, app, boundary, context, out
from quanta.cli.render import dumps

if TYPE_CHECKING:
    from quanta.lineage import Impact, Origin, PortColumnLineage, ProductLineage
    from quanta.lineage.mesh import Direction


@app.command()
@boundary
def lineage(
    address: Annotated[str, typer.Argument(
        help="quanta://domain/product, domain.product, or with a port "
        "(quanta://domain/product/port) and a release (...@3)")],
    upstream: Annotated[bool, typer.Option(
        "--upstream", help="only what it is made from")] = False,
    downstream: Annotated[bool, typer.Option(
        "--downstream", help="only what is made from it")] = False,
    columns: Annotated[bool, typer.Option(
        "--columns", help="column lineage of the port (every port when none is named)")] = False,
    depth: Annotated[int | None, typer.Option(
        help="products to follow in each direction (default: all)", min=1)] = None,
    impact: Annotated[str | None, typer.Option(
        "--impact", metavar="COLUMN",
        help="what depends on this column downstream: what breaks if it changes")] = None,
    mesh: MeshOption = None, as_json: JsonOption = False,
) -> None:
    """Show where a product's data comes from and where it goes, by product or column."""
    ctx = context(mesh)
    direction: Direction = "upstream" if upstream and not downstream else (
        "downstream" if downstream and not upstream else "both")
    if impact is not None:
        key, port, found = ctx.lineage.impact(address, impact, depth)
        if as_json:
            out.print_json(dumps({"product": key, "port": port, "column": impact,
                                  "impacts": [i.to_dict() for i in found]}))
        else:
            _print_impact(key, port, impact, found)
    elif columns:
        views = ctx.lineage.columns(address, direction, depth)
        if as_json:
            out.print_json(dumps({"ports": [v.to_dict() for v in views]}))
        else:
            for view in views:
                _print_columns(view)
    else:
        found_products = ctx.lineage.products(address, direction, depth)
        if as_json:
            out.print_json(dumps(found_products.to_dict()))
        else:
            _print_products(found_products)


def _print_products(found: ProductLineage) -> None:
    release = f"release {found.release}" if found.release else "no release yet"
    root = Tree(f"[bold]{found.product}[/]  [dim]{release}[/]")
    if found.direction != "downstream":
        branch = root.add("[bold]upstream[/]" + ("" if found.upstream or found.sources
                                                  else "  none"))
        _upstream_tree(found, found.product, branch, set())
    if found.direction != "upstream":
        branch = root.add("[bold]downstream[/]" + ("" if found.downstream else "  none"))
        _downstream_tree(found, found.product, branch, set())
    out.print(root)
    stale = [link for link in found.links if link.stale]
    for link in stale:
        out.print(f"[yellow]stale[/] {link.downstream} was built from {link.upstream} release "
                  f"{link.read_release}; the latest is {link.latest_release}", soft_wrap=True)


def _upstream_tree(found: ProductLineage, key: str, branch: Tree, shown: set[str]) -> None:
    for link in sorted((x for x in found.links if x.downstream == key),
                       key=lambda x: (x.upstream, x.port)):
        read = f"read release {link.read_release}" if link.read_release else "not built yet"
        pinned = f", pinned to {link.pinned}" if link.pinned else ""
        label = (f"{link.upstream}.{link.port}  [dim]as input {link.input}, {read}{pinned}"
                 f" (latest {link.latest_release or '-'})[/]")
        if link.upstream in shown:
            branch.add(label + "  [dim](shown above)[/]")
            continue
        shown.add(link.upstream)
        _upstream_tree(found, link.upstream, branch.add(label), shown)
    for source in (s for s in found.sources if s.product == key):
        branch.add(f"{escape(source.label)}  [dim]as input {source.input}[/]")


def _downstream_tree(found: ProductLineage, key: str, branch: Tree, shown: set[str]) -> None:
    for link in sorted((x for x in found.links if x.upstream == key),
                       key=lambda x: (x.downstream, x.port)):
        read = f"read release {link.read_release}" if link.read_release else "not built yet"
        label = f"{link.downstream}  [dim]reads {link.port} as input {link.input}, {read}[/]"
        if link.downstream in shown:
            branch.add(label + "  [dim](shown above)[/]")
            continue
        shown.add(link.downstream)
        _downstream_tree(found, link.downstream, branch.add(label), shown)


def _print_columns(port: PortColumnLineage) -> None:
    how = {"sql": "analysed from the SQL", "declared": "declared in lineage.yaml",
           "unknown": "not known"}[port.method]
    root = Tree(f"[bold]{port.product}.{port.port}[/]  [dim]column lineage {how}[/]")
    if port.note:
        root.add(f"[yellow]{escape(port.note)}[/]")
    names = list(port.columns) or list(port.dependents)
    for column in names:
        node = root.add(f"[bold]{column}[/]")
        origins = port.columns.get(column)
        if origins is not None:
            if not origins:
                node.add("[dim]a constant: no input[/]")
            for origin in origins:
                _origin_tree(origin, node)
        for item in port.dependents.get(column, []):
            node.add(f"→ {_impact_label(item, via=item.distance > 1)}")
    if port.dataset:
        rows = root.add("[bold]rows chosen by[/]")
        grouped: dict[str, list[str]] = {}
        for origin in port.dataset:
            grouped.setdefault(f"{origin.dataset}.{origin.column}", []).append(origin.subtype)
        for name, subtypes in grouped.items():
            rows.add(f"{escape(name)}  [dim]{', '.join(sorted(set(subtypes)))}[/]")
    out.print(root)


def _origin_tree(origin: Origin, branch: Tree) -> None:
    column = "  [dim](its rows)[/]" if not origin.column else (
        f".{origin.column}" if origin.kind == "port" else f", column {origin.column}")
    node = branch.add(f"← {escape(origin.dataset)}{column}  [dim]{origin.subtype}[/]")
    for more in origin.upstream:
        _origin_tree(more, node)


def _impact_label(item: Impact, via: bool = True) -> str:
    target = f"{item.product}.{item.port}" + (f".{item.column}" if item.column else
                                              "  [dim](its rows)[/]")
    doubt = "  [yellow]maybe: lineage not declared[/]" if not item.certain else ""
    source = f", from {item.via}" if via else ""
    return f"{target}  [dim]{item.subtype}{source}[/]{doubt}"


def _print_impact(key: str, port: str, column: str, found: list[Impact]) -> None:
    if not found:
        out.print(f"nothing downstream depends on {key}.{port}.{column}")
        return
    grouped: dict[tuple[str, str, str | None], list[Impact]] = {}
    for item in sorted(found, key=lambda i: i.distance):
        grouped.setdefault((item.product, item.port, item.column), []).append(item)
    products = {i.product for i in found}
    out.print(f"changing [bold]{key}.{port}.{column}[/] affects {len(grouped)} column(s) or "
              f"port(s) in {len(products)} product(s):", soft_wrap=True)
    for (product, at, name), items in sorted(
            grouped.items(), key=lambda g: (g[1][0].distance, g[0][0], g[0][1], g[0][2] or "")):
        first = items[0]
        target = f"{product}.{at}" + (f".{name}" if name else "  [dim](its rows)[/]")
        how = ", ".join(dict.fromkeys(i.subtype for i in items))
        doubt = "  [yellow]maybe: lineage not declared[/]" if not first.certain else ""
        out.print(f"  {first.distance}  {target}  [dim]{how}, from {first.via}[/]{doubt}",
                  soft_wrap=True)
