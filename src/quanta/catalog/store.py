"""The catalog store: SQLAlchemy over SQLite (embedded default) or PostgreSQL (multi-user).

The catalog is an index, not the truth: every product's discovery document is kept in
storage beside its releases, and ``quanta catalog rebuild`` recreates the index from them.
So every failure of the database (down, corrupt, locked too long) becomes one
``CatalogUnavailableError`` with a clear message, and nothing that reads data depends on it.

Registration is an upsert in one transaction (the product's row, then its tags, fields,
classifications, links and search text), so two processes registering the same product
leave one consistent entry; the newest release wins whichever commits last. SQLite writers
take the write lock when their transaction begins (``BEGIN IMMEDIATE``) and wait for each
other; PostgreSQL serializes them on the product's row.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    delete,
    event,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy import update as sql_update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, NoSuchModuleError, SQLAlchemyError

from quanta.catalog import schema
from quanta.catalog.entry import CatalogUnavailableError, IndexEntry, committed_stamp
from quanta.catalog.facets import FacetIndex
from quanta.catalog.joins import Carrier
from quanta.catalog.location import URL_ENV, catalog_url, parse_url
from quanta.catalog.query import run as run_search
from quanta.catalog.search import SearchQuery, SearchResult
from quanta.catalog.text import TextIndex, text_index
from quanta.errors import QuantaError
from quanta.spec.mesh import Mesh

MIGRATIONS = Path(__file__).parent / "migrations"
BATCH = 500
_MIGRATION_LOCK = 0x71A7A_CA7  # pg_advisory_xact_lock key: one migration at a time


class CatalogReader(Protocol):
    """What discovery needs: the read-only side of the catalog."""

    def search(self, query: SearchQuery) -> SearchResult:
        """Products matching ``query``, best first, with facets."""

    def document(self, key: str) -> dict[str, Any] | None:
        """The indexed discovery document of ``domain.product``, if registered."""

    def downstream(self, key: str) -> list[str]:
        """Registered products that read ``key``."""

    def carriers(self, polyseme: str | None = None, product: str | None = None
                 ) -> list[Carrier]:
        """Fields carrying ``polyseme`` (every polyseme when None), of ``product`` (of every
        product when None)."""

    def keys(self) -> list[str]:
        """Every registered product."""

    def has(self, key: str) -> bool:
        """Whether ``domain.product`` is registered."""


def open_catalog(mesh: Mesh) -> Catalog:
    """The mesh's catalog, its schema brought up to date."""
    return Catalog(catalog_url(mesh))


def catalog_opener(mesh: Mesh) -> Callable[[], Catalog]:
    """A thread-safe opener of the mesh's catalog for servers: opened on first use, tried
    again on the next call after a failure, so a server starts (and serves data) without
    its catalog."""
    opened: list[Catalog] = []
    lock = threading.Lock()

    def catalog() -> Catalog:
        with lock:
            if not opened:
                opened.append(open_catalog(mesh))
            return opened[0]

    return catalog


def upgrade_schema(conn: Connection, revision: str) -> None:
    """Run the catalog's Alembic migrations up to ``revision`` on ``conn`` (in its open
    transaction): a Config built in code, the scripts shipped in ``catalog/migrations``."""
    from alembic import command  # only when the schema must change: a slow import
    from alembic.config import Config
    from alembic.util import CommandError

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    try:
        command.upgrade(config, revision)
    except CommandError as exc:
        raise QuantaError(f"has a schema this quanta does not know: {exc}",
                          code="catalog_unavailable") from None


def _now() -> str:
    return committed_stamp(datetime.now(UTC))


