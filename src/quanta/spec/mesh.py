"""A mesh on disk: ``mesh.yaml`` and every ``dataproduct.yaml`` it points to."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from quanta.address import Address
from quanta.errors import AddressError, Location, NotFoundError, QuantaError, SpecError
from quanta.spec.loader import SpecDocument, load_model, read_yaml, validate
from quanta.spec.models import ConsentPolicy, MeshSpec, ProductInput, ProductSpec
from quanta.spec.semantics import check_product

MESH_FILE = "mesh.yaml"
PRODUCT_FILE = "dataproduct.yaml"
_DEFINITION_SUFFIXES = {".yaml", ".yml", ".sql", ".py"}
_digests: dict[Path, tuple[tuple[tuple[str, int, int], ...], str]] = {}


@dataclass(frozen=True)
class Product:
    """One data product as declared: its spec, its folder and the document it came from."""

    spec: ProductSpec
    doc: SpecDocument

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def folder(self) -> Path:
        return self.doc.file.parent

    def definition_digest(self) -> str:
        """A digest of what the product declares: its spec and the code and settings in its
        folder (SQL, Python, YAML; data files are inputs, compared by the runtime on their
        own). A release built from another digest is out of date. The runtime asks on every
        poll, so the files are read again only when one's size or time changed."""
        files = []
        for file in sorted(self.folder.rglob("*")):
            parts = file.relative_to(self.folder).parts
            if (file.suffix.lower() not in _DEFINITION_SUFFIXES or not file.is_file()
                    or any(p.startswith(".") or p == "__pycache__" for p in parts)):
                continue
            stat = file.stat()
            files.append(("/".join(parts), file, stat.st_size, stat.st_mtime_ns))
        stamp = tuple((name, size, mtime) for name, _, size, mtime in files)
        cached = _digests.get(self.folder)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        digest = hashlib.sha256()
        for name, file, _, _ in files:
            digest.update(f"{name}\0".encode())
            digest.update(file.read_bytes())
        value = digest.hexdigest()[:16]
        _digests[self.folder] = (stamp, value)
        return value

    def upstream(self) -> list[tuple[str, Address]]:
        """(input name, address) of each product this one reads."""
        links = []
        for item in self.spec.inputs:
            if isinstance(item, ProductInput):
                try:
                    links.append((item.name, Address.parse(item.product)))
                except AddressError:
                    continue  # reported with its location by check_product
        return links


@dataclass
class Mesh:
    """A loaded mesh; ``problems`` holds everything wrong, ``products`` what loaded cleanly."""

    root: Path
    spec: MeshSpec
    products: dict[str, Product] = field(default_factory=dict)
    problems: list[QuantaError] = field(default_factory=list)

    @cached_property
    def storage_root(self) -> Path:
        # resolved once: every read asks for it several times, and resolve() stats each part
        return (self.root / self.spec.storage.root).resolve()

    def region_root(self, region: str) -> Path:
        """The storage folder of ``region`` (data sovereignty)."""
        return (self.root / self.spec.storage.regions[region]).resolve()

    def readable_roots(self) -> list[Path]:
        """Every folder released data may live in: the storage root's products and each
        region's, so engines may read them (and nothing else)."""
        return [self.storage_root / "products",
                *(self.region_root(r) / "products" for r in sorted(self.spec.storage.regions))]

    def external_products(self) -> frozenset[str]:
        """Keys of the products ``external`` declares: served by other units, read through
        the catalog rather than from this mesh's storage."""
        keys = set()
        for address in self.spec.external:
            try:
                keys.add(Address.parse(address).product_key)
            except AddressError:
                continue  # reported by _check_links
        return frozenset(keys)

    def product(self, key: str | Address) -> Product:
        """The product at ``key`` (``domain.product`` or an address), or NotFoundError."""
        name = key.product_key if isinstance(key, Address) else key
        try:
            return self.products[name]
        except KeyError:
            raise NotFoundError(
                f"no product '{name}' in mesh '{self.spec.name}'",
                hint=f"products: {', '.join(sorted(self.products)) or 'none yet'}",
            ) from None

    def raise_problems(self) -> None:
        """Raise a SpecError holding every problem, if there is any."""
        if self.problems:
            raise SpecError(self.problems)

    def build_order(self, keys: list[str] | None = None) -> list[str]:
        """Products in dependency order (upstream first); with ``keys``, those and no others."""
        wanted = set(keys) if keys else set(self.products)
        order: list[str] = []
        done: set[str] = set()

        def visit(key: str) -> None:
            if key in done:
                return
            done.add(key)
            for _, address in self.products[key].upstream():
                if address.product_key in self.products:
                    visit(address.product_key)
            if key in wanted:
                order.append(key)

        for key in sorted(wanted):
            visit(key)
        return order

    def downstream(self, key: str) -> list[str]:
        """Products that read ``key`` directly."""
        return sorted(
            k for k, p in self.products.items()
            if any(a.product_key == key for _, a in p.upstream())
        )


