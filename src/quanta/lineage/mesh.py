"""Lineage of a whole mesh: products (declared and as built), columns, and change impact.

Product lineage comes from the declared product inputs and, for each link, the release of
the upstream product that the reader's release was built from (``Release.inputs``). Column
lineage comes from ``quanta.lineage.columns``, hop by hop across products. Impact analysis
walks downstream from one column and names every port and column that is computed from it
(``DIRECT``) or whose rows it chooses (``INDIRECT``: filters, joins, grouping ...).
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from quanta.address import Address
from quanta.errors import AddressError, NotFoundError, QuantaError
from quanta.lineage.columns import ColumnSource, PortColumns
from quanta.lineage.graph import ProductGraph
from quanta.lineage.ports import product_lineage
from quanta.spec.mesh import Mesh, Product
from quanta.spec.models import FileInput, PostgresInput, ProductInput, SqliteInput
from quanta.storage import ProductStorage, Release

Direction = Literal["upstream", "downstream", "both"]
DIRECTIONS = ("upstream", "downstream", "both")


@dataclass(frozen=True)
class Link:
    """One product reading one port of another, and which release it last read."""

    upstream: str
    port: str
    downstream: str
    input: str
    pinned: int | None = None
    read_release: int | None = None
    latest_release: int | None = None

    @property
    def stale(self) -> bool:
        """The reader was built from an older release than the upstream's latest."""
        return (self.pinned is None and self.read_release is not None
                and self.latest_release is not None and self.read_release < self.latest_release)

    def to_dict(self) -> dict[str, Any]:
        return {"upstream": self.upstream, "port": self.port, "downstream": self.downstream,
                "input": self.input, "pinned": self.pinned, "read_release": self.read_release,
                "latest_release": self.latest_release, "stale": self.stale}


@dataclass(frozen=True)
class Source:
    """An input from outside the mesh (a file or a database table) of one product."""

    product: str
    input: str
    type: str
    location: str

    @property
    def label(self) -> str:
        return f"{self.type} {self.location}"

    def to_dict(self) -> dict[str, Any]:
        return {"product": self.product, "input": self.input, "type": self.type,
                "location": self.location}


@dataclass
class ProductLineage:
    """Products upstream and downstream of one product, the links between them and the
    outside sources feeding them."""

    product: str
    release: int | None
    direction: str
    depth: int | None
    upstream: dict[str, int] = field(default_factory=dict)
    downstream: dict[str, int] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    releases: dict[str, int | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        def nodes(found: dict[str, int]) -> list[dict[str, Any]]:
            return [{"product": k, "distance": d, "latest_release": self.releases.get(k)}
                    for k, d in sorted(found.items(), key=lambda item: (item[1], item[0]))]

        return {"product": self.product, "release": self.release, "direction": self.direction,
                "depth": self.depth, "upstream": nodes(self.upstream),
                "downstream": nodes(self.downstream),
                "links": [link.to_dict() for link in self.links],
                "sources": [s.to_dict() for s in self.sources]}


@dataclass
class Origin:
    """Where one column comes from: a port's column (followed further back while the
    depth allows) or an outside source; ``column`` None means the dataset as a whole."""

    dataset: str
    column: str | None
    subtype: str
    input: str
    kind: Literal["port", "source"]
    upstream: list[Origin] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "column": self.column, "subtype": self.subtype,
                "type": "DIRECT" if self.subtype not in _INDIRECT else "INDIRECT",
                "input": self.input, "kind": self.kind,
                "upstream": [o.to_dict() for o in self.upstream]}


_INDIRECT = ("filter", "join", "group_by", "sort", "window", "rows")


@dataclass(frozen=True)
class Impact:
    """A port column (or, with ``column`` None, a port's rows) that depends on a changed
    column, how, and through which column one step upstream (``via``)."""

    product: str
    port: str
    column: str | None
    subtype: str
    distance: int
    via: str
    certain: bool = True

    @property
    def direct(self) -> bool:
        return self.subtype not in _INDIRECT

    def to_dict(self) -> dict[str, Any]:
        return {"product": self.product, "port": self.port, "column": self.column,
                "subtype": self.subtype, "type": "DIRECT" if self.direct else "INDIRECT",
                "distance": self.distance, "via": self.via, "certain": self.certain}


