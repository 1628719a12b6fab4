"""The Python SDK: ``quanta.connect(...)`` to a local mesh folder, an HTTP server or Flight.

Every form goes through a sidecar (the local one runs in this process), so a principal sees
the same rows and masks whichever way it connects.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import pyarrow as pa

from quanta.errors import NotFoundError, QuantaError, QueryError

if TYPE_CHECKING:
    from quanta.control.access import State

SNAPSHOT_KEY = b"quanta.snapshot"


class QuantaNotice(UserWarning):
    """Something a consumer should act on: a product read is deprecated, or read at an older
    major version than its current one. Also in ``ResultTable.notices``."""


class ResultTable:
    """A query result: an Arrow table (every pyarrow.Table attribute works) plus the snapshot.

    ``.snapshot`` names the releases read (``{"domain.product": release}``); ``.to_pandas()``
    and ``.to_polars()`` convert; ``.arrow`` is the plain ``pyarrow.Table``.
    """

    def __init__(self, table: pa.Table, snapshot: dict[str, int],
                 notices: list[str] | None = None) -> None:
        header = ",".join(f"{k}@{v}" for k, v in sorted(snapshot.items()))
        self.arrow = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), SNAPSHOT_KEY: header.encode()})
        self.snapshot = snapshot
        self.notices = list(notices or [])
        for notice in self.notices:  # e.g. a product read is deprecated
            warnings.warn(notice, QuantaNotice, stacklevel=3)

    def to_polars(self) -> Any:
        """The result as a polars DataFrame."""
        import polars as pl

        return pl.from_arrow(self.arrow)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.arrow, name)

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        return self.arrow.__arrow_c_stream__(requested_schema)

    def __len__(self) -> int:
        return int(self.arrow.num_rows)

    def __repr__(self) -> str:
        return f"ResultTable({self.arrow.num_rows} rows, snapshot={self.snapshot})\n{self.arrow}"


class Client(Protocol):
    """What every connection offers."""

    def sql(self, query: str, as_of: str | int | None = None,
            purpose: str | None = None) -> ResultTable:
        """Run one SELECT over data product ports."""

    def read(self, address: str, as_of: str | int | None = None,
             purpose: str | None = None) -> ResultTable:
        """A whole port (``quanta://d/p/port[@N]``)."""

    def close(self) -> None:
        """Release the connection."""


def connect(target: str | Path | None = None, *, catalog: str | None = None,
            token: str | None = None, principal: str | None = None,
            groups: list[str] | None = None) -> Client:
    """Connect to a mesh: a folder (``principal=``, default the operator), ``http(s)://``
    or ``grpc://`` (``token=``); or, with ``catalog=`` (a catalog's SQLAlchemy URL), to
    products served by separate units, found through the endpoints that catalog knows."""
    if catalog is not None:
        if target is not None:
            raise QuantaError("connect to a mesh or to a catalog, not both",
                              hint="quanta.connect(catalog='sqlite:///...', token=...)",
                              code="bad_request")
        from quanta.container.federation import FederatedClient

        return FederatedClient(catalog, token)
    if target is None:
        raise QuantaError("connect to what?", code="bad_request",
                          hint="quanta.connect('path/to/mesh'), quanta.connect('http://...', "
                          "token=...) or quanta.connect(catalog='sqlite:///...', token=...)")
    text = str(target)
    if text.startswith(("http://", "https://")):
        return HttpClient(text, token)
    if text.startswith(("grpc://", "grpc+tcp://", "grpc+tls://")):
        return FlightClient(text, token)
    return LocalClient(Path(text), principal, groups)


class LocalClient:
    """A mesh folder, read in this process through its sidecar, as one principal."""

    def __init__(self, folder: Path, principal: str | None, groups: list[str] | None) -> None:
        from quanta.context import MeshContext

        self.context = MeshContext.discover(folder)
        self.principal = self.context.principal(principal, groups)

    def sql(self, query: str, as_of: str | int | None = None,
            purpose: str | None = None) -> ResultTable:
        result = self.context.query(query, as_of, principal=self.principal, purpose=purpose)
        return ResultTable(result.table, result.snapshot, result.notices)

    def read(self, address: str, as_of: str | int | None = None,
             purpose: str | None = None) -> ResultTable:
        result = self.context.read(address, as_of, principal=self.principal, purpose=purpose)
        return ResultTable(result.table, result.snapshot, result.notices)

    def request_access(self, address: str, reason: str, purpose: str | None = None
                       ) -> dict[str, Any]:
        """Ask the product's owners for read access (the control port)."""
        return self.context.access_requests().request(self.principal, address, purpose,
                                                       reason).to_dict()

    def access_requests(self, state: str | None = None) -> list[dict[str, Any]]:
        """Requests this principal made, and those it may decide as an owner."""
        if state not in (None, "pending", "approved", "denied"):
            raise QuantaError(f"unknown state {state!r}", hint="pending, approved or denied",
                              code="bad_request")
        requests = self.context.access_requests()
        items = requests.visible_to(self.principal, cast("State | None", state))
        return [i.to_dict() for i in items]

    def approve(self, request_id: str, expires: str | None = None,
                comment: str | None = None) -> dict[str, Any]:
        """Approve a request (owners only): an expiring grant (default 90 days)."""
        from quanta.spec.durations import parse_duration

        lifetime = parse_duration(expires) if expires else None
        return self.context.access_requests().approve(self.principal, request_id, lifetime,
                                                      comment).to_dict()

    def deny(self, request_id: str, comment: str) -> dict[str, Any]:
        """Deny a request (owners only), saying why."""
        return self.context.access_requests().deny(self.principal, request_id,
                                                   comment).to_dict()

    def grant(self, subject: str, address: str, purpose: str | None = None,
              expires: str | None = None) -> dict[str, Any]:
        """Let ``subject`` read a product this principal owns."""
        from dataclasses import asdict

        from quanta.control.grants import grant
        from quanta.spec.durations import parse_duration

        record = grant(self.context.sidecar, self.principal, subject, address, purpose,
                       parse_duration(expires) if expires else None)
        return asdict(record)

    def revoke(self, subject: str, address: str, purpose: str | None = None
               ) -> list[dict[str, Any]]:
        """Remove grants of a product this principal owns."""
        from dataclasses import asdict

        from quanta.control.grants import revoke

        return [asdict(g) for g in revoke(self.context.sidecar, self.principal, subject,
                                          address, purpose)]

    def set_lifecycle(self, address: str, state: str, sunset: str | None = None,
                      replacement: str | None = None, reason: str | None = None
                      ) -> dict[str, Any]:
        """Deprecate (``sunset`` YYYY-MM-DD), retire or reactivate a product it owns."""
        from datetime import date

        from quanta.control import lifecycle

        sidecar, who = self.context.sidecar, self.principal
        if state == "deprecated":
            if sunset is None:
                raise QuantaError("deprecating needs a sunset date", code="bad_request")
            done = lifecycle.deprecate(sidecar, who, address, date.fromisoformat(sunset),
                                       replacement, reason)
        elif state == "retired":
            done = lifecycle.retire(sidecar, who, address, replacement, reason)
        else:
            done = lifecycle.reactivate(sidecar, who, address, reason)
        return dict(done.model_dump(mode="json"))

    def erase(self, polyseme: str, value: str, dry_run: bool = False) -> dict[str, Any]:
        """Erase a data subject from every product carrying the polyseme (the operator)."""
        from quanta.control.erasure import erase

        if not self.principal.operator:
            raise QuantaError("locally, only the mesh operator erases data subjects",
                              hint="connect without principal=, or use the HTTP control port",
                              code="forbidden")
        return erase(self.context.sidecar, polyseme, value, self.principal,
                     dry_run=dry_run).to_dict()

    def close(self) -> None:
        self.context.close()


def _snapshot(header: str | None) -> dict[str, int]:
    pairs = [p.rsplit("@", 1) for p in (header or "").split(",") if "@" in p]
    return {key: int(number) for key, number in pairs}


def _raise_for(status: int, body: bytes) -> None:
    from quanta.sidecar.access import AuthorizationError
    from quanta.sidecar.core import ProductRetiredError
    from quanta.sidecar.tokens import AuthenticationError

    try:
        error = json.loads(body)["error"]
        message, hint, code = error["message"], error.get("hint"), error.get("code")
    except (ValueError, KeyError, TypeError):
        message, hint, code = body.decode(errors="replace")[:500], None, None
    kind: type[QuantaError] = {401: AuthenticationError, 403: AuthorizationError,
                               404: NotFoundError, 410: ProductRetiredError}.get(status, QueryError)
    raise kind(message, hint=hint, code=code)


class HttpClient:
    """A quanta HTTP server, read as Arrow IPC."""

    def __init__(self, url: str, token: str | None) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=300)

    def sql(self, query: str, as_of: str | int | None = None,
            purpose: str | None = None) -> ResultTable:
        response = self.http.post(
            "/api/v1/query", json={"sql": query, "as_of": as_of, "purpose": purpose},
            headers={"Accept": "application/vnd.apache.arrow.stream"},
        )
        if response.status_code != 200:
            _raise_for(response.status_code, response.content)
        table = pa.ipc.open_stream(response.content).read_all()
        notices = [n for n in response.headers.get("quanta-notice", "").split(" | ") if n]
        return ResultTable(table, _snapshot(response.headers.get("quanta-snapshot")), notices)

    def read(self, address: str, as_of: str | int | None = None,
             purpose: str | None = None) -> ResultTable:
        from quanta.address import Address

        parsed = Address.parse(address)
        port = f".{parsed.port}" if parsed.port else ""
        if parsed.version is not None:
            as_of = parsed.version
        return self.sql(f"SELECT * FROM {parsed.domain}.{parsed.product}{port}", as_of, purpose)

    def request_access(self, address: str, reason: str, purpose: str | None = None
                       ) -> dict[str, Any]:
        """Ask the product's owners for read access (the control port)."""
        return self._control("post", "/api/v1/access-requests",
                             {"address": address, "reason": reason, "purpose": purpose}
                             )["request"]

    def access_requests(self, state: str | None = None) -> list[dict[str, Any]]:
        """Requests this principal made, and those it may decide as an owner."""
        params = {"state": state} if state else None
        return list(self._control("get", "/api/v1/access-requests", None, params)["requests"])

    def approve(self, request_id: str, expires: str | None = None,
                comment: str | None = None) -> dict[str, Any]:
        """Approve a request (owners only): an expiring grant (default 90 days)."""
        return self._control("post", f"/api/v1/access-requests/{request_id}/approve",
                             {"expires": expires, "comment": comment})["request"]

    def deny(self, request_id: str, comment: str) -> dict[str, Any]:
        """Deny a request (owners only), saying why."""
        return self._control("post", f"/api/v1/access-requests/{request_id}/deny",
                             {"comment": comment})["request"]

    def grant(self, subject: str, address: str, purpose: str | None = None,
              expires: str | None = None) -> dict[str, Any]:
        """Let ``subject`` read a product this principal owns."""
        return self._control("post", "/api/v1/grants", {
            "subject": subject, "address": address, "purpose": purpose, "expires": expires}
        )["grant"]

    def revoke(self, subject: str, address: str, purpose: str | None = None
               ) -> list[dict[str, Any]]:
        """Remove grants of a product this principal owns."""
        return list(self._control("post", "/api/v1/grants/revoke", {
            "subject": subject, "address": address, "purpose": purpose})["revoked"])

    def set_lifecycle(self, address: str, state: str, sunset: str | None = None,
                      replacement: str | None = None, reason: str | None = None
                      ) -> dict[str, Any]:
        """Deprecate (``sunset`` YYYY-MM-DD), retire or reactivate a product it owns."""
        from quanta.address import Address

        parsed = Address.parse(address)
        return self._control(
            "post", f"/api/v1/products/{parsed.domain}/{parsed.product}/lifecycle",
            {"state": state, "sunset": sunset, "replacement": replacement,
             "reason": reason})["lifecycle"]

    def erase(self, polyseme: str, value: str, dry_run: bool = False) -> dict[str, Any]:
        """Erase a data subject everywhere (principals mesh.yaml allows to)."""
        return self._control("post", "/api/v1/erasures", {
            "polyseme": polyseme, "value": value, "dry_run": dry_run})["erasure"]

    def _control(self, method: str, path: str, body: dict[str, Any] | None,
                 params: dict[str, str] | None = None) -> dict[str, Any]:
        response = self.http.request(method.upper(), path, json=body, params=params)
        if response.status_code not in (200, 201):
            _raise_for(response.status_code, response.content)
        return dict(response.json())

    def close(self) -> None:
        self.http.close()


