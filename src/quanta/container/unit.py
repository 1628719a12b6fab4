"""One data product run as its own unit: its own sidecar, storage, servers and endpoints.

``open_unit`` opens what ``quanta serve --product`` names: a product of a mesh folder (its
storage root is the mesh's), a bundle file (unpacked into a folder of its own, whose
``.quanta/`` is the unit's storage root) or a folder a bundle was unpacked into. ``serve_unit``
serves it through a sidecar that answers for that product only, and keeps its endpoint
registered in a catalog given by URL while it listens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from quanta.catalog.registry import publish
from quanta.container.bundle import default_folder, is_bundle, read_lock, unpack, verify
from quanta.container.endpoints import Endpoint, EndpointRegistry, Heartbeat
from quanta.container.lock import LOCK_FILE, BundleLock, environment
from quanta.container.sources import link_sources, sources_folder
from quanta.context import MeshContext
from quanta.errors import QuantaError
from quanta.serve.server import ServeOptions, serve
from quanta.sidecar import Sidecar
from quanta.storage import ProductStorage


@dataclass
class ProductUnit:
    """A product opened to run alone: its mesh (one product, or a whole mesh of which it
    serves one) and, when it came from a bundle, the bundle's lock."""

    context: MeshContext
    key: str
    lock: BundleLock | None = None

    @property
    def root(self) -> Path:
        return self.context.root


def open_unit(target: str, mesh: Path | None = None, into: Path | None = None,
              sources: Path | None = None) -> ProductUnit:
    """``target`` is DOMAIN.PRODUCT (of ``mesh``), a bundle file (unpacked into ``into``,
    default a folder beside it named like it) or an unpacked bundle's folder (checked
    against its lock)."""
    path = Path(target)
    if is_bundle(target) or path.is_file():
        root = unpack(path, into or default_folder(path), sources)
        lock = read_lock(root)
    elif path.is_dir() and (path / LOCK_FILE).is_file():
        root, lock = path.resolve(), verify(path)
        folder = sources_folder(sources)
        if folder is not None:
            link_sources(root, lock, folder)
    else:
        context = MeshContext.discover(mesh)
        return ProductUnit(context, context.product(target).key)
    context = MeshContext(root)
    context.product(lock.product)  # the unpacked mesh must declare it
    return ProductUnit(context, lock.product, lock)


@dataclass(frozen=True)
class Advertised:
    """The URLs consumers use to reach a unit (they may differ from where it listens)."""

    http_url: str
    flight_url: str | None


def advertised(options: ServeOptions, advertise: str | None) -> Advertised:
    """``advertise`` (the HTTP base URL others use), else where the unit listens; Flight at
    the same host name."""
    if advertise:
        parts = urlsplit(advertise if "://" in advertise else f"http://{advertise}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise QuantaError(f"--advertise {advertise}: not an HTTP URL",
                              hint="e.g. --advertise http://orders.internal:8080",
                              code="advertise_invalid")
        http_url = f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")
        host = parts.hostname
    else:
        host = options.host
        if host in ("0.0.0.0", "::", ""):  # listening everywhere: others use its name
            import socket

            host = socket.getfqdn()
    shown = f"[{host}]" if ":" in host else host
    http_url = http_url if advertise else f"http://{shown}:{options.port}"
    flight_url = f"grpc://{shown}:{options.flight_port}" if options.flight_port else None
    return Advertised(http_url, flight_url)


def serve_unit(unit: ProductUnit, options: ServeOptions, catalog_url: str,
               advertise: str | None = None,
               on_ready: Callable[[Endpoint], None] | None = None,
               report: Callable[[str], None] | None = None) -> None:
    """Serve ``unit`` until SIGINT or SIGTERM, registered in the catalog at ``catalog_url``
    from the moment it listens until it stops. A catalog that cannot be opened stops the
    start (nobody could find the unit); one that fails later is reported and retried."""
    registry = EndpointRegistry.open(catalog_url)
    say = report or (lambda _: None)
    try:
        urls = advertised(options, advertise)
        product = unit.context.product(unit.key)
        endpoint = Endpoint.starting(unit.key, unit.context.mesh.spec.name,
                                     product.spec.version, urls.http_url, urls.flight_url,
                                     environment()[0])
        sidecar = Sidecar(unit.context.mesh, only={unit.key}, locate=registry.locate)

        def registered(problem: QuantaError | None) -> None:
            if problem is None:
                say(f"registered {unit.key} at {endpoint.describe()} in {registry.where}")
            else:
                say(f"warning: {problem.render()} (serving on; registration is retried)")

        heartbeat = Heartbeat(registry, endpoint, registered)

        def ready() -> None:
            heartbeat.start()
            _publish_document(unit, registry, say)
            if on_ready is not None:
                on_ready(endpoint)

        try:
            serve(sidecar, options, on_ready=ready, on_stop=heartbeat.stop)
        finally:
            sidecar.close()  # also when it never started (a port taken); closing is idempotent
    finally:
        registry.close()


def _publish_document(unit: ProductUnit, registry: EndpointRegistry,
                      say: Callable[[str], None]) -> None:
    """The product's discovery document into the catalog too, so it can be searched there."""
    mesh = unit.context.mesh
    if not ProductStorage(mesh.storage_root, unit.key).release_numbers():
        say(f"note: {unit.key} has no release yet; it answers once one is built")
        return
    done = publish(mesh, [unit.key], lambda: registry.catalog)
    for problem in done.problems:
        say(f"warning: {problem.render()}")
