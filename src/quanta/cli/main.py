"""The ``quanta`` command line: a thin shell over MeshContext."""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from quanta.errors import QuantaError, SpecError

if TYPE_CHECKING:
    from quanta.build.runner import BuildResult
    from quanta.context import MeshContext

# Commands import the library lazily so that `quanta --help` and completion start fast.

app = typer.Typer(
    name="quanta", no_args_is_help=True, add_completion=False,
    help="quanta: declare, build, release and query the data products of a data mesh.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False)

MeshOption = Annotated[Path | None, typer.Option(
    "--mesh", help="mesh folder (default: nearest folder upwards with mesh.yaml, or QUANTA_MESH)",
    show_default=False,
)]
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable JSON output")]
F = TypeVar("F", bound=Callable[..., Any])


def boundary(function: F) -> F:
    """Render QuantaErrors as one clear message and exit 1; never show a traceback for them."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            return function(*args, **kwargs)
        except QuantaError as exc:
            problems = exc.problems if isinstance(exc, SpecError) else [exc]
            if as_json:
                out.print_json(json.dumps({"ok": False, "errors": [p.to_dict() for p in problems]}))
            else:
                for problem in problems:
                    err.print(f"[red]error:[/] {problem.render()}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort):
            raise
        except Exception as exc:
            if os.environ.get("QUANTA_DEBUG"):
                raise
            err.print(f"[red]internal error:[/] {type(exc).__name__}: {exc}\n"
                      "[dim]This is a bug in quanta. Run again with QUANTA_DEBUG=1 for the "
                      "stack trace and report it.[/]", soft_wrap=True)
            raise typer.Exit(2) from None
        finally:
            while _opened:  # flush audit records before the command returns
                _opened.pop().close()

    return wrapper  # type: ignore[return-value]


def print_warnings(results: list[BuildResult]) -> None:
    """One line per quality check that warned: recorded, not blocking, worth a look."""
    for result in results:
        for check in result.checks:
            if not check.passed and check.severity == "warn":
                out.print(f"  [yellow]warn[/] {result.product}: {check.name}: {check.message}",
                          soft_wrap=True)


_opened: list[MeshContext] = []


def context(mesh: Path | None) -> MeshContext:
    from quanta.context import MeshContext

    ctx = MeshContext.discover(mesh)
    _opened.append(ctx)
    return ctx


@app.command()
@boundary
def init(
    folder: Annotated[Path, typer.Argument(help="folder to create the mesh in")],
    name: Annotated[str | None, typer.Option(help="mesh name (default: folder name)")] = None,
) -> None:
    """Create a new, empty mesh."""
    from quanta.scaffold import init_mesh

    file = init_mesh(folder, name)
    out.print(f"[green]✓[/] created {file}\n  next: cd {folder} && quanta new "
              "<domain>.<product> --kind source-aligned")


@app.command()
@boundary
def new(
    product: Annotated[str, typer.Argument(help="DOMAIN.PRODUCT, e.g. listening.play_events")],
    kind: Annotated[str, typer.Option(help="source-aligned, aggregate or consumer-aligned")] = (
        "source-aligned"),
    input: Annotated[list[str] | None, typer.Option(
        "--input", help="a product this one reads (repeatable), e.g. quanta://d/p")] = None,
    mesh: MeshOption = None,
) -> None:
    """Scaffold a product: dataproduct.yaml, a transform and a test that build as they are."""
    from quanta.scaffold import new_product

    ctx = context(mesh)
    folder = new_product(ctx.root, product, kind, input)
    out.print(f"[green]✓[/] created {folder}")
    for file in sorted(folder.iterdir()):
        out.print(f"    {file.name}")
    out.print(f"  next: edit {folder / 'dataproduct.yaml'}, then: quanta build {product}")


@app.command()
@boundary
def validate(mesh: MeshOption = None, as_json: JsonOption = False) -> None:
    """Check every spec, then the mesh's standards; print problems and findings as
    file:line:col: message (hint). Exit 1 on a problem or a finding of severity error."""
    from rich.markup import escape

    ctx = context(mesh)
    problems = ctx.validate()
    report = None if problems else ctx.standards()  # standards judge valid specs only
    problems += report.problems if report else []
    findings = report.findings if report else []
    errors = sum(1 for f in findings if f.severity == "error")
    ok = not problems and not errors
    if as_json:
        out.print_json(json.dumps({
            "ok": ok, "products": sorted(ctx.mesh.products),
            "errors": [p.to_dict() for p in problems],
            "findings": [f.to_dict() for f in findings],
            "standards_checked": report is not None,
        }))
    else:
        for problem in problems:
            out.print(problem.render(), highlight=False, soft_wrap=True)
        colour = {"error": "red", "warn": "yellow"}
        for found in findings:
            if found.severity in colour:  # info findings only in --json
                line = escape(found.render()).replace(
                    f"{found.severity} {found.code}:",
                    f"[{colour[found.severity]}]{found.severity}[/] {found.code}:", 1)
                out.print(line, highlight=False, soft_wrap=True)
        warnings = sum(1 for f in findings if f.severity == "warn")
        infos = len(findings) - errors - warnings
        tally = ", ".join(text for n, text in (
            (errors, f"{errors} error(s)"), (warnings, f"{warnings} warning(s)"),
            (infos, f"{infos} info finding(s), shown with --json")) if n)
        if problems:
            err.print(f"[red]✗[/] {len(problems)} problem(s) in {ctx.root}"
                      + (f"; standards: {tally}" if tally else "")
                      + ("" if report else " (standards are checked once the specs are valid)"),
                      soft_wrap=True)
        elif errors:
            err.print(f"[red]✗[/] the products in {ctx.root} do not meet the mesh's standards: "
                      f"{tally}", soft_wrap=True)
        else:
            out.print(f"[green]✓[/] {len(ctx.mesh.products)} products valid in {ctx.root}"
                      + (f" ({tally} from the mesh's standards)" if tally else ""), soft_wrap=True)
    if not ok:
        raise typer.Exit(1)


@app.command()
@boundary
def schema(
    file: Annotated[str | None, typer.Argument(help="'dataproduct' or 'mesh' (default: both)")
                    ] = None,
) -> None:
    """Print the JSON Schema of dataproduct.yaml and mesh.yaml (for editors)."""
    from quanta.spec.jsonschema import json_schemas

    schemas = json_schemas()
    if file is None:
        document: Any = schemas
    elif f"{file.removesuffix('.yaml')}.yaml" in schemas:
        document = schemas[f"{file.removesuffix('.yaml')}.yaml"]
    else:
        raise QuantaError(f"no schema for {file!r}", hint="use 'dataproduct' or 'mesh'")
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


@app.command()
@boundary
def build(
    products: Annotated[list[str] | None, typer.Argument(
        help="DOMAIN.PRODUCT ... (default: every product, upstream first)")] = None,
    full: Annotated[bool, typer.Option(
        "--full", help="rebuild incremental products from every source row")] = False,
    mesh: MeshOption = None,
) -> None:
    """Build products; each successful build makes a new immutable release."""
    from quanta.cli.progress import RichReporter
    from quanta.container.remote import remote_inputs

    ctx = context(mesh)
    ctx.mesh.raise_problems()
    ctx.remote = remote_inputs(ctx.mesh)  # products served by other units, via the catalog
    order = ctx.mesh.build_order([ctx.product(p).key for p in products] if products else None)
    start = time.perf_counter()
    with RichReporter(out, total=len(order)) as reporter:
        ctx.reporter = reporter
        results = ctx.build(products or None, full=full)
    failed = [r for r in results if not r.ok]
    print_warnings(results)
    seconds = time.perf_counter() - start
    if failed:
        err.print(f"[red]✗[/] {len(failed)} of {len(results)} product(s) failed "
                  f"({seconds:.1f}s); last releases are unchanged. Details: quanta runs")
        raise typer.Exit(1)
    out.print(f"[green]✓[/] built {len(results)} product(s) in {seconds:.1f}s")


@app.command()
@boundary
def versions(
    address: Annotated[str, typer.Argument(help="quanta://domain/product or domain.product")],
    mesh: MeshOption = None, as_json: JsonOption = False,
) -> None:
    """List the releases of a product."""
    from quanta.cli import render

    ctx = context(mesh)
    product = ctx.product(address)
    releases = ctx.releases(product.key)
    if as_json:
        out.print_json(render.dumps([r.model_dump(exclude={"profile"}) for r in releases]))
    elif not releases:
        out.print(f"{product.key} has no releases yet; build it: quanta build {product.key}")
    else:
        out.print(render.releases_table(product.key, releases))
    expired = ctx.storage(product.key).expired_releases()
    if expired and not as_json:
        out.print(f"{len(expired)} older release(s) expired (the last: {expired[-1].release}, "
                  f"on {expired[-1].expired_at:%Y-%m-%d}; rule: {expired[-1].rule})",
                  soft_wrap=True)


@app.command()
@boundary
def show(
    address: Annotated[str, typer.Argument(help="quanta://domain/product or domain.product")],
    mesh: MeshOption = None, as_json: JsonOption = False,
) -> None:
    """Show a product: owner, kind, ports and schemas, releases, checks and metrics."""
    from quanta.catalog.document import observations
    from quanta.cli import render
    from quanta.cli.show import print_product

    ctx = context(mesh)
    product = ctx.product(address)
    document = render.product_document(
        product, ctx.releases(product.key), ctx.mesh.downstream(product.key)
    )
    document["lifecycle"] = ctx.storage(product.key).lifecycle().model_dump(mode="json")
    document |= observations(ctx.mesh, product.key)  # SLO attainment, usage: measured now
    if as_json:
        out.print_json(render.dumps(document))
    else:
        print_product(out, document)


@app.command()
@boundary
def query(
    sql: Annotated[str, typer.Argument(help="one SELECT over ports, e.g. "
                                       "'SELECT * FROM listening.play_events LIMIT 5'")],
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="release number (one product) or timestamp (all products)")] = None,
    format: Annotated[str, typer.Option(
        "--format", "-f", help="table, csv, json or parquet")] = "table",
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="write to this file instead of the terminal")] = None,
    max_rows: Annotated[int, typer.Option(help="rows shown in table format")] = 50,
    as_principal: Annotated[str | None, typer.Option(
        "--as", help="see what this principal would see (default: the mesh operator)")] = None,
    group: Annotated[list[str] | None, typer.Option(
        help="a group of the --as principal (repeatable)")] = None,
    purpose: Annotated[str | None, typer.Option(help="the purpose of the query")] = None,
    mesh: MeshOption = None, as_json: JsonOption = False,
) -> None:
    """Run one read-only SQL query over the mesh's released data, through the sidecar."""
    from quanta.cli.export import write_result

    ctx = context(mesh)
    who = ctx.principal(as_principal, group) if as_principal else None
    result = ctx.query(sql, as_of, principal=who, purpose=purpose)
    fmt = "json" if as_json else format
    write_result(out, err, result, fmt, output, max_rows)


@app.command()
@boundary
def runs(
    product: Annotated[str | None, typer.Argument(help="only runs of this product")] = None,
    limit: Annotated[int, typer.Option(help="newest runs to show")] = 20,
    mesh: MeshOption = None, as_json: JsonOption = False,
) -> None:
    """Show build history: durations, rows, outcome, errors."""
    from quanta.cli import render

    ctx = context(mesh)
    records = ctx.runs(product, limit)
    if as_json:
        out.print_json(render.dumps([r.model_dump() for r in records]))
    elif not records:
        out.print("no builds yet; run: quanta build")
    else:
        out.print(render.runs_table(records))


@app.command()
@boundary
def demo(
    folder: Annotated[Path, typer.Argument(help="where to create the demo mesh")] = Path(
        "daff-demo"),
    events: Annotated[int, typer.Option(help="play events to generate")] = 1_000_000,
    scale: Annotated[float | None, typer.Option(
        help="size relative to the default 1,000,000 events, e.g. 0.1 or 3")] = None,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same data)")] = 7,
    force: Annotated[bool, typer.Option(help="replace an existing demo folder")] = False,
    append_events: Annotated[int | None, typer.Option(
        help="append N new play events to an existing demo's player database (then "
        "'quanta run --once' shows the products reacting)")] = None,
) -> None:
    """Generate the Daff Inc. demo mesh and build every product."""
    from quanta.cli.progress import RichReporter
    from quanta.context import MeshContext
    from quanta.demo.mesh import append_events as append
    from quanta.demo.mesh import create_demo

    if append_events is not None:
        added = append(folder, append_events)
        out.print(f"[green]✓[/] appended {added.count:,} plays ({added.first_id}..{added.last_id})"
                  f" to {added.player_db} ({added.total:,} in all)\n"
                  f"  see the mesh react: cd {folder} && quanta run --once")
        return

    if scale is not None:
        if scale <= 0:
            raise QuantaError(f"--scale {scale} must be above 0", hint="e.g. --scale 0.1")
        events = round(1_000_000 * scale)
    start = time.perf_counter()
    with out.status(f"generating Daff Inc. sources ({events:,} play events)…"):
        summary = create_demo(folder, events=events, seed=seed, force=force)
    out.print(f"[green]✓[/] generated {summary.plays:,} plays, {summary.accounts:,} accounts, "
              f"{summary.tracks:,} tracks in {folder} ({time.perf_counter() - start:.1f}s)")
    ctx = MeshContext(folder)
    _opened.append(ctx)
    ctx.mesh.raise_problems()
    with RichReporter(out, total=len(ctx.mesh.products)) as reporter:
        ctx.reporter = reporter
        results = ctx.build()
    print_warnings(results)
    if not all(r.ok for r in results):
        err.print("[red]✗[/] some demo products failed to build; see: quanta runs")
        raise typer.Exit(1)
    from quanta.cli.show import print_demo_tour

    print_demo_tour(out, ctx, folder, time.perf_counter() - start)


