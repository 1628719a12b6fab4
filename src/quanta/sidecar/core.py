"""The sidecar: the one path every read takes, whatever the mode.

authenticate → authorize each port → gate the SQL → rewrite it onto secure relations (masks
and row filters inside) at pinned releases → run under limits → stream → audit.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import duckdb
import pyarrow as pa

from quanta.address import Address
from quanta.engine.base import EngineLimits
from quanta.engine.duckdb import DuckDBDatabase, literal, quote
from quanta.errors import NotFoundError, QuantaError, QueryError
from quanta.governance.policies import load_policies
from quanta.sidecar import skipping
from quanta.sidecar.access import AuthorizationError, PortAccess, decide
from quanta.sidecar.audit import AuditLog
from quanta.sidecar.gate import GatedQuery, gate
from quanta.sidecar.grants import GrantStore
from quanta.sidecar.limits import WATCHDOG, LimitExceeded, QueryLimits, limits_for
from quanta.sidecar.principals import Principal
from quanta.sidecar.snapshot import AsOf, major_of, pin
from quanta.sidecar.tokens import TokenStore
from quanta.spec.mesh import Mesh
from quanta.storage import ProductStorage, Release
from quanta.storage.keys import key_id, mask_key

BATCH_ROWS = 131_072
AUDITED_QUERY_CHARS = 20_000  # longer texts are cut in the log; their hash is of the whole


class ProductDraftError(AuthorizationError):
    """The product read is a draft, and the reader is not one of its owners (HTTP 403)."""

    code = "product_draft"


class ProductRetiredError(QuantaError):
    """The product read is retired (HTTP 410)."""

    code = "product_retired"


def relation_name(address: Address) -> str:
    """The engine-side name of a port's secure relation."""
    return f"port__{address.domain}__{address.product}__{address.port}"


@dataclass
class QueryResult:
    """A whole query result and the snapshot it read (product key → release number)."""

    table: pa.Table
    snapshot: dict[str, int]
    ports: tuple[Address, ...] = ()
    masked: dict[str, str] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)  # e.g. a product read is deprecated

    def snapshot_header(self) -> str:
        """``domain.product@N,...``: enough to repeat the query exactly."""
        return ",".join(f"{k}@{v}" for k, v in sorted(self.snapshot.items()))


@dataclass
class QueryStream:
    """A running query: its schema and snapshot now, its batches as they are read.

    Iterate it (or call ``read_all``) exactly once; the audit record is written when the
    stream ends, fails or is closed.
    """

    schema: pa.Schema
    snapshot: dict[str, int]
    ports: tuple[Address, ...]
    access: dict[str, PortAccess] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    _reader: pa.RecordBatchReader | None = None
    _finish: Any = None
    rows: int = 0
    bytes: int = 0

    def snapshot_header(self) -> str:
        """``domain.product@N,...``: enough to repeat the query exactly."""
        return ",".join(f"{k}@{v}" for k, v in sorted(self.snapshot.items()))

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        assert self._reader is not None, "a query stream can be read once"
        reader, self._reader = self._reader, None
        try:
            for batch in reader:
                self.rows += batch.num_rows
                self.bytes += batch.nbytes
                yield batch
        except GeneratorExit:
            self._finish(QueryError("the client stopped reading", code="cancelled"))
            raise
        except BaseException as exc:
            self._finish(exc)
            raise
        self._finish(None)

    def read_all(self) -> pa.Table:
        """The whole result as one table."""
        return pa.Table.from_batches(list(self), schema=self.schema)

    def result(self) -> QueryResult:
        """Read the whole stream into a QueryResult."""
        return QueryResult(self.read_all(), self.snapshot, self.ports, self.masked(),
                           list(self.notices))

    def masked(self) -> dict[str, str]:
        """Every masked column read (``domain.product.port.column``) → method and policy."""
        return {k: v for access in self.access.values() for k, v in access.explain().items()}

    def close(self) -> None:
        """Stop early (a client went away); the audit record says so."""
        if self._reader is not None:
            self._reader = None
            self._finish(QueryError("the client stopped reading", code="cancelled"))


