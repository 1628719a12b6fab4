"""Reading a mesh whose products are served by separate units, found through the catalog.

``quanta.connect(catalog=URL, token=...)`` returns a ``FederatedClient``. ``read`` goes to the
endpoint serving the product. ``sql`` plans the query (``quanta.container.planner``), asks
each endpoint for the columns and filters of its tables over Arrow (through that endpoint's
sidecar, so its grants, masks, row filters, limits and audit apply), pins every table of one
product to one release, and runs the query here in an in-memory DuckDB over what came back.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa

from quanta.address import Address
from quanta.container.endpoints import Endpoint, EndpointRegistry
from quanta.container.planner import FederatedPlan, MeshTable, narrow, parse
from quanta.engine.duckdb import DuckDBSession
from quanta.errors import QuantaError, QueryError
from quanta.sdk import HttpClient, ResultTable
from quanta.sidecar.snapshot import AsOf


class FederatedResult(ResultTable):
    """A result read through the catalog: the snapshot of every product read, and the
    endpoint that served each (``.endpoints``: product → HTTP URL)."""

    def __init__(self, table: pa.Table, snapshot: dict[str, int], notices: list[str],
                 endpoints: dict[str, str]) -> None:
        super().__init__(table, snapshot, notices)
        self.endpoints = endpoints


class FederatedClient:
    """Products served by separate units, reached through the endpoints a catalog knows."""

    def __init__(self, catalog_url: str, token: str | None) -> None:
        self.registry = EndpointRegistry.open(catalog_url)
        self.token = token
        self._clients: dict[str, HttpClient] = {}

    def endpoint(self, product: str) -> Endpoint:
        """The live endpoint serving ``product`` (``domain.product`` or an address)."""
        key = Address.parse(product).product_key
        return self.registry.resolve(key)

    def products(self) -> list[str]:
        """Products served now."""
        return sorted({e.product for e in self.registry.live()})

    def read(self, address: str, as_of: str | int | None = None,
             purpose: str | None = None) -> FederatedResult:
        """A whole port (``quanta://d/p[/port][@N]``), from the endpoint serving it."""
        endpoint = self.endpoint(address)
        result = self._call(endpoint, lambda c: c.read(address, as_of, purpose))
        return FederatedResult(result.arrow, result.snapshot, result.notices,
                               {endpoint.product: endpoint.http_url})

    def ask(self, product: str, query: str, as_of: str | int | None = None,
            purpose: str | None = None) -> ResultTable:
        """``query`` as written, of the endpoint serving ``product`` alone (its sidecar
        applies its policies); the result's snapshot names the release it read."""
        endpoint = self.endpoint(product)
        return self._call(endpoint, lambda c: c.sql(query, as_of, purpose))

    def sql(self, query: str, as_of: str | int | None = None,
            purpose: str | None = None) -> FederatedResult:
        """One SELECT over ports of products served anywhere the catalog knows."""
        plan = parse(query)
        if not plan.tables:
            raise QueryError("the query reads no data product", code="query_refused",
                             hint="read a port, e.g. SELECT * FROM domain.product LIMIT 10")
        at = AsOf.parse(as_of)
        if at is not None and at.moment is None and len(plan.products) > 1:
            raise QueryError(
                "as_of as a release number or major version is ambiguous when a query reads "
                "several products", code="as_of_ambiguous",
                hint="pin the whole query with a timestamp, e.g. as_of='2026-11-01T12:00:00Z'")
        endpoints = {key: self.endpoint(key) for key in plan.products}
        # the first read of a product pins its release: every table of it is read there
        releases: dict[str, str | int | None] = {key: as_of for key in plan.products}
        pinned: set[str] = set()
        schemas: dict[str, list[str]] = {}
        for table in plan.tables:  # learn each table's columns (what this reader sees)
            probe = self._call(endpoints[table.product], lambda c, t=table: c.sql(
                f"SELECT * FROM {t.written} LIMIT 0", releases[t.product], purpose))
            schemas[table.relation] = probe.arrow.schema.names
            if table.product not in pinned and table.product in probe.snapshot:
                releases[table.product] = probe.snapshot[table.product]
                pinned.add(table.product)
        narrow(plan, lambda t: schemas[t.relation])

        def fetch(table: MeshTable) -> ResultTable:
            return self._call(endpoints[table.product], lambda c: c.sql(
                table.remote_sql(schemas[table.relation]), releases[table.product], purpose))

        with ThreadPoolExecutor(max_workers=min(8, len(plan.tables))) as pool:
            fetched = list(zip(plan.tables, pool.map(fetch, plan.tables), strict=True))
        return self._run_here(plan, fetched, endpoints)

    def _run_here(self, plan: FederatedPlan, fetched: list[tuple[MeshTable, ResultTable]],
                  endpoints: dict[str, Endpoint]) -> FederatedResult:
        snapshot: dict[str, int] = {}
        notices: list[str] = []
        session = DuckDBSession()
        try:
            for table, result in fetched:
                session.load_table(table.relation, result.arrow.replace_schema_metadata(None))
                snapshot.update(result.snapshot)
                notices += [n for n in result.notices if n not in notices]
            session.lock_file_access()  # the query reads what the endpoints sent, nothing else
            try:
                answer = session.table(plan.local_sql)
            except Exception as exc:  # DuckDB's own errors: the user's query is wrong
                text = str(exc).split("\n")[0].replace("__mesh_", "table #")
                raise QueryError(f"query failed: {text}", code="query_failed",
                                 hint="check column names and types with 'quanta show "
                                 "<product>'") from None
        finally:
            session.close()
        return FederatedResult(answer, snapshot, notices,
                               {key: e.http_url for key, e in endpoints.items()})

    def _call(self, endpoint: Endpoint, ask: Any) -> ResultTable:
        """``ask(client)`` of the endpoint's client; a unit that does not answer is a clear
        error naming it."""
        import httpx

        client = self._clients.get(endpoint.http_url)
        if client is None:
            client = self._clients[endpoint.http_url] = HttpClient(endpoint.http_url,
                                                                   self.token)
        try:
            return ask(client)
        except httpx.TransportError as exc:
            raise QuantaError(
                f"the endpoint of {endpoint.product} ({endpoint.http_url}) does not answer: "
                f"{exc}", code="endpoint_unreachable",
                hint="it may have stopped without deregistering; it is ignored once its "
                "heartbeat is stale, or start it again") from None

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        self.registry.close()