@app.command()
@boundary
def package(
    product: Annotated[str, typer.Argument(help="DOMAIN.PRODUCT to package")],
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="bundle file (.tar.gz or .zip) or folder (default: here)")] = None,
    mesh: MeshOption = None, as_json: JsonOption = False,
) -> None:
    """Write a product as one self-contained bundle: its folder, the mesh's policies and
    standards, and quanta.lock (versions, file digests, what it needs at run time)."""
    from quanta.container.bundle import package as write_bundle

    ctx = context(mesh)
    done = write_bundle(ctx.mesh, ctx.product(product).key, output)
    if as_json:
        out.print_json(json.dumps({"ok": True, "bundle": str(done.path), "sha256": done.sha256,
                                   "lock": done.lock.model_dump(mode="json")}))
        return
    out.print(f"[green]✓[/] packaged {done.lock.product} {done.lock.version} into {done.path}\n"
              f"  sha256 {done.sha256}  ({len(done.lock.files)} files)", soft_wrap=True)
    for item in done.lock.external:
        where = item.mesh_path or item.path or item.url_env or item.product
        out.print(f"  needs at run time: input '{item.name}' ({item.type}: {where})",
                  soft_wrap=True)
    out.print(f"  run it: quanta serve --product {done.path} --catalog URL", soft_wrap=True)