class Sidecar:
    """Serves one mesh's released data to principals, under its policies.

    With ``only``, it serves those products and refuses queries naming others (a product
    served as its own unit); ``locate`` says where another product is served, for the hint.
    """

    def __init__(self, mesh: Mesh, only: Collection[str] | None = None,
                 locate: Callable[[str], str | None] | None = None) -> None:
        self.mesh = mesh
        self.only = None if only is None else frozenset(only)
        self.locate = locate
        root = mesh.storage_root
        self.tokens = TokenStore(root)
        self.grants = GrantStore(root)
        self.audit = AuditLog(root / "audit")
        (root / "products").mkdir(parents=True, exist_ok=True)
        memory = mesh.spec.serving.limits.memory_limit
        self.database = DuckDBDatabase(mesh.readable_roots(), EngineLimits(memory_limit=memory))
        self.policies = load_policies(mesh)
        self._mask_key = mask_key(root)
        self._key_id = key_id(self._mask_key)

    # --- who ------------------------------------------------------------------------------

    def authenticate(self, token: str | None) -> Principal:
        """The principal of a bearer token (AuthenticationError when it is not valid)."""
        try:
            return self.tokens.authenticate(token)
        except QuantaError as exc:
            self.audit.append({"principal": None, "outcome": "unauthenticated",
                               "error": exc.message})
            raise

    def operator(self) -> Principal:
        """The mesh's local operator principal (CLI and local SDK default)."""
        return Principal(self.mesh.spec.serving.operator, operator=True)

    # --- reading --------------------------------------------------------------------------

    def query(self, principal: Principal, sql: str, as_of: AsOf | None = None,
              purpose: str | None = None, mode: str = "sql") -> QueryStream:
        """Start one SELECT over mesh ports; every refusal and every result is audited."""
        started = time.perf_counter()
        record: dict[str, Any] = {
            "principal": principal.name, "groups": sorted(principal.groups), "purpose": purpose,
            "mode": mode, "query": sql[:AUDITED_QUERY_CHARS],
            "query_sha256": hashlib.sha256(sql.encode()).hexdigest(),
        }
        try:
            gated = gate(sql, self._served, relation_name)
            if not gated.ports:
                raise QueryError("the query reads no data product",
                                 hint="read a port, e.g. SELECT * FROM domain.product LIMIT 10",
                                 code="query_refused")
            # named before any decision, so a denial's record says what it was denied
            record["products"] = sorted({a.product_key for a in gated.ports})
            notices = self._lifecycle_notices(gated, principal)
            access = {str(a): self.decide(principal, purpose, a) for a in gated.ports}
            releases = self._pin(gated, as_of)
            record["snapshot"] = {k: r.release for k, r in releases.items()}
            limits = limits_for(self.mesh.spec.serving, principal)
            notices += self._older_major_notices(releases)
            stream = self._run(gated, access, releases, limits, record, started)
            stream.notices = notices
            return stream
        except QuantaError as exc:
            self._audit(record, started, exc)
            raise

    def read(self, principal: Principal, address: Address | str, as_of: AsOf | None = None,
             purpose: str | None = None, mode: str = "read") -> QueryStream:
        """A whole port, at ``address@N`` or ``as_of`` (default: latest)."""
        if isinstance(address, str):
            address = Address.parse(address)
        full = self._served(address)
        if address.version is not None:
            as_of = AsOf(release=address.version)
        return self.query(principal, f"SELECT * FROM {full.domain}.{full.product}.{full.port}",
                          as_of, purpose, mode)

    def _lifecycle_notices(self, gated: GatedQuery, principal: Principal) -> list[str]:
        """Notices of deprecated (and, to their owners, draft) products read; a retired
        product refuses the query, and so does a draft read by anyone but its owners."""
        notices = []
        for key in dict.fromkeys(a.product_key for a in gated.ports):
            state = ProductStorage(self.mesh.storage_root, key).lifecycle()
            notice = state.notice(key)
            team = self.mesh.product(key).spec.owner.team
            if state.state == "draft" and not (principal.operator or team in principal.groups):
                raise ProductDraftError(
                    f"{key} is a draft: only its owners read it until it is activated",
                    hint=f"ask its owners (group:{team}) when it will be activated")
            if state.state == "retired":
                raise ProductRetiredError(
                    f"{notice}: its data is no longer served",
                    hint=f"read {state.replacement} instead" if state.replacement else
                    f"ask the owners of {key} what replaces it")
            if notice:
                notices.append(notice)
        return notices

    def _older_major_notices(self, releases: dict[str, Release]) -> list[str]:
        """A notice for each product read at an older major interface than its newest."""
        notices = []
        for key, release in releases.items():
            newest = ProductStorage(self.mesh.storage_root, key).latest()
            if newest is not None and major_of(release.interface_version) < major_of(
                    newest.interface_version):
                notices.append(
                    f"{key} is read at interface {release.interface_version} (release "
                    f"{release.release}); the current one is {newest.interface_version} "
                    f"(release {newest.release}): move to it before the old major's sunset")
        return notices

    def _resolve(self, address: Address) -> Address:
        product = self.mesh.product(address)
        port = product.spec.port(address.port)
        if port is None:
            raise NotFoundError(
                f"{product.key} has no port '{address.port}'",
                hint=f"ports: {', '.join(p.name for p in product.spec.outputs)}",
                code="port_not_found",
            )
        return Address(address.domain, address.product, port.name, address.version)

    def serves(self, key: str) -> bool:
        """Whether principals may name product ``key`` in queries to this sidecar."""
        return self.only is None or key in self.only

    def _served(self, address: Address) -> Address:
        """``_resolve`` for the names principals write: a sidecar serving some products
        only refuses the others (consent sources are still read inside), saying where they
        are served when it knows."""
        key = address.product_key
        if not self.serves(key):
            where = self.locate(key) if self.locate is not None else None
            raise NotFoundError(
                f"{key} is not served here; this endpoint serves "
                f"{', '.join(sorted(self.only or ()))}",
                hint=f"{key} is served at {where}" if where else
                "connect through the catalog (quanta.connect(catalog=URL)), which knows the "
                "endpoint serving each product", code="product_not_served")
        return self._resolve(address)

    def decide(self, principal: Principal, purpose: str | None, address: Address
               ) -> PortAccess:
        """What ``principal`` may see of one port, or AuthorizationError saying why not."""
        access = decide(principal, purpose, self.mesh.product(address), address,
                        self.grants.grants(), policies=self.policies)
        access.consents = [replace(c, source=self._resolve(c.source)) for c in access.consents]
        return access

    def _pin(self, gated: GatedQuery, as_of: AsOf | None) -> dict[str, Release]:
        keys = list(dict.fromkeys(a.product_key for a in gated.ports))
        return {k: pin(ProductStorage(self.mesh.storage_root, k), as_of, len(keys))
                for k in keys}

    def _run(self, gated: GatedQuery, access: dict[str, PortAccess],
             releases: dict[str, Release], limits: QueryLimits, record: dict[str, Any],
             started: float) -> QueryStream:
        session = self.database.session()

        def source(address: Address, release: Release) -> str:
            assert address.port is not None
            storage = ProductStorage(self.mesh.storage_root, address.product_key)
            storage.verify(release, [address.port])
            files = storage.data_files(release, address.port)
            if gated.tree is not None and len(files) > 1 and address in gated.ports:
                files = skipping.keep(files, self._lookups(gated, access, address))
            if files:
                return f"read_parquet([{', '.join(literal(str(f)) for f in files)}])"
            # an empty release has no files; masks still shape its columns
            empty = f"__empty_{relation_name(address)}"
            session.load_table(empty, storage.arrow_schema(release, address.port)
                               .empty_table())
            return quote(empty)

        try:
            sql = self._secure_sql(gated, access, releases, source)
            timer = WATCHDOG.after(limits.timeout, session.con.interrupt)
            try:
                reader = session.reader(sql, BATCH_ROWS)
            except duckdb.Error as exc:
                if timer is not None:
                    timer.cancel()
                raise _engine_error(exc, limits) from None
        except BaseException:
            session.close()
            raise
        stream = QueryStream(schema=reader.schema,
                             snapshot={k: r.release for k, r in releases.items()},
                             ports=gated.ports, access=access)
        stream._reader = _limited(reader, limits)
        done = threading.Event()

        def finish(error: BaseException | None) -> None:
            if done.is_set():
                return
            done.set()
            if timer is not None:
                timer.cancel()
            session.close()
            record.update(rows=stream.rows, bytes=stream.bytes)
            if error is not None and not isinstance(error, QuantaError):
                error = _engine_error(error, limits) if isinstance(error, duckdb.Error) else \
                    QuantaError(f"{type(error).__name__}: {error}", code="stream_failed")
            self._audit(record, started, error)

        stream._finish = finish
        return stream

    def _lookups(self, gated: GatedQuery, access: dict[str, PortAccess], address: Address
                 ) -> skipping.Lookups:
        """Key values the query pins on columns of ``address`` its reader sees in clear."""
        assert gated.tree is not None and address.port is not None
        port = self.mesh.product(address).spec.port(address.port)
        assert port is not None
        masked = access[str(address)].masked
        clear = {f.name.lower() for f in port.fields if f.name not in masked}
        return skipping.lookups(gated.tree, relation_name(address), clear)

    def _secure_sql(self, gated: GatedQuery, access: dict[str, PortAccess],
                    releases: dict[str, Release],
                    source: Callable[[Address, Release], str]) -> str:
        """The gated query with every port replaced by its secure relation over ``source``."""
        sql = gated.rewritten
        for address in gated.ports:
            assert address.port is not None
            release = releases[address.product_key]
            port = self.mesh.product(address).spec.port(address.port)
            assert port is not None
            written = release.ports[address.port]
            pseudonyms = written.pseudonyms if written.key_id == self._key_id else None
            consents = {c.source: source(c.source, self._consent_release(c.source))
                        for c in access[str(address)].consents}
            relation = access[str(address)].relation_sql(
                port, source(address, release), self._mask_key, pseudonyms, consents)
            # inline, not a view: one statement per query, nothing to create or drop
            sql = sql.replace(quote(relation_name(address)), f"({relation})")
        return sql

    def _consent_release(self, address: Address) -> Release:
        """Consent is read at its latest release whatever the query's ``as_of``: a withdrawn
        consent holds for old data too. No release: fail closed."""
        release = ProductStorage(self.mesh.storage_root, address.product_key).latest()
        if release is None:
            raise QueryError(
                f"the consent port {address} has no release, so rows that need consent "
                "cannot be shown", hint=f"build {address.product_key} first",
                code="consent_unavailable")
        return release

    def explain(self, principal: Principal, sql: str, as_of: AsOf | None = None,
                purpose: str | None = None) -> dict[str, Any]:
        """What a query would read, which policies decide it and the SQL the engine would run
        (release files and the mask key left out); refusals are explained, not raised."""
        gated = gate(sql, self._served, relation_name)
        ports: list[dict[str, Any]] = []
        access: dict[str, PortAccess] = {}
        for address in gated.ports:
            entry: dict[str, Any] = {"port": str(address)}
            try:
                decided = self.decide(principal, purpose, address)
            except AuthorizationError as exc:
                entry.update(allowed=False, why=[exc.message], hint=exc.hint)
            else:
                access[str(address)] = decided
                entry.update(allowed=True, why=decided.why, masked=decided.explain(),
                             row_filters=decided.filters,
                             consents=[c.explain() for c in decided.consents])
            ports.append(entry)
        result: dict[str, Any] = {"principal": principal.name, "purpose": purpose,
                                  "ports": ports, "allowed": len(access) == len(ports)}
        if result["allowed"] and ports:
            releases = self._pin(gated, as_of)
            result["snapshot"] = {k: r.release for k, r in releases.items()}
            secure = self._secure_sql(
                gated, access, releases,
                lambda a, r: f"release_{r.release}_of_{a.domain}_{a.product}_{a.port}")
            result["rewritten"] = secure.replace(self._mask_key, "<mask key>")
        return result

    def _audit(self, record: dict[str, Any], started: float,
               error: BaseException | None) -> None:
        record["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        if error is None:
            record["outcome"] = "ok"
        else:
            code = getattr(error, "code", "error")
            record["outcome"] = {"forbidden": "denied", "query_refused": "refused",
                                 "limit_exceeded": "limit", "product_draft": "denied",
                                 "release_expired": "refused"}.get(code, "error")
            record["error"] = {"code": code, "message": getattr(error, "message", str(error))}
        self.audit.append(record)

    def close(self) -> None:
        """Flush the audit log and close the engine."""
        self.audit.close()
        self.database.close()


def _limited(reader: pa.RecordBatchReader, limits: QueryLimits) -> Iterator[pa.RecordBatch]:
    rows = size = 0
    for batch in reader:
        rows += batch.num_rows
        size += batch.nbytes
        if limits.max_rows is not None and rows > limits.max_rows:
            raise LimitExceeded(
                f"the result has more than {limits.max_rows:,} rows, the limit for this "
                "principal", hint="add a LIMIT or a WHERE clause, or aggregate")
        if limits.max_bytes is not None and size > limits.max_bytes:
            raise LimitExceeded(
                f"the result is larger than {limits.max_bytes:,} bytes, the limit for this "
                "principal", hint="select fewer columns or rows")
        yield batch


def _engine_error(exc: BaseException, limits: QueryLimits) -> QuantaError:
    text = str(exc).split("\n")[0]
    if isinstance(exc, duckdb.InterruptException) or "INTERRUPT" in text.upper():
        return LimitExceeded(
            f"the query ran longer than {limits.timeout:g} s, the time limit for this principal",
            hint="narrow the query (WHERE, LIMIT) or aggregate")
    return QueryError(f"query failed: {text.replace('port__', '')}", code="query_failed",
                      hint="check column names and types with 'quanta show <product>'")
