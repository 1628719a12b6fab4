"""The HTTP API: a thin FastAPI adapter over the sidecar."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from quanta.address import Address
from quanta.catalog import CatalogReader, SearchQuery
from quanta.catalog.document import observations
from quanta.catalog.entry import CatalogUnavailableError
from quanta.catalog.registry import publish_activated, served_document
from quanta.catalog.store import Catalog, catalog_opener
from quanta.control import AccessRequests, erasure, lifecycle
from quanta.control import grants as control_grants
from quanta.errors import AddressError, NotFoundError, QuantaError
from quanta.governance import ReportSources, governance_report
from quanta.lineage import MeshLineage
from quanta.observe import DEFAULT_OBJECTIVE, parse_window, slo_report
from quanta.observe.metrics import CONTENT_TYPE, MeshMetrics
from quanta.serve.encoders import ARROW, CSV, NDJSON, PARQUET, choose, encode
from quanta.sidecar import AsOf, Principal, Sidecar
from quanta.sidecar.access import AuthorizationError, describe
from quanta.sidecar.tokens import AuthenticationError
from quanta.spec.durations import parse_duration
from quanta.storage import ProductStorage
from quanta.values import jsonable

SNAPSHOT_HEADER = "Quanta-Snapshot"
MASKED_HEADER = "Quanta-Masked"
NOTICE_HEADER = "Quanta-Notice"
MAX_SQL = 100_000
MAX_PAGE = 10_000
SMALL_ANSWER = 256 * 1024


class QueryRequest(BaseModel):
    """Body of POST /api/v1/query."""

    model_config = ConfigDict(extra="forbid")

    sql: str = Field(max_length=MAX_SQL, description="one SELECT over data product ports")
    as_of: str | int | None = Field(None, description="release number or ISO timestamp")
    purpose: str | None = Field(None, max_length=200)


class AccessRequestBody(BaseModel):
    """Body of POST /api/v1/access-requests."""

    model_config = ConfigDict(extra="forbid")

    address: str = Field(max_length=500, description="quanta://domain/product[/port]")
    purpose: str | None = Field(None, max_length=200)
    reason: str = Field(max_length=2_000, description="what the data will be used for")


class DecisionBody(BaseModel):
    """Body of POST /api/v1/access-requests/{id}/approve or /deny."""

    model_config = ConfigDict(extra="forbid")

    expires: str | None = Field(None, max_length=20,
                                description="lifetime of the grant (approve), e.g. 90d")
    comment: str | None = Field(None, max_length=2_000)


class GrantBody(BaseModel):
    """Body of POST /api/v1/grants."""

    model_config = ConfigDict(extra="forbid")

    subject: str = Field(max_length=200, description="a principal, group:<name> or *")
    address: str = Field(max_length=500, description="quanta://domain/product[/port]")
    purpose: str | None = Field(None, max_length=200)
    expires: str | None = Field(None, max_length=20, description="lifetime, e.g. 90d")


class RevokeBody(BaseModel):
    """Body of POST /api/v1/grants/revoke."""

    model_config = ConfigDict(extra="forbid")

    subject: str = Field(max_length=200)
    address: str = Field(max_length=500)
    purpose: str | None = Field(None, max_length=200)


class LifecycleBody(BaseModel):
    """Body of POST /api/v1/products/{domain}/{product}/lifecycle."""

    model_config = ConfigDict(extra="forbid")

    state: Literal["draft", "active", "deprecated", "retired"]
    sunset: date | None = None
    replacement: str | None = Field(None, max_length=500)
    reason: str | None = Field(None, max_length=2_000)


class ErasureBody(BaseModel):
    """Body of POST /api/v1/erasures."""

    model_config = ConfigDict(extra="forbid")

    polyseme: str = Field(max_length=63)
    value: str = Field(min_length=1, max_length=1_000)
    dry_run: bool = False


def status_of(error: QuantaError) -> int:
    """The HTTP status that tells a client what kind of error this is."""
    if isinstance(error, AuthenticationError):
        return 401
    if isinstance(error, AuthorizationError):
        return 403
    if isinstance(error, NotFoundError):
        return 404
    if error.code == "not_acceptable":
        return 406
    if error.code == "product_retired":
        return 410
    if error.code in ("catalog_unavailable", "catalog_url_invalid"):
        return 503
    return 400


def notice_header(notices: list[str]) -> str:
    """Notices as one header value: ASCII only (other characters escaped), one line."""
    text = " | ".join(" ".join(n.split()) for n in notices)
    return text.encode("ascii", "backslashreplace").decode("ascii")


def lifecycle_headers(sidecar: Sidecar, ports: tuple[Address, ...]) -> dict[str, str]:
    """Deprecation (RFC 9745), Sunset (RFC 8594) and successor links of products read."""
    headers: dict[str, str] = {}
    links, notices, sunsets = [], [], []
    for key in dict.fromkeys(a.product_key for a in ports):
        state = ProductStorage(sidecar.mesh.storage_root, key).lifecycle()
        if state.state != "deprecated":
            continue
        notices.append(state.notice(key) or key)
        if state.sunset:
            sunsets.append(state.sunset)
        if state.replacement:
            links.append(f'<{state.replacement}>; rel="successor-version"')
    if notices:
        headers["Deprecation"] = "true"
    if sunsets:
        day = min(sunsets)
        headers["Sunset"] = format_datetime(datetime(day.year, day.month, day.day, tzinfo=UTC),
                                            usegmt=True)
    if links:
        headers["Link"] = ", ".join(links)
    return headers


def _lifecycle_summary(sidecar: Sidecar, key: str) -> dict[str, Any]:
    state = ProductStorage(sidecar.mesh.storage_root, key).lifecycle()
    return {"state": state.state, "sunset": state.sunset.isoformat() if state.sunset else None,
            "replacement": state.replacement}


def error_response(error: QuantaError) -> JSONResponse:
    body = {"error": {"code": error.code, "message": error.message, "hint": error.hint}}
    status = status_of(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, headers=headers)


def create_app(sidecar: Sidecar, catalog: Callable[[], CatalogReader] | None = None
               ) -> FastAPI:
    """The FastAPI application serving ``sidecar``'s mesh; discovery and search use
    ``catalog`` (default: the mesh's own, opened on first use)."""
    mesh = sidecar.mesh
    catalog = catalog or catalog_opener(mesh)
    app = FastAPI(
        docs_url=None, redoc_url=None,
        title=f"quanta mesh '{mesh.spec.name}'",
        description="Governed, versioned data products. Every read goes through the sidecar: "
        "authentication (Bearer token), grants, masks, row filters, limits and audit.",
        version="1",
    )

    @app.middleware("http")
    async def json_whatever_the_label(request: Request, call_next: Any) -> Any:
        # `curl -d '{...}'` labels JSON as a form; the query endpoint only ever takes JSON
        if request.url.path.startswith("/api/v1/") and request.method == "POST":
            headers = [(k, v) for k, v in request.scope["headers"] if k != b"content-type"]
            request.scope["headers"] = [*headers, (b"content-type", b"application/json")]
        return await call_next(request)

    @app.exception_handler(QuantaError)
    async def quanta_error(_: Request, exc: QuantaError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body') or 'body'}: {e['msg']}"
            for e in exc.errors()
        )
        return error_response(QuantaError(f"bad request: {problems}", code="bad_request",
                                          hint="send JSON like {\"sql\": \"SELECT ...\"}"))

    @app.exception_handler(Exception)
    async def internal_error(_: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": {"code": "internal_error",
                                       "message": "the server failed; see its log"}},
                            status_code=500)

    def principal(request: Request) -> Principal:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if header and scheme.lower() != "bearer":
            raise AuthenticationError("only Bearer tokens are accepted",
                                      hint="send 'Authorization: Bearer <token>'")
        return sidecar.authenticate(token.strip() or None)

    _serve_docs_offline(app)
    # live read counters: every audited request of this sidecar, in any mode, moves them
    metrics = MeshMetrics(mesh, lambda: sidecar.audit.listener_errors)
    sidecar.audit.listeners.append(metrics.record)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The server is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    def readyz() -> JSONResponse:
        """The server can serve: specs load and storage is readable."""
        ready = not mesh.problems and mesh.storage_root.is_dir()
        served = sum(1 for key in mesh.products if sidecar.serves(key))
        return JSONResponse({"status": "ready" if ready else "not ready",
                             "products": served, "problems": len(mesh.problems)},
                            status_code=200 if ready else 503)

    @app.get("/metrics", tags=["health"], response_class=Response)
    def prometheus() -> Response:
        """Prometheus metrics (no token needed: product keys, modes and outcomes only, no
        principal and no data): reads, denials, builds, rows per port, freshness."""
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    @app.post("/api/v1/query", tags=["read"], response_class=StreamingResponse, responses={
        200: {"content": {m: {} for m in (NDJSON, ARROW, CSV, PARQUET)},
              "description": "the result, streamed in the format the Accept header asks for"},
    })
    def query(body: QueryRequest, request: Request) -> Response:
        """Run one read-only SELECT; answer Arrow IPC, NDJSON, CSV or Parquet by Accept."""
        media = choose(request.headers.get("accept"))
        who = principal(request)
        stream = sidecar.query(who, body.sql, AsOf.parse(body.as_of), body.purpose,
                               mode=f"http-{media.rsplit('/', 1)[-1]}")
        headers = {SNAPSHOT_HEADER: stream.snapshot_header()}
        if stream.masked():
            headers[MASKED_HEADER] = ",".join(
                f"{column}={why.split(':')[0]}" for column, why in stream.masked().items())
        headers |= lifecycle_headers(sidecar, stream.ports)
        if stream.notices:  # deprecations, older major versions
            headers[NOTICE_HEADER] = notice_header(stream.notices)
        if media == PARQUET:
            headers["Content-Disposition"] = 'attachment; filename="result.parquet"'
        chunks = encode(stream, media)
        # A small answer is sent whole, without streaming's thread hops; a big one streams.
        head: list[bytes | memoryview] = []
        size = 0
        for chunk in chunks:
            head.append(chunk)
            size += len(chunk)
            if size > SMALL_ANSWER:
                return StreamingResponse(itertools.chain(head, chunks), media_type=media,
                                         headers=headers)
        return Response(b"".join(head), media_type=media, headers=headers)

    @app.get("/api/v1/products", tags=["discover"])
    def products(request: Request, q: str | None = None, domain: str | None = None,
                 kind: str | None = None, tag: Annotated[list[str] | None, Query()] = None,
                 owner: str | None = None, classification: str | None = None,
                 limit: int = 20, offset: int = 0,
                 slo_status: str | None = None) -> dict[str, Any]:
        """Products of the mesh with their ports (any authenticated principal). With ``q``
        or a filter: the catalog's ranked full-text search, with facets and a total."""
        who = principal(request)
        if q is not None or any((domain, kind, tag, owner, classification, slo_status)):
            query = SearchQuery(q or "", domain, kind, tuple(tag or ()), owner,
                                classification, limit, offset, slo_status)
            found = catalog().search(query).to_dict()
            for item in found["products"]:
                item["lifecycle"] = _lifecycle_summary(sidecar, item["key"])
            return found
        return {"products": [
            {"address": f"quanta://{p.spec.domain}/{p.spec.name}", "domain": p.spec.domain,
             "name": p.spec.name, "kind": p.spec.kind, "description": p.spec.description,
             "ports": [port.name for port in p.spec.outputs],
             "lifecycle": _lifecycle_summary(sidecar, p.key)}
            for p in mesh.products.values() if sidecar.serves(p.key)
            # a draft is listed to its owners only, as in search
            and (ProductStorage(mesh.storage_root, p.key).lifecycle().state != "draft"
                 or control_grants.owns(sidecar, who, p.key))
        ]}

    @app.get("/api/v1/products/{domain}/{product}", tags=["discover"])
    def discovery(domain: str, product: str, request: Request) -> dict[str, Any]:
        """The product's discovery document (any authenticated principal): owner, ports and
        schemas with semantics, quality, releases, lineage, policies in plain words, life
        cycle, how to connect in each mode, and SLO attainment and usage measured now."""
        principal(request)
        key = Address.parse(f"{domain}.{product}").product_key
        document = served_document(catalog(), mesh.storage_root, key,
                                   http_url=str(request.base_url),
                                   flight_url=f"grpc://{request.url.hostname}:8815")
        return document | observations(mesh, key)

    lineage = MeshLineage(mesh)

    @app.get("/api/v1/products/{domain}/{product}/lineage", tags=["discover"])
    def product_lineage(domain: str, product: str, request: Request, direction: str = "both",
                        columns: bool = False, depth: int | None = None,
                        port: str | None = None, impact: str | None = None) -> dict[str, Any]:
        """Products upstream and downstream with the releases read; with ``columns``, each
        column's origins and dependents; with ``impact=COLUMN``, what depends on that column
        downstream (any authenticated principal)."""
        principal(request)
        address = Address.parse(".".join(p for p in (domain, product, port) if p))
        if impact is not None:
            key, at, found = lineage.impact(address, impact, depth)
            return {"product": key, "port": at, "column": impact,
                    "impacts": [i.to_dict() for i in found]}
        if columns:
            return {"ports": [v.to_dict() for v in lineage.columns(address, direction, depth)]}
        return lineage.products(address, direction, depth).to_dict()

    @app.get("/api/v1/products/{domain}/{product}/slo", tags=["discover"])
    def product_slo(domain: str, product: str, request: Request, window: str = "30d",
                    objective: float = DEFAULT_OBJECTIVE) -> dict[str, Any]:
        """The product's SLOs over ``window``: measured value, attainment, error budget left
        against ``objective``, status and breaches with their causes (any authenticated
        principal)."""
        principal(request)
        key = mesh.product(Address.parse(f"{domain}.{product}")).key
        report = slo_report(mesh, [key], window=parse_window(window), objective=objective)
        document = report.to_dict()
        [found] = document.pop("products")
        return {**found, **document, "warnings": report.warnings}

    @app.get("/api/v1/products/{domain}/{product}/ports/{port}/rows", tags=["read"])
    def rows(domain: str, product: str, port: str, request: Request, limit: int = 100,
             cursor: str | None = None, purpose: str | None = None) -> JSONResponse:
        """A page of a port's rows as JSON; the cursor pins every page to one release."""
        if not 1 <= limit <= MAX_PAGE:
            raise QuantaError(f"limit {limit} is out of range", hint=f"use 1..{MAX_PAGE}",
                              code="bad_request")
        who = principal(request)
        address = Address(domain, product, port)
        Address.parse(str(address))  # validates the names
        release, offset = _read_cursor(cursor)
        spec_port = sidecar.mesh.product(address).spec.port(port)
        if spec_port is None:
            raise NotFoundError(f"{address.product_key} has no port '{port}'",
                                code="port_not_found")
        order = ", ".join(spec_port.primary_key or [f.name for f in spec_port.fields])
        sql = (f"SELECT * FROM {domain}.{product}.{port} ORDER BY {order} "
               f"LIMIT {limit} OFFSET {offset}")
        as_of = AsOf(release=release) if release else None
        stream = sidecar.query(who, sql, as_of, purpose, mode="http-rows")
        table = stream.read_all()
        pinned = stream.snapshot[address.product_key]
        next_cursor = (_write_cursor(pinned, offset + table.num_rows)
                       if table.num_rows == limit else None)
        return JSONResponse(
            {"rows": jsonable(table.to_pylist()), "next_cursor": next_cursor,
             "release": pinned, "snapshot": stream.snapshot},
            headers={SNAPSHOT_HEADER: stream.snapshot_header(),
                     **lifecycle_headers(sidecar, stream.ports),
                     **({NOTICE_HEADER: notice_header(stream.notices)} if stream.notices
                        else {})},
        )

    requests = AccessRequests(sidecar)

    @app.get("/api/v1/grants", tags=["control"])
    def list_grants(request: Request) -> dict[str, Any]:
        """Grants of the products the caller owns, and grants naming the caller."""
        return {"grants": [asdict(g) for g in control_grants.visible(sidecar,
                                                                     principal(request))]}

    @app.post("/api/v1/grants", tags=["control"], status_code=201)
    def give_grant(body: GrantBody, request: Request) -> dict[str, Any]:
        """Let a principal or group read a product (owners only); effective at once."""
        lifetime = _duration(body.expires) if body.expires else None
        record = control_grants.grant(sidecar, principal(request), body.subject, body.address,
                                      body.purpose, lifetime)
        return {"grant": asdict(record)}

    @app.post("/api/v1/grants/revoke", tags=["control"])
    def take_grant(body: RevokeBody, request: Request) -> dict[str, Any]:
        """Remove matching grants (owners only); new queries are refused at once."""
        gone = control_grants.revoke(sidecar, principal(request), body.subject, body.address,
                                     body.purpose)
        return {"revoked": [asdict(g) for g in gone]}

    def writable() -> Catalog:
        opened = catalog()
        if not isinstance(opened, Catalog):  # a read-only catalog given to the app
            raise CatalogUnavailableError("this server's catalog is read-only",
                                          hint="quanta catalog rebuild lists the product")
        return opened

    @app.post("/api/v1/products/{domain}/{product}/lifecycle", tags=["control"])
    def change_lifecycle(domain: str, product: str, body: LifecycleBody, request: Request
                         ) -> dict[str, Any]:
        """Deprecate (with a sunset date), retire or reactivate a product (owners only)."""
        who = principal(request)
        address = Address(domain, product)
        if body.state == "deprecated":
            if body.sunset is None:
                raise QuantaError("deprecating needs a sunset date", code="bad_request",
                                  hint='send {"state": "deprecated", "sunset": "YYYY-MM-DD"}')
            state = lifecycle.deprecate(sidecar, who, address, body.sunset, body.replacement,
                                        body.reason)
        elif body.state == "retired":
            state = lifecycle.retire(sidecar, who, address, body.replacement, body.reason)
        elif body.state == "draft":
            state = lifecycle.draft(sidecar, who, address, body.reason)
        else:
            key = address.product_key
            was = ProductStorage(mesh.storage_root, key).lifecycle().state
            change = lifecycle.activate if was == "draft" else lifecycle.reactivate
            state = change(sidecar, who, address, body.reason)
            publish_activated(mesh, key, was, writable)  # problems: the catalog says later
        return {"product": f"{domain}.{product}", "lifecycle": state.model_dump(mode="json")}

    @app.post("/api/v1/erasures", tags=["control"])
    def erase_subject(body: ErasureBody, request: Request) -> dict[str, Any]:
        """Erase a data subject everywhere (principals named in mesh.yaml's
        governance.erasure only); the answer is the verified report."""
        who = principal(request)
        allowed = mesh.spec.governance.erasure
        if not who.matches(allowed) or not allowed:
            raise AuthorizationError(
                f"{who} may not erase data subjects",
                hint="name the privacy team in mesh.yaml: governance: {erasure: "
                "[group:privacy_office]}")
        report = erasure.erase(sidecar, body.polyseme, body.value, who, dry_run=body.dry_run)
        return {"erasure": report.to_dict()}

    @app.post("/api/v1/access-requests", tags=["control"], status_code=201)
    def request_access(body: AccessRequestBody, request: Request) -> dict[str, Any]:
        """Ask a product's owners for read access (for a purpose); they approve or deny."""
        item = requests.request(principal(request), body.address, body.purpose, body.reason)
        return {"request": item.to_dict(), "owners": requests.owners(item.product)}

    @app.get("/api/v1/access-requests", tags=["control"])
    def list_access_requests(request: Request, state: str | None = None) -> dict[str, Any]:
        """Requests the caller made, and those it may decide as an owner."""
        if state not in (None, "pending", "approved", "denied"):
            raise QuantaError(f"unknown state {state!r}", code="bad_request",
                              hint="use pending, approved or denied")
        items = requests.visible_to(principal(request), state)  # type: ignore[arg-type]
        return {"requests": [i.to_dict() for i in items]}

    @app.post("/api/v1/access-requests/{request_id}/approve", tags=["control"])
    def approve_access(request_id: str, body: DecisionBody, request: Request
                       ) -> dict[str, Any]:
        """Approve (owners only): the requester gets an expiring grant (default 90 days)."""
        lifetime = _duration(body.expires) if body.expires else None
        item = requests.approve(principal(request), request_id, lifetime, body.comment)
        return {"request": item.to_dict()}

    @app.post("/api/v1/access-requests/{request_id}/deny", tags=["control"])
    def deny_access(request_id: str, body: DecisionBody, request: Request) -> dict[str, Any]:
        """Deny (owners only), with a comment saying why."""
        item = requests.deny(principal(request), request_id, body.comment or "")
        return {"request": item.to_dict()}

    @app.get("/api/v1/governance/report", tags=["govern"])
    def governance(request: Request) -> dict[str, Any]:
        """Compliance, policies, access and fitness functions of the mesh (any authenticated
        principal). It names groups but no person, and records no fitness snapshot."""
        principal(request)
        sources = ReportSources(sidecar.grants.grants(), requests.all(), describe)
        return governance_report(mesh, sources, record=False).to_dict(principals=False)

    return app


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise QuantaError(f"expires {text!r}: {exc}", code="duration_invalid",
                          hint="write a duration like 90d, 12h or 30m") from None


def _serve_docs_offline(app: FastAPI) -> None:
    """The API docs page, with Swagger UI served by this server (no CDN: works offline)."""
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles
    from swagger_ui_bundle import swagger_ui_path

    app.mount("/docs-assets", StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> Any:
        return get_swagger_ui_html(
            openapi_url="/openapi.json", title=f"{app.title}: API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )


def _write_cursor(release: int, offset: int) -> str:
    raw = json.dumps({"r": release, "o": offset}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _read_cursor(cursor: str | None) -> tuple[int | None, int]:
    if not cursor:
        return None, 0
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded))
        release, offset = int(data["r"]), int(data["o"])
        if release < 1 or offset < 0:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise AddressError("cursor is not one this server gave out",
                           hint="start again without a cursor", code="cursor_invalid") from None
    return release, offset
