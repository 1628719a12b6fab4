"""Read ports and run queries at a pinned snapshot, through the gate.

This is the read path every serving mode shares. The serving issue adds authentication,
grants, masks and audit around it; nothing reads product data any other way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import duckdb
import pyarrow as pa

from quanta.address import Address
from quanta.engine.base import EngineLimits
from quanta.engine.duckdb import DuckDBEngine, DuckDBSession, literal, quote
from quanta.errors import NotFoundError, QueryError
from quanta.sidecar.gate import GatedQuery, gate
from quanta.sidecar.snapshot import AsOf, pin
from quanta.spec.mesh import Mesh
from quanta.storage import ProductStorage, Release


def relation_name(address: Address) -> str:
    """The engine-side name of a port's relation."""
    return f"port__{address.domain}__{address.product}__{address.port}"


@dataclass
class QueryResult:
    """A query's result and the snapshot it read (product key → release number)."""

    table: pa.Table
    snapshot: dict[str, int]
    ports: tuple[Address, ...] = ()
    extra: dict[str, object] = field(default_factory=dict)

    def snapshot_header(self) -> str:
        """``domain.product@N,...``: enough to repeat the query exactly."""
        return ",".join(f"{k}@{v}" for k, v in sorted(self.snapshot.items()))


class MeshReader:
    """Reads released data of one mesh."""

    def __init__(self, mesh: Mesh, limits: EngineLimits | None = None) -> None:
        self.mesh = mesh
        self.engine = DuckDBEngine()
        self.limits = limits

    def resolve(self, address: Address) -> Address:
        """Fill in the port of ``address`` (the first port by default) and check it exists."""
        product = self.mesh.product(address)
        port = product.spec.port(address.port)
        if port is None:
            raise NotFoundError(
                f"{product.key} has no port '{address.port}'",
                hint=f"ports: {', '.join(p.name for p in product.spec.outputs)}",
                code="port_not_found",
            )
        return Address(address.domain, address.product, port.name, address.version)

    def storage(self, key: str) -> ProductStorage:
        return ProductStorage(self.mesh.storage_root, key)

    def query(self, sql: str, as_of: AsOf | None = None) -> QueryResult:
        """Run one SELECT over mesh ports at ``as_of`` (default: latest releases)."""
        gated = gate(sql, self.resolve, relation_name)
        if not gated.ports:
            raise QueryError(
                "the query reads no data product",
                hint="read a port, e.g. SELECT * FROM listening.play_events LIMIT 10",
                code="query_refused",
            )
        releases = self._pin(gated, as_of)
        with self._session(gated, releases) as session:
            try:
                table = session.table(gated.rewritten)
            except duckdb.Error as exc:
                raise QueryError(
                    f"query failed: {_engine_message(exc)}", code="query_failed",
                    hint="check column names and types with 'quanta show <product>'",
                ) from None
        return QueryResult(table, {k: r.release for k, r in releases.items()}, gated.ports)

    def read(self, address: Address | str, as_of: AsOf | None = None) -> QueryResult:
        """A whole port at a release (``address@N`` or ``as_of``)."""
        if isinstance(address, str):
            address = Address.parse(address)
        full = self.resolve(address)
        if address.version is not None:
            as_of = AsOf(release=address.version)
        return self.query(f"SELECT * FROM {full.domain}.{full.product}.{full.port}", as_of)

    def _pin(self, gated: GatedQuery, as_of: AsOf | None) -> dict[str, Release]:
        keys = list(dict.fromkeys(a.product_key for a in gated.ports))
        return {key: pin(self.storage(key), as_of, len(keys)) for key in keys}

    def _session(self, gated: GatedQuery, releases: dict[str, Release]) -> DuckDBSession:
        session = self.engine.session(self.limits)
        root = self.mesh.storage_root / "products"
        session.allow_directory(root)
        session.lock_file_access()
        for address in gated.ports:
            storage = self.storage(address.product_key)
            release = releases[address.product_key]
            assert address.port is not None
            storage.verify(release, [address.port])
            files = storage.data_files(release, address.port)
            name = relation_name(address)
            if files:
                listing = ", ".join(literal(str(f)) for f in files)
                session.execute(
                    f"CREATE TEMP VIEW {quote(name)} AS SELECT * FROM read_parquet([{listing}])"
                )
            else:
                session.load_table(name, storage.arrow_schema(release, address.port)
                                   .empty_table())
        return session


def _engine_message(exc: duckdb.Error) -> str:
    """The engine's message without internal relation names or file paths."""
    text = str(exc).split("\n")[0]
    for prefix in ("port__",):
        if prefix in text:
            text = text.replace(prefix, "")
    return text


def latest_commit(releases: dict[str, Release]) -> datetime | None:
    """When the newest of ``releases`` was committed."""
    return max((r.committed_at for r in releases.values()), default=None)
