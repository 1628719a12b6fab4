"""``type: product`` inputs: another product's output port at a release."""

from __future__ import annotations

import pyarrow as pa

from quanta.address import Address
from quanta.engine.duckdb import DuckDBSession, literal, quote
from quanta.errors import InputError, QuantaError
from quanta.inputs.base import InputContext, Since
from quanta.spec.mesh import find_mesh_root, load_mesh
from quanta.spec.models import ProductInput
from quanta.storage import InputRead
from quanta.storage.history import ReleaseExpiredError


class ProductConnector:
    type = "product"
    reads_since = True

    def load(self, session: DuckDBSession, spec: ProductInput, context: InputContext,
             since: Since | None = None) -> InputRead:
        address = Address.parse(spec.product)
        if context.remote is not None and context.remote.serves(address.product_key):
            return context.remote.load(session, spec, since)
        if address.product_key in context.external:
            raise InputError(
                f"input '{spec.name}': {address.product_key} is served by another unit, and "
                "this build was given no way to reach it",
                hint="run the product with 'quanta run --product BUNDLE --catalog URL' (or set "
                "QUANTA_CATALOG_URL) and a token in QUANTA_TOKEN", code="input_remote")
        storage = context.storage(address.product_key)
        lifecycle = storage.lifecycle()
        if lifecycle.state == "retired":
            raise QuantaError(
                f"input '{spec.name}': {lifecycle.notice(address.product_key)}",
                hint=f"read {lifecycle.replacement} instead" if lifecycle.replacement else
                f"ask the owners of {address.product_key} what replaces it",
                code="input_retired")
        if lifecycle.state == "draft":
            _check_draft_reader(spec, address, context)
        pinned = spec.release or address.version
        try:
            release = storage.release(pinned) if pinned else storage.latest()
        except ReleaseExpiredError as exc:
            raise InputError(f"input '{spec.name}': {exc.message}",
                             hint="pin a release still available, or drop 'release' to read "
                             "the latest", code="input_release_expired") from None
        if release is None:
            raise InputError(
                f"input '{spec.name}': product {address.product_key} has no release yet",
                hint=f"build it first: quanta build {address.product_key}",
            )
        port = address.port or next(iter(release.ports))
        storage.verify(release, [port])
        files = storage.data_files(release, port)
        # system columns (_recorded_at, _pseudonym_*) are the platform's, not the product's
        schema = storage.arrow_schema(release, port)
        keep = [f for f in schema if not f.name.startswith("_")]
        if files:
            listing = ", ".join(literal(str(f)) for f in files)
            columns = ", ".join(quote(f.name) for f in keep)
            # a view, not a copy: the build session may read released data of its mesh
            where = f" WHERE {since.condition()}" if since else ""
            session.execute(
                f"CREATE TEMP VIEW {quote(spec.name)} AS SELECT {columns} "
                f"FROM read_parquet([{listing}]){where}"
            )
        else:
            session.load_table(spec.name, pa.schema(keep).empty_table())
        return InputRead(
            type="product", product=str(address.with_port(port)), release=release.release,
            rows=release.ports[port].rows,
        )


def _check_draft_reader(spec: ProductInput, address: Address, context: InputContext) -> None:
    """Only products of the draft's own team read a draft (its owners trying it out)."""
    upstream = reader = None
    try:  # a draft read as an input is rare: the mesh is loaded only then
        mesh = load_mesh(find_mesh_root(context.product_folder))
        upstream = mesh.product(address.product_key).spec.owner.team
        folder = context.product_folder.resolve()
        reader = next((p.spec.owner.team for p in mesh.products.values()
                       if p.folder == folder), None)
    except QuantaError:
        pass
    if upstream is None or reader != upstream:
        raise InputError(
            f"input '{spec.name}': {address.product_key} is a draft: only its owners read it "
            "until it is activated",
            hint=f"ask its owners{f' (group:{upstream})' if upstream else ''} to activate it "
            f"(quanta activate {address.product_key}), or read another product",
            code="input_draft")