@app.command()
@boundary
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port")] = 8080,
    flight_port: Annotated[int, typer.Option(help="Arrow Flight port (0: no Flight)")] = 8815,
    product: Annotated[str | None, typer.Option(
        "--product", help="serve only this product, as its own unit: DOMAIN.PRODUCT of the "
        "mesh, a bundle file or an unpacked bundle's folder")] = None,
    register_in: Annotated[str | None, typer.Option(
        "--catalog", help="with --product: catalog (SQLAlchemy URL) to register in (default: "
        "QUANTA_CATALOG_URL, else the mesh's)")] = None,
    advertise: Annotated[str | None, typer.Option(
        help="with --product: the HTTP URL consumers reach it at (default: where it listens)")
    ] = None,
    into: Annotated[Path | None, typer.Option(
        help="with a bundle: folder to unpack it into (default: beside it)")] = None,
    sources: Annotated[Path | None, typer.Option(
        help="with a bundle: folder standing for its mesh's folder, where the sources it "
        "does not carry are (default: QUANTA_SOURCES)")] = None,
    mesh: MeshOption = None,
) -> None:
    """Serve the mesh: HTTP API (docs at /docs) and Arrow Flight, through the sidecar; with
    --product, one product as its own unit, registered in a catalog while it listens."""
    from quanta.serve.server import ServeOptions
    from quanta.serve.server import serve as run_servers

    if product is not None:
        serve_product(product, ServeOptions(host, port, flight_port or None), register_in,
                      advertise, into, sources, mesh)
        return
    if register_in or advertise or into or sources:
        raise QuantaError("--catalog, --advertise, --into and --sources go with --product",
                          hint="quanta serve --product DOMAIN.PRODUCT --catalog URL")
    ctx = context(mesh)
    ctx.mesh.raise_problems()
    options = ServeOptions(host, port, flight_port or None)

    def ready() -> None:
        out.print(f"[green]✓[/] serving mesh '{ctx.mesh.spec.name}' "
                  f"({len(ctx.mesh.products)} products)\n"
                  f"  HTTP    http://{host}:{port}  (API docs: http://{host}:{port}/docs)")
        if options.flight_port:
            out.print(f"  Flight  grpc://{host}:{options.flight_port}")
        out.print("  tokens: quanta token create <principal>   stop: Ctrl-C")

    run_servers(ctx.sidecar, options, on_ready=ready)