def find_mesh_root(start: Path | None = None) -> Path:
    """``QUANTA_MESH``, else the nearest folder upwards from ``start`` holding mesh.yaml."""
    env = os.environ.get("QUANTA_MESH")
    if start is None and env:
        return Path(env).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / MESH_FILE).is_file():
            return folder
    raise NotFoundError(
        f"no {MESH_FILE} in {here} or any folder above it",
        hint="run inside a mesh, pass --mesh DIR, set QUANTA_MESH, or create one with "
        "'quanta init DIR'",
        code="mesh_not_found",
    )


def load_mesh(root: Path) -> Mesh:
    """Load ``root/mesh.yaml`` and every product; collect problems instead of stopping."""
    root = root.resolve()
    mesh_file = root / MESH_FILE
    if not mesh_file.is_file():
        raise NotFoundError(
            f"{mesh_file} does not exist", hint="create a mesh with 'quanta init DIR'",
            code="mesh_not_found",
        )
    doc = read_yaml(mesh_file)
    spec, problems = validate(doc, MeshSpec)
    if spec is None:
        raise SpecError(problems)
    mesh = Mesh(root=root, spec=spec)
    files: set[Path] = set()
    for pattern in spec.products:
        files.update(p.resolve() for p in root.glob(pattern) if p.is_file())
    docs: dict[str, SpecDocument] = {}
    for file in sorted(files):
        product_doc, product_spec, found = load_model(file, ProductSpec)
        mesh.problems += found
        if product_doc is None or product_spec is None:
            continue
        mesh.problems += check_product(product_spec, product_doc)
        if product_spec.key in mesh.products:
            other = mesh.products[product_spec.key].doc.file
            mesh.problems.append(QuantaError(
                f"product '{product_spec.key}' is also declared in {other}",
                hint="each domain.product must be unique in the mesh",
                location=product_doc.locate(("name",)), code="spec_duplicate_product",
            ))
            continue
        mesh.products[product_spec.key] = Product(product_spec, product_doc)
        docs[product_spec.key] = product_doc
    mesh.problems += _check_links(mesh)
    return mesh


def _check_links(mesh: Mesh) -> list[QuantaError]:
    """Product inputs must name existing products and ports, without cycles."""
    problems = []
    external = mesh.external_products()
    for index, address_text in enumerate(mesh.spec.external):
        try:
            Address.parse(address_text)
        except AddressError as exc:
            problems.append(QuantaError(
                f"external product: {exc.message}", code="spec_inconsistent",
                location=Location(mesh.root / MESH_FILE),
                hint=f"external[{index}]: write quanta://domain/product[/port]"))
    for key, product in mesh.products.items():
        for index, item in enumerate(product.spec.inputs):
            if not isinstance(item, ProductInput):
                continue
            where = product.doc.locate(("inputs", index, "product"))
            try:
                address = Address.parse(item.product)
            except QuantaError:
                continue  # reported by check_product
            target = mesh.products.get(address.product_key)
            if target is None and address.product_key in external:
                continue  # served by another unit: its ports are checked where it runs
            if address.product_key == key:
                problems.append(QuantaError(
                    f"product '{key}' reads itself", location=where,
                    hint="a product cannot be its own input", code="spec_cycle",
                ))
            elif target is None:
                problems.append(QuantaError(
                    f"input '{item.name}' reads unknown product '{address.product_key}'",
                    location=where, code="spec_unknown_product",
                    hint=f"products: {', '.join(sorted(mesh.products))}",
                ))
            elif address.port and target.spec.port(address.port) is None:
                problems.append(QuantaError(
                    f"input '{item.name}' reads unknown port '{address.port}' of "
                    f"'{address.product_key}'", location=where, code="spec_unknown_port",
                    hint=f"ports: {', '.join(p.name for p in target.spec.outputs)}",
                ))
    problems += _check_consent_sources(mesh)
    problems += _check_regions(mesh)
    problems += _find_cycles(mesh)
    return problems