@dataclass
class PortColumnLineage:
    """Column lineage of one port: each column's origins (upstream) and dependents
    (downstream), and the columns that choose its rows."""

    product: str
    port: str
    method: str
    note: str
    columns: dict[str, list[Origin]] = field(default_factory=dict)
    dataset: list[Origin] = field(default_factory=list)
    dependents: dict[str, list[Impact]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "product": self.product, "port": self.port, "method": self.method,
            "note": self.note or None,
            "columns": {c: [o.to_dict() for o in found] for c, found in self.columns.items()},
            "dataset": [o.to_dict() for o in self.dataset],
            "dependents": {c: [i.to_dict() for i in found]
                           for c, found in self.dependents.items()},
        }


class MeshLineage:
    """Lineage questions about one loaded mesh; column analyses are cached per product."""

    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh
        self.graph = ProductGraph.from_mesh(mesh)
        self._ports: dict[str, dict[str, PortColumns]] = {}

    # --- products --------------------------------------------------------------------------

    def products(self, address: str | Address, direction: str = "both",
                 depth: int | None = None) -> ProductLineage:
        """Products upstream and/or downstream of ``address`` (at ``@N``: as release N was
        built), with every link's release read and the outside sources upstream."""
        check_direction(direction, depth)
        target = self._address(address)
        product = self.mesh.product(target)
        key = product.key
        own = self._release(key, target.version)
        up = self.graph.upstream(key, depth) if direction != "downstream" else {}
        down = self.graph.downstream(key, depth) if direction != "upstream" else {}
        releases = {k: self._latest_number(k) for k in [key, *up, *down]}
        found = ProductLineage(key, own.release if own else None, direction, depth, up, down,
                               releases=releases)
        built = {key: own}
        for reader in sorted({key, *up, *down}):
            if reader not in built:
                built[reader] = ProductStorage(self.mesh.storage_root, reader).latest()
        for reader in sorted({key, *up, *down}):
            made = built[reader]
            for item, address_read in self._product_inputs(self.mesh.products[reader]):
                upstream = address_read.product_key
                # a link inside the upstream closure, or inside the downstream one
                inside_up = upstream in up and (reader in up or reader == key)
                inside_down = reader in down and (upstream in down or upstream == key)
                if not (inside_up or inside_down):
                    continue
                recorded = made.inputs.get(item.name) if made is not None else None
                found.links.append(Link(
                    upstream, self._port_name(address_read), reader, item.name, item.release,
                    recorded.release if recorded else None, releases.get(upstream)))
        if direction != "downstream":
            for reader in sorted({key, *up}):
                found.sources += self.sources(self.mesh.products[reader])
        return found

    def sources(self, product: Product) -> list[Source]:
        """The product's inputs from outside the mesh: files and database tables."""
        found = []
        for item in product.spec.inputs:
            if isinstance(item, FileInput):
                location = self._relative(product, item.path)
            elif isinstance(item, SqliteInput):
                location = f"{self._relative(product, item.path)}#{item.table}"
            elif isinstance(item, PostgresInput):
                location = f"${item.url_env}#{item.table}"
            else:
                continue
            found.append(Source(product.key, item.name, item.type, location))
        return found

    # --- columns ---------------------------------------------------------------------------

    def port_columns(self, key: str) -> dict[str, PortColumns]:
        """One-hop column lineage of every port of product ``key`` (cached)."""
        if key not in self._ports:
            product = self.mesh.products[key]
            self._ports[key] = product_lineage(product, input_columns(self.mesh, product))
        return self._ports[key]

    def columns(self, address: str | Address, direction: str = "both",
                depth: int | None = None) -> list[PortColumnLineage]:
        """Column lineage of the port named in ``address`` (every port when it names none):
        origins of each column back ``depth`` products (default: to the sources), and with
        ``downstream`` the columns computed from each."""
        check_direction(direction, depth)
        target = self._address(address)
        product = self.mesh.product(target)
        ports = [self._port(product, target.port).name] if target.port else [
            p.name for p in product.spec.outputs]
        found = []
        for port in ports:
            lineage = self.port_columns(product.key)[port]
            view = PortColumnLineage(product.key, port, lineage.method, lineage.note)
            if direction != "downstream":
                for column, sources in lineage.columns.items():
                    view.columns[column] = [
                        self._origin(product, s, depth, {(product.key, port, column)})
                        for s in sources]
                view.dataset = [self._origin(product, s, 1, set()) for s in lineage.dataset]
            if direction != "upstream":
                for column in lineage.columns:
                    view.dependents[column] = self._impact(product.key, port, column, depth)
            found.append(view)
        return found

    def impact(self, address: str | Address, column: str, depth: int | None = None
               ) -> tuple[str, str, list[Impact]]:
        """Every downstream port column computed from ``column`` of the port in ``address``
        (or the first port holding that column), and every port whose rows it chooses.

        Returns (product, port, impacts); an unknown port or column is a NotFoundError.
        """
        check_direction("downstream", depth)
        target = self._address(address)
        product = self.mesh.product(target)
        if target.port:
            port = self._port(product, target.port)
        else:
            holding = [p for p in product.spec.outputs if p.field(column) is not None]
            port = holding[0] if holding else product.spec.outputs[0]
        if port.field(column) is None:
            raise NotFoundError(
                f"port '{port.name}' of {product.key} has no column '{column}'",
                hint=f"columns: {', '.join(f.name for f in port.fields)}",
                code="column_not_found")
        return product.key, port.name, self._impact(product.key, port.name, column, depth)

    # --- walking -----------------------------------------------------------------------------

    def _origin(self, product: Product, source: ColumnSource, depth: int | None,
                path: set[tuple[str, str, str | None]]) -> Origin:
        item = product.spec.input(source.input)
        if not isinstance(item, ProductInput):
            label = next((s.label for s in self.sources(product) if s.input == source.input),
                         source.input)
            return Origin(label, source.column, source.subtype, source.input, "source")
        read = Address.parse(item.product)
        port = self._port_name(read)
        origin = Origin(f"{read.product_key}.{port}", source.column, source.subtype,
                        source.input, "port")
        step = (read.product_key, port, source.column)
        more = depth is None or depth > 1
        upstream = self.mesh.products.get(read.product_key)
        if source.column is None or not more or upstream is None or step in path:
            return origin  # the path check keeps a hand-made cycle from looping
        lineage = self.port_columns(upstream.key).get(port)
        if lineage is None:
            return origin
        deeper = None if depth is None else depth - 1
        origin.upstream = [self._origin(upstream, s, deeper, path | {step})
                           for s in lineage.sources(source.column)]
        return origin

    def _impact(self, key: str, port: str, column: str | None, depth: int | None
                ) -> list[Impact]:
        found: list[Impact] = []
        seen = {(key, port, column)}
        reported: set[tuple[str, str, str | None, str]] = set()
        queue = deque([(key, port, column, 0)])
        while queue:
            current, current_port, current_column, distance = queue.popleft()
            if depth is not None and distance >= depth:
                continue
            via = f"{current}.{current_port}" + (f".{current_column}" if current_column else "")
            for reader in self.graph.direct(current, "downstream"):
                product = self.mesh.products[reader]
                inputs = {item.name for item, read in self._product_inputs(product)
                          if read.product_key == current and self._port_name(read) == current_port}
                if not inputs:
                    continue
                for lineage in self.port_columns(reader).values():
                    for hit_column, subtype in _hits(lineage, inputs, current_column):
                        step = (reader, lineage.port, hit_column)
                        if (*step, subtype) not in reported:  # BFS: first at its shortest
                            reported.add((*step, subtype))
                            found.append(Impact(reader, lineage.port, hit_column, subtype,
                                                distance + 1, via, subtype != "unknown"))
                        if step not in seen:  # each column is followed further once
                            seen.add(step)
                            queue.append((reader, lineage.port, hit_column, distance + 1))
        return found

    # --- helpers -----------------------------------------------------------------------------

    def _address(self, address: str | Address) -> Address:
        return Address.parse(address) if isinstance(address, str) else address

    def _port(self, product: Product, name: str) -> Any:
        port = product.spec.port(name)
        if port is None:
            raise NotFoundError(f"{product.key} has no port '{name}'",
                                hint=f"ports: {', '.join(p.name for p in product.spec.outputs)}",
                                code="port_not_found")
        return port

    def _port_name(self, address: Address) -> str:
        if address.port:
            return address.port
        product = self.mesh.products.get(address.product_key)
        return product.spec.outputs[0].name if product else "?"

    def _product_inputs(self, product: Product) -> list[tuple[ProductInput, Address]]:
        found = []
        for item in product.spec.inputs:
            if isinstance(item, ProductInput):
                try:
                    found.append((item, Address.parse(item.product)))
                except AddressError:
                    continue  # reported by the spec loader
        return found

    def _release(self, key: str, number: int | None) -> Release | None:
        storage = ProductStorage(self.mesh.storage_root, key)
        return storage.release(number) if number is not None else storage.latest()

    def _latest_number(self, key: str) -> int | None:
        numbers = ProductStorage(self.mesh.storage_root, key).release_numbers()
        return numbers[-1] if numbers else None

    def _relative(self, product: Product, path: str) -> str:
        full = os.path.normpath(product.folder / path)
        try:
            return os.path.relpath(full, self.mesh.root)
        except ValueError:
            return full