def serve_product(product: str, options: Any, register_in: str | None,
                  advertise: str | None, into: Path | None, sources: Path | None,
                  mesh: Path | None) -> None:
    """``quanta serve --product``: one product as its own unit, registered in a catalog."""
    from quanta.catalog.location import catalog_url
    from quanta.container.unit import open_unit, serve_unit

    unit = open_unit(product, mesh, into, sources)
    _opened.append(unit.context)
    unit.context.mesh.raise_problems()
    for difference in unit.lock.differences() if unit.lock else []:
        err.print(f"[yellow]warning:[/] {unit.key}: {difference}", soft_wrap=True)

    def ready(endpoint: Any) -> None:
        out.print(f"[green]✓[/] serving {unit.key} as its own unit (mesh "
                  f"'{unit.context.mesh.spec.name}' at {unit.root})\n"
                  f"  HTTP    {endpoint.http_url}  (API docs: {endpoint.http_url}/docs)",
                  soft_wrap=True)
        if endpoint.flight_url:
            out.print(f"  Flight  {endpoint.flight_url}")
        out.print("  stop: Ctrl-C (deregisters it)")

    serve_unit(unit, options, register_in or catalog_url(unit.context.mesh), advertise,
               on_ready=ready, report=lambda text: out.print(text, soft_wrap=True))


def run() -> None:
    """Console-script entry point."""
    app()


# Sub-command modules register themselves on `app` when imported.
from quanta.cli import access, catalog, erase, governance, history, lifecycle, lineage, observe, retention, runtime, security  # noqa: E402, E501, F401, I001