def _check_consent_sources(mesh: Mesh) -> list[QuantaError]:
    """Consent policies must name an existing port with the subject and a boolean column."""
    problems = []
    for product in mesh.products.values():
        for index, policy in enumerate(product.spec.policies):
            if not isinstance(policy, ConsentPolicy):
                continue
            where = product.doc.locate(("policies", index, "source"))
            try:
                address = Address.parse(policy.source)
            except QuantaError as exc:
                problems.append(QuantaError(f"consent source: {exc.message}", location=where,
                                            hint="write quanta://domain/product[/port]",
                                            code="spec_inconsistent"))
                continue
            target = mesh.products.get(address.product_key)
            port = None if target is None else target.spec.port(address.port)
            if port is None:
                problems.append(QuantaError(
                    f"consent source {policy.source} is not a port of this mesh",
                    location=where, code="spec_unknown_port",
                    hint=f"products: {', '.join(sorted(mesh.products))}"))
                continue
            subject = policy.source_column or policy.column
            consented = port.field(policy.consented)
            if port.field(subject) is None:
                problems.append(QuantaError(
                    f"consent source {policy.source} has no column '{subject}'",
                    location=where, code="spec_inconsistent",
                    hint="set 'source_column' to the source's column naming the subject"))
            if consented is None or consented.type != "boolean":
                problems.append(QuantaError(
                    f"consent source {policy.source} has no boolean column "
                    f"'{policy.consented}'", location=product.doc.locate(
                        ("policies", index, "consented")), code="spec_inconsistent",
                    hint="name a boolean field that is true when the subject consented"))
    return problems


def _find_cycles(mesh: Mesh) -> list[QuantaError]:
    state: dict[str, int] = {}
    stack: list[str] = []
    problems: list[QuantaError] = []

    def visit(key: str) -> None:
        state[key] = 1
        stack.append(key)
        for _, address in mesh.products[key].upstream():
            nxt = address.product_key
            if nxt not in mesh.products or nxt == key:
                continue
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt):], nxt]
                product = mesh.products[key]
                problems.append(QuantaError(
                    f"products read each other in a cycle: {' -> '.join(cycle)}",
                    location=product.doc.locate(("inputs",)) if product.spec.inputs
                    else Location(product.doc.file),
                    hint="a product's inputs must not depend on its own outputs; "
                    "break the cycle", code="spec_cycle",
                ))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[key] = 2

    for key in sorted(mesh.products):
        if key not in state:
            visit(key)
    return problems


def _check_regions(mesh: Mesh) -> list[QuantaError]:
    """A product's region must be one mesh.yaml gives a storage folder."""
    problems = []
    regions = mesh.spec.storage.regions
    for product in mesh.products.values():
        region = product.spec.region
        if region is not None and region not in regions:
            problems.append(QuantaError(
                f"region '{region}' has no storage folder in mesh.yaml",
                location=product.doc.locate(("region",)), code="spec_inconsistent",
                hint="add it under storage.regions in mesh.yaml, e.g. "
                f"storage: {{regions: {{{region}: /data/{region}}}}}"
                + (f"; regions: {', '.join(sorted(regions))}" if regions else "")))
    return problems
