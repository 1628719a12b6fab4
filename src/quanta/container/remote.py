"""A unit's builds reading products that other units serve, through the catalog.

A bundled product's one-product mesh lists the products it reads as ``external``. Its build
finds the live endpoint serving each in the catalog (``--catalog``, ``QUANTA_CATALOG_URL`` or
the mesh's ``catalog.url``) and reads the port there over Arrow, as the principal whose token
is in ``QUANTA_TOKEN``: the upstream unit's sidecar applies its grants, masks, row filters and
audit to the downstream unit like to any consumer. The runtime asks the same endpoint which
release it serves (a zero-row query) to tell when the upstream has a new one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from quanta.address import Address
from quanta.errors import InputError, NotFoundError, QuantaError
from quanta.inputs.base import Since
from quanta.spec.mesh import Mesh
from quanta.spec.models import ProductInput
from quanta.storage import InputRead

if TYPE_CHECKING:
    from quanta.container.federation import FederatedClient
    from quanta.engine.duckdb import DuckDBSession
    from quanta.sdk import ResultTable

TOKEN_ENV = "QUANTA_TOKEN"
CATALOG_ENV = "QUANTA_CATALOG_URL"
PROBE_SECONDS = 5.0
"""How long the release a unit serves is taken as known (the runtime asks every poll)."""


class CatalogInputs:
    """Reads ``products`` (served by other units) through the catalog at ``catalog_url``."""

    def __init__(self, products: frozenset[str], catalog_url: str | None,
                 environ: Mapping[str, str] | None = None) -> None:
        self.products = products
        self.catalog_url = catalog_url
        self.environ = dict(os.environ if environ is None else environ)
        self._client: FederatedClient | None = None
        self._probed: dict[str, tuple[float, int | None]] = {}

    def serves(self, product_key: str) -> bool:
        """Whether ``product_key`` is read from another unit."""
        return product_key in self.products

    def load(self, session: DuckDBSession, spec: ProductInput, since: Since | None = None
             ) -> InputRead:
        """Read ``spec``'s port from the unit serving it into ``session`` as ``spec.name``."""
        address = Address.parse(spec.product)
        query = f"SELECT * FROM {_table(address)}"
        if since is not None:
            query += f" WHERE {since.condition()}"
        result = self._ask(spec, query)
        table = result.arrow.replace_schema_metadata(None)
        keep = [name for name in table.column_names if not name.startswith("_")]
        session.load_table(spec.name, table.select(keep))
        return InputRead(type="product", product=str(address),
                         release=result.snapshot.get(address.product_key), rows=table.num_rows,
                         after=since.value if since else None)

    def release(self, spec: ProductInput) -> int | None:
        """The release the unit serving ``spec``'s product gives now; None when it cannot be
        told (no catalog, no unit, no token, refused)."""
        key = Address.parse(spec.product).product_key
        known = self._probed.get(key)
        if known is not None and time.monotonic() - known[0] < PROBE_SECONDS:
            return known[1]
        try:
            result = self._ask(spec, f"SELECT * FROM {_table(Address.parse(spec.product))} "
                               "LIMIT 0")
            served = result.snapshot.get(key)
        except QuantaError:
            served = None
        self._probed[key] = (time.monotonic(), served)
        return served

    def _ask(self, spec: ProductInput, query: str) -> ResultTable:
        """``query`` of the endpoint serving ``spec``'s product, every failure an InputError
        saying whether trying again may help."""
        from quanta.catalog.entry import CatalogUnavailableError
        from quanta.sidecar.access import AuthorizationError
        from quanta.sidecar.tokens import AuthenticationError

        address = Address.parse(spec.product)
        key = address.product_key
        name = f"input '{spec.name}'"
        token = self.environ.get(TOKEN_ENV)
        if not token:
            raise InputError(
                f"{name}: {key} is served by another unit and {TOKEN_ENV} is not set",
                hint=f"set {TOKEN_ENV} to a token of the upstream unit ('quanta token create' "
                f"there) whose principal is granted {key}", code="input_token_missing")
        try:
            client = self._connect(token)
            try:
                client.endpoint(key)  # the catalog's answer, told apart from the unit's 404s
            except NotFoundError as exc:
                raise self._not_served(name, key, exc) from None
            return client.ask(key, query, spec.release or address.version)
        except InputError:
            raise
        except CatalogUnavailableError as exc:
            self.close()
            raise InputError(f"{name}: the catalog cannot be read to find {key}: "
                             f"{exc.message}", hint="it is tried again; check the catalog "
                             "database is up", code="input_catalog_unavailable",
                             transient=True) from None
        except AuthenticationError as exc:
            raise InputError(f"{name}: the unit serving {key} refused the token in "
                             f"{TOKEN_ENV}: {exc.message}", code="input_token_refused",
                             hint=f"set {TOKEN_ENV} to a token created in the unit serving "
                             f"{key} ('quanta token create' there)") from None
        except AuthorizationError as exc:
            raise InputError(f"{name}: the unit serving {key} refused the principal of "
                             f"{TOKEN_ENV}: {exc.message}", code="input_forbidden",
                             hint=exc.hint or f"ask the owners of {key} for a grant") from None
        except QuantaError as exc:
            if exc.code == "endpoint_unreachable":
                raise InputError(f"{name}: {exc.message}", hint=exc.hint, transient=True,
                                 code="input_unit_unreachable") from None
            raise InputError(f"{name}: reading {key} from the unit serving it: "
                             f"{exc.message}", hint=exc.hint, code="input_failed") from None

    def _not_served(self, name: str, key: str, exc: NotFoundError) -> InputError:
        """No live unit serves ``key``: transient when the catalog knows the product (its
        unit is down and may come back), terminal when it has never heard of it."""
        assert self._client is not None
        catalog = self._client.registry.catalog
        try:
            known = catalog.document(key) is not None or bool(catalog.endpoints(key))
            registered = catalog.keys()
        except QuantaError:
            known, registered = True, []
        if known:
            return InputError(f"{name}: {exc.message}", transient=True,
                              code="input_unit_unreachable",
                              hint=f"it is tried again; start the unit serving {key}")
        return InputError(
            f"{name}: no unit serves {key} and the catalog {catalog.where} does not know it",
            hint=f"registered products: {', '.join(registered) or 'none'}; check the "
            "catalog URL, or serve it with 'quanta serve --product'",
            code="input_not_served")

    def _connect(self, token: str) -> FederatedClient:
        if self._client is None:
            if not self.catalog_url:
                raise InputError(
                    "no catalog to find the units serving "
                    f"{', '.join(sorted(self.products))}",
                    hint=f"pass --catalog URL or set {CATALOG_ENV} (the catalog the upstream "
                    "units register in)", code="input_catalog_missing")
            from quanta.container.federation import FederatedClient

            self._client = FederatedClient(self.catalog_url, token)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def remote_inputs(mesh: Mesh, catalog: str | None = None) -> CatalogInputs | None:
    """The reader of ``mesh``'s external products (None when it declares none): through
    ``catalog``, else ``QUANTA_CATALOG_URL``, else the mesh's ``catalog.url``."""
    products = mesh.external_products()
    if not products:
        return None
    url = catalog
    if url is None and (os.environ.get(CATALOG_ENV) or mesh.spec.catalog.url):
        from quanta.catalog.location import catalog_url

        url = catalog_url(mesh)  # a relative SQLite path is relative to mesh.yaml
    return CatalogInputs(products, url)


def _table(address: Address) -> str:
    return ".".join(p for p in (address.domain, address.product, address.port) if p)