class FlightClient:
    """A quanta Arrow Flight server."""

    def __init__(self, url: str, token: str | None) -> None:
        import pyarrow.flight as flight

        self.flight = flight
        self.client = flight.FlightClient(url)
        headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
        self.options = flight.FlightCallOptions(headers=headers)

    def _get(self, ticket: dict[str, Any]) -> ResultTable:
        flight = self.flight
        try:
            reader = self.client.do_get(flight.Ticket(json.dumps(ticket).encode()), self.options)
            table = reader.read_all()
        except flight.FlightUnauthenticatedError as exc:
            _raise_for(401, json.dumps({"error": {"message": _flight_text(exc)}}).encode())
            raise
        except flight.FlightUnauthorizedError as exc:
            _raise_for(403, json.dumps({"error": {"message": _flight_text(exc)}}).encode())
            raise
        except flight.FlightError as exc:
            text = _flight_text(exc)
            status = 404 if text.startswith("not found: ") else 400
            _raise_for(status, json.dumps({"error": {"message": text.removeprefix(
                "not found: ")}}).encode())
            raise
        metadata = table.schema.metadata or {}
        value = metadata.get(SNAPSHOT_KEY, b"").decode()
        notices = json.loads(metadata[b"quanta.notices"]) if b"quanta.notices" in metadata else []
        return ResultTable(table.replace_schema_metadata(None), _snapshot(value), notices)

    def sql(self, query: str, as_of: str | int | None = None,
            purpose: str | None = None) -> ResultTable:
        return self._get({"sql": query, "as_of": as_of, "purpose": purpose})

    def read(self, address: str, as_of: str | int | None = None,
             purpose: str | None = None) -> ResultTable:
        return self._get({"address": address, "as_of": as_of, "purpose": purpose})

    def close(self) -> None:
        self.client.close()


def _flight_text(exc: Exception) -> str:
    text = str(exc)
    for marker in (". Detail:", " Detail:", "\ngRPC client debug context"):
        text = text.split(marker)[0]
    return text.strip()