def _hits(lineage: PortColumns, inputs: set[str], column: str | None
          ) -> list[tuple[str | None, str]]:
    """(column or None for the rows, subtype) of ``lineage`` that depend on ``column`` of
    one of ``inputs`` (None: on its rows, e.g. a filter upstream changed them)."""
    hits: list[tuple[str | None, str]] = []
    if column is None:
        uses = any(s.input in inputs for found in lineage.columns.values() for s in found) or \
            any(s.input in inputs for s in lineage.dataset)
        return [(None, "rows")] if uses else []
    for out, sources in lineage.columns.items():
        for source in sources:
            if source.input in inputs and (source.column == column or
                                           source.subtype == "unknown"):
                hits.append((out, source.subtype))
                break
    # ORDER BY does not change what a port holds (ports are stored in key order anyway)
    chosen = sorted({s.subtype for s in lineage.dataset
                     if s.input in inputs and s.column == column and s.subtype != "sort"})
    hits += [(None, subtype) for subtype in chosen]
    return hits


def input_columns(mesh: Mesh, product: Product) -> dict[str, list[str] | None]:
    """Each input's column names: a product input's are its port's fields; others unknown."""
    found: dict[str, list[str] | None] = {}
    for item in product.spec.inputs:
        found[item.name] = None
        if isinstance(item, ProductInput):
            try:
                address = Address.parse(item.product)
            except QuantaError:
                continue
            upstream = mesh.products.get(address.product_key)
            port = upstream.spec.port(address.port) if upstream else None
            if port is not None:
                found[item.name] = [f.name for f in port.fields]
    return found


def check_direction(direction: str, depth: int | None) -> None:
    """Refuse a direction or depth that means nothing, naming the ones that do."""
    if direction not in DIRECTIONS:
        raise QuantaError(f"unknown direction {direction!r}", code="bad_request",
                          hint=f"use one of {', '.join(DIRECTIONS)}")
    if depth is not None and depth < 1:
        raise QuantaError(f"depth {depth} must be 1 or more", code="bad_request",
                          hint="leave it out to follow lineage all the way")