class Catalog:
    """The read-write catalog of one mesh (see ``CatalogReader`` for the read side)."""

    def __init__(self, url: str) -> None:
        self.url = parse_url(url)
        self.where = self.url.render_as_string(hide_password=True)
        self.dialect = self.url.get_backend_name()
        self.text: TextIndex = text_index(self.dialect)
        with self._guard("open"):
            self.engine = self._engine()
            self._migrate()
        self._upsert = self._upsert_statement()
        self._facets: FacetIndex | None = None
        self._facets_lock = threading.Lock()

    # --- opening ---------------------------------------------------------------------------

    def _engine(self) -> Engine:
        if self.dialect != "sqlite":
            return create_engine(self.url, pool_pre_ping=True,
                                 connect_args={"connect_timeout": 5})
        if self.url.database:
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(self.url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def configure(dbapi: Any, _: Any) -> None:
            dbapi.isolation_level = None  # transactions are begun below, explicitly
            cursor = dbapi.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def begin(conn: Connection) -> None:
            # a writer takes the lock up front, so two writers queue instead of deadlocking
            immediate = conn.get_execution_options().get("catalog_write")
            conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

        return engine

    def _migrate(self) -> None:
        with self.engine.connect() as conn:
            current = self._revision(conn)
        if current == schema.HEAD:
            return
        with self._writing(bump=False) as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                             {"key": _MIGRATION_LOCK})
            if self._revision(conn) == schema.HEAD:  # another process was first
                return
            try:
                upgrade_schema(conn, schema.HEAD)
            except QuantaError as exc:
                raise CatalogUnavailableError(
                    f"the catalog ({self.where}) {exc.message}",
                    hint="upgrade quanta, or point QUANTA_CATALOG_URL at another database "
                    "and run 'quanta catalog rebuild'") from None

    @staticmethod
    def _revision(conn: Connection) -> str | None:
        """The schema's revision; None for a database without the catalog yet."""
        if not inspect(conn).has_table(schema.VERSION_TABLE):
            return None
        return conn.execute(text(f"SELECT version_num FROM {schema.VERSION_TABLE}")).scalar()

    def _upsert_statement(self) -> Any:
        """INSERT ... ON CONFLICT (key) DO UPDATE unless the catalog holds a newer commit,
        RETURNING (id, key): built once, run for many rows at a time."""
        table = schema.products
        dialect_insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        values = dialect_insert(table)
        columns = [c.name for c in table.c if c.name not in ("id", "key")]
        return values.on_conflict_do_update(
            index_elements=[table.c.key], set_={c: values.excluded[c] for c in columns},
            where=values.excluded.committed_at >= table.c.committed_at,
        ).returning(table.c.id, table.c.key)

    @contextmanager
    def _writing(self, bump: bool = True) -> Iterator[Connection]:
        """A write transaction; it bumps the catalog's generation, so readers holding facet
        arrays in memory load them again."""
        with self.engine.connect().execution_options(catalog_write=True) as conn, conn.begin():
            yield conn
            if bump:
                conn.execute(sql_update(schema.state).values(
                    generation=schema.state.c.generation + 1))

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        """A read transaction that sees one snapshot (PostgreSQL: repeatable read), so that
        the generation, the hits and the ids of the matches agree."""
        with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    @contextmanager
    def _guard(self, doing: str) -> Iterator[None]:
        """Turn any failure of the database into one clear CatalogUnavailableError."""
        try:
            yield
        except QuantaError:
            raise
        except (SQLAlchemyError, sqlite3.Error, OSError, NoSuchModuleError) as exc:
            raise self._unavailable(doing, exc) from None

    def _unavailable(self, doing: str, exc: BaseException) -> CatalogUnavailableError:
        reason = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
        first = (str(reason).strip().splitlines() or [type(reason).__name__])[0]
        if self.dialect == "sqlite":
            hint = (f"if {self.url.database} is damaged, remove it and run 'quanta catalog "
                    "rebuild' (the releases in storage are the truth); reading data does not "
                    "need the catalog")
        else:
            hint = (f"check that the catalog's PostgreSQL server runs and {URL_ENV} is right; "
                    "then 'quanta catalog rebuild'; reading data does not need the catalog")
        return CatalogUnavailableError(
            f"the catalog ({self.where}) is unavailable, could not {doing}: {first}", hint=hint)

    def close(self) -> None:
        """Close every pooled connection."""
        if hasattr(self, "engine"):
            self.engine.dispose()

    # --- writing ---------------------------------------------------------------------------

    def register(self, document: dict[str, Any]) -> bool:
        """Index (or index again) one product's discovery document. False when the catalog
        already holds a newer release of it, which it keeps."""
        entry = IndexEntry(document)
        with self._guard(f"register {entry.key}"), self._writing() as conn:
            return self._write(conn, [entry])[entry.key]

    def register_many(self, entries: Iterable[IndexEntry]) -> dict[str, bool]:
        """Index many documents, in batches of one transaction each."""
        done: dict[str, bool] = {}
        with self._guard("register products"):
            for batch in _batches(entries, BATCH):
                with self._writing() as conn:
                    done |= self._write(conn, batch)
        return done

    def replace_all(self, entries: Iterable[IndexEntry]) -> int:
        """Empty the index and fill it with ``entries``, in one transaction (readers see the
        old index until it commits). Returns the products indexed."""
        count = 0
        with self._guard("rebuild the index"), self._writing() as conn:
            self._clear(conn)
            for batch in _batches(entries, BATCH):
                count += sum(self._write(conn, batch).values())
        return count

    def remove(self, key: str) -> bool:
        """Forget one product; False when it was not registered."""
        with self._guard(f"remove {key}"), self._writing() as conn:
            pid = conn.execute(select(schema.products.c.id)
                               .where(schema.products.c.key == key)).scalar()
            if pid is None:
                return False
            self._forget(conn, [pid])
            conn.execute(delete(schema.products).where(schema.products.c.id == pid))
            return True

    def clear(self) -> None:
        """Forget every product."""
        with self._guard("clear the index"), self._writing() as conn:
            self._clear(conn)

    def _clear(self, conn: Connection) -> None:
        self._forget(conn, None)
        conn.execute(delete(schema.products))

    def _forget(self, conn: Connection, ids: list[int] | None) -> None:
        for child in schema.CHILDREN:
            chosen = delete(child)
            if ids is not None:
                chosen = chosen.where(child.c.product_id.in_(ids))
            conn.execute(chosen)
        self.text.delete(conn, ids)

    def _write(self, conn: Connection, batch: list[IndexEntry]) -> dict[str, bool]:
        """Upsert each product's row (the newest commit wins), then replace its children and
        search text. Within a batch, the newest document of each product counts."""
        newest: dict[str, IndexEntry] = {}
        for entry in batch:
            held = newest.get(entry.key)
            if held is None or entry.row()["committed_at"] >= held.row()["committed_at"]:
                newest[entry.key] = entry
        done = {entry.key: False for entry in batch}
        now = _now()
        rows = [entry.row() | {"registered_at": now} for entry in newest.values()]
        returned = {key: pid for pid, key in conn.execute(self._upsert, rows)}
        written = [(returned[key], entry) for key, entry in newest.items() if key in returned]
        done |= {key: True for key in returned}
        if not written:
            return done
        pids = [pid for pid, _ in written]
        for child in schema.CHILDREN:
            conn.execute(delete(child).where(child.c.product_id.in_(pids)))
        children: dict[Any, list[dict[str, Any]]] = {c: [] for c in schema.CHILDREN}
        for pid, entry in written:
            children[schema.documents].append({"product_id": pid, "document": entry.body})
            children[schema.tags] += [{"product_id": pid, "tag": t} for t in entry.tags()]
            children[schema.fields] += [{"product_id": pid, **f} for f in entry.fields()]
            children[schema.classifications] += [{"product_id": pid, "classification": c}
                                                 for c in entry.classifications()]
            children[schema.links] += [{"product_id": pid, "upstream": u}
                                       for u in entry.upstream()]
        for child, child_rows in children.items():
            if child_rows:
                conn.execute(insert(child), child_rows)
        self.text.write(conn, [(pid, entry.search_text()) for pid, entry in written])
        return done

    # --- reading ---------------------------------------------------------------------------

    def document(self, key: str) -> dict[str, Any] | None:
        """The indexed discovery document of ``domain.product``, if registered."""
        with self._guard(f"read {key}"), self.engine.connect() as conn:
            body = conn.execute(
                select(schema.documents.c.document)
                .join(schema.products, schema.products.c.id == schema.documents.c.product_id)
                .where(schema.products.c.key == key)).scalar()
        return None if body is None else dict(json.loads(body))

    def keys(self) -> list[str]:
        """Every registered product, by key."""
        with self._guard("list products"), self.engine.connect() as conn:
            return list(conn.execute(select(schema.products.c.key)
                                     .order_by(schema.products.c.key)).scalars())

    def has(self, key: str) -> bool:
        """Whether ``domain.product`` is registered."""
        with self._guard(f"read {key}"), self.engine.connect() as conn:
            return conn.execute(select(schema.products.c.id)
                                .where(schema.products.c.key == key)).first() is not None

    def downstream(self, key: str) -> list[str]:
        """Registered products that read ``key``."""
        with self._guard(f"read the links of {key}"), self.engine.connect() as conn:
            found = conn.execute(
                select(schema.products.c.key)
                .join(schema.links, schema.links.c.product_id == schema.products.c.id)
                .where(schema.links.c.upstream == key).order_by(schema.products.c.key))
            return list(found.scalars())

    def carriers(self, polyseme: str | None = None, product: str | None = None
                 ) -> list[Carrier]:
        """Fields carrying ``polyseme`` (every polyseme when None), of ``product`` (of every
        product when None), by polyseme and product."""
        f, p = schema.fields, schema.products
        chosen = (select(f.c.polyseme, p.c.key, f.c.port, f.c.field, f.c.type,
                         f.c.classification)
                  .join(p, p.c.id == f.c.product_id).where(f.c.polyseme.is_not(None))
                  .order_by(f.c.polyseme, p.c.key, f.c.port, f.c.field))
        if polyseme is not None:
            chosen = chosen.where(f.c.polyseme == polyseme)
        if product is not None:
            chosen = chosen.where(p.c.key == product)
        with self._guard("read polysemes"), self.engine.connect() as conn:
            return [Carrier(*row) for row in conn.execute(chosen)]

    def search(self, query: SearchQuery) -> SearchResult:
        """Products matching the query's words (all of them) and filters, best first (see
        ``quanta.catalog.text`` for the ranking), with counts per facet value over every
        match."""
        with self._guard("search"), self._reading() as conn:
            generation = conn.execute(select(schema.state.c.generation)).scalar_one()
            return run_search(conn, self.text, self._facet_index(conn, generation), query)

    def _facet_index(self, conn: Connection, generation: int) -> FacetIndex:
        held = self._facets
        if held is not None and held.generation == generation:
            return held
        with self._facets_lock:
            if self._facets is None or self._facets.generation != generation:
                self._facets = FacetIndex(conn, self.text.joined, generation)
            return self._facets

    # --- endpoints: where products are served now (quanta.container.endpoints) -------------
    # Endpoint writes leave the generation alone: heartbeats must not reload facet arrays.

    def register_endpoint(self, endpoint: dict[str, Any]) -> None:
        """Record a serving endpoint (a row of ``catalog_endpoints``); an older entry with
        the same id or HTTP URL goes, since one server listens at a URL at a time."""
        table = schema.endpoints
        with self._guard(f"register an endpoint of {endpoint['product']}"), \
                self._writing(bump=False) as conn:
            conn.execute(delete(table).where((table.c.id == endpoint["id"])
                                             | (table.c.http_url == endpoint["http_url"])))
            conn.execute(insert(table), [endpoint])

    def beat(self, endpoint_id: str, at: str) -> bool:
        """Renew an endpoint's heartbeat; False when it is registered no longer."""
        table = schema.endpoints
        with self._guard("renew an endpoint's heartbeat"), self._writing(bump=False) as conn:
            done = conn.execute(sql_update(table).where(table.c.id == endpoint_id)
                                .values(heartbeat_at=at))
            return bool(done.rowcount)

    def deregister_endpoint(self, endpoint_id: str) -> bool:
        """Forget an endpoint; False when it was not registered."""
        table = schema.endpoints
        with self._guard("deregister an endpoint"), self._writing(bump=False) as conn:
            return bool(conn.execute(delete(table).where(table.c.id == endpoint_id)).rowcount)

    def endpoints(self, product: str | None = None, since: str | None = None
                  ) -> list[dict[str, Any]]:
        """Registered endpoints (of ``product``) whose heartbeat is at or after ``since``
        (a fixed-width UTC stamp), the freshest first."""
        table = schema.endpoints
        chosen = select(table).order_by(table.c.product, table.c.heartbeat_at.desc())
        if product is not None:
            chosen = chosen.where(table.c.product == product)
        if since is not None:
            chosen = chosen.where(table.c.heartbeat_at >= since)
        with self._guard("read endpoints"), self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(chosen)]


def _batches(entries: Iterable[IndexEntry], size: int) -> Iterator[list[IndexEntry]]:
    batch: list[IndexEntry] = []
    for entry in entries:
        batch.append(entry)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
