"""``type: product`` inputs: another product's output port at a release."""

from __future__ import annotations

import pyarrow as pa

from quanta.address import Address
from quanta.engine.duckdb import DuckDBSession, literal, quote
from quanta.errors import InputError, QuantaError
from quanta.inputs.base import InputContext
from quanta.spec.models import ProductInput
from quanta.storage import InputRead


class ProductConnector:
    type = "product"

    def load(self, session: DuckDBSession, spec: ProductInput, context: InputContext) -> InputRead:
        address = Address.parse(spec.product)
        storage = context.storage(address.product_key)
        lifecycle = storage.lifecycle()
        if lifecycle.state == "retired":
            raise QuantaError(
                f"input '{spec.name}': {lifecycle.notice(address.product_key)}",
                hint=f"read {lifecycle.replacement} instead" if lifecycle.replacement else
                f"ask the owners of {address.product_key} what replaces it",
                code="input_retired")
        pinned = spec.release or address.version
        release = storage.release(pinned) if pinned else storage.latest()
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
            session.execute(
                f"CREATE TEMP VIEW {quote(spec.name)} AS SELECT {columns} "
                f"FROM read_parquet([{listing}])"
            )
        else:
            session.load_table(spec.name, pa.schema(keep).empty_table())
        return InputRead(
            type="product", product=str(address.with_port(port)), release=release.release,
            rows=release.ports[port].rows,
        )
