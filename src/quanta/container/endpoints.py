"""Where products are served now: endpoints registered in a catalog reached by URL.

A product served as its own unit (``quanta serve --product``) registers its HTTP and Flight
URLs once it listens, renews a heartbeat every few seconds, and deregisters when it stops
cleanly. A unit killed without cleanup leaves its row behind; resolvers ignore rows whose
heartbeat is older than ``stale_after``, and the next unit to listen at the same URL
replaces it. Heartbeats are stamped by the serving machine's clock and judged by the
resolver's: clocks must agree to well within ``stale_after``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from quanta.catalog.entry import committed_stamp
from quanta.catalog.store import Catalog
from quanta.errors import NotFoundError, QuantaError

HEARTBEAT_SECONDS = 5.0
STALE_AFTER = 20.0


@dataclass(frozen=True)
class Endpoint:
    """One serving process of one product, as the catalog records it."""

    id: str
    product: str
    mesh: str
    version: str
    http_url: str
    flight_url: str | None
    host: str
    pid: int
    quanta_version: str
    started_at: str
    heartbeat_at: str

    @classmethod
    def starting(cls, product: str, mesh: str, version: str, http_url: str,
                 flight_url: str | None, quanta_version: str) -> Endpoint:
        """The endpoint of this process, starting now."""
        now = _stamp()
        return cls(secrets.token_hex(8), product, mesh, version, http_url.rstrip("/"),
                   flight_url, socket.gethostname(), os.getpid(), quanta_version, now, now)

    def row(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """Where it is, for people: HTTP and Flight URLs."""
        return self.http_url + (f" (Flight {self.flight_url})" if self.flight_url else "")


class EndpointRegistry:
    """The endpoints of a catalog: register, renew, deregister, resolve."""

    def __init__(self, catalog: Catalog, stale_after: float = STALE_AFTER) -> None:
        self.catalog = catalog
        self.stale_after = stale_after

    @classmethod
    def open(cls, url: str, stale_after: float = STALE_AFTER) -> EndpointRegistry:
        """The registry of the catalog at ``url`` (SQLAlchemy URL), its schema migrated."""
        return cls(Catalog(url), stale_after)

    @property
    def where(self) -> str:
        return self.catalog.where

    def register(self, endpoint: Endpoint) -> Endpoint:
        """Record ``endpoint`` with a fresh heartbeat."""
        fresh = replace(endpoint, heartbeat_at=_stamp())
        self.catalog.register_endpoint(fresh.row())
        return fresh

    def beat(self, endpoint: Endpoint) -> None:
        """Renew the heartbeat; register again when the row went (e.g. a catalog rebuilt)."""
        if not self.catalog.beat(endpoint.id, _stamp()):
            self.register(endpoint)

    def deregister(self, endpoint: Endpoint) -> bool:
        return self.catalog.deregister_endpoint(endpoint.id)

    def live(self, product: str | None = None) -> list[Endpoint]:
        """Endpoints with a recent heartbeat (of ``product``), the freshest first."""
        since = _stamp(datetime.now(UTC) - timedelta(seconds=self.stale_after))
        return [Endpoint(**row) for row in self.catalog.endpoints(product, since)]

    def resolve(self, product: str) -> Endpoint:
        """The live endpoint serving ``product`` (the freshest, when several do), or a
        NotFoundError listing the products served now."""
        found = self.live(product)
        if found:
            return found[0]
        served = sorted({e.product for e in self.live()})
        stale = self.catalog.endpoints(product)
        said = (f"; its last endpoint ({stale[0]['http_url']}) has sent no heartbeat since "
                f"{stale[0]['heartbeat_at']}" if stale else "")
        raise NotFoundError(
            f"no endpoint serves {product} now (catalog {self.where}){said}",
            hint=(f"products served now: {', '.join(served)}" if served else
                  "no product is served now") + f"; start one with 'quanta serve --product "
            f"{product} --catalog URL'", code="product_not_served")

    def locate(self, product: str) -> str | None:
        """Where ``product`` is served, for a hint; None when unknown or the catalog fails."""
        try:
            found = self.live(product)
        except QuantaError:
            return None
        return found[0].describe() if found else None

    def close(self) -> None:
        self.catalog.close()


class Heartbeat:
    """Keeps an endpoint registered: registers it, then renews it every ``interval`` until
    stopped. A catalog that fails is reported (once per outage) and tried again."""

    def __init__(self, registry: EndpointRegistry, endpoint: Endpoint,
                 report: Callable[[QuantaError | None], None],
                 interval: float = HEARTBEAT_SECONDS) -> None:
        self.registry = registry
        self.endpoint = endpoint
        self.report = report
        self.interval = interval
        self._stop = threading.Event()
        self._failing = False
        self._thread = threading.Thread(target=self._run, name="quanta-heartbeat", daemon=True)

    def start(self) -> None:
        """Register now (reporting the outcome), then renew in the background."""
        self._step(self.registry.register, first=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._step(self.registry.beat)

    def _step(self, action: Callable[[Endpoint], object], first: bool = False) -> None:
        """One registration or renewal; the first outcome, an outage and a recovery are
        reported, steady renewals are not."""
        try:
            action(self.endpoint)
        except QuantaError as exc:
            if first or not self._failing:
                self.report(exc)
            self._failing = True
            return
        if first or self._failing:
            self.report(None)
        self._failing = False

    def stop(self) -> None:
        """Stop renewing and deregister (a failing catalog is ignored: the row goes stale)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 5)
        with contextlib.suppress(QuantaError):
            self.registry.deregister(self.endpoint)


def _stamp(moment: datetime | None = None) -> str:
    return committed_stamp(moment or datetime.now(UTC))
