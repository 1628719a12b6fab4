"""``type: sqlite`` and ``type: postgres`` inputs, read as Arrow through ADBC drivers."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path
from typing import Any

import pyarrow as pa

from quanta.engine.duckdb import DuckDBSession
from quanta.errors import InputError
from quanta.inputs.base import InputContext, Since
from quanta.spec.models import PostgresInput, SqliteInput
from quanta.storage import InputRead

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")


def _quoted_table(name: str, input_name: str) -> str:
    if not _TABLE.match(name):
        raise InputError(
            f"input '{input_name}': table name {name!r} is not a plain [schema.]table name",
            hint="name one table; transforms do the filtering and joining",
        )
    return ".".join(f'"{part}"' for part in name.split("."))


class SqliteConnector:
    type = "sqlite"
    reads_since = True

    def load(self, session: DuckDBSession, spec: SqliteInput, context: InputContext,
             since: Since | None = None) -> InputRead:
        path = (context.product_folder / spec.path).resolve()
        if not path.is_file():
            raise InputError(
                f"input '{spec.name}': SQLite database {path} does not exist",
                hint="check 'path' (relative to dataproduct.yaml)",
            )
        table = _quoted_table(spec.table, spec.name)
        tables = _sqlite_tables(path, spec.name)
        if spec.table not in tables:
            raise InputError(
                f"input '{spec.name}': table '{spec.table}' is not in {path.name}",
                hint=f"tables: {', '.join(sorted(tables)) or 'none'}",
            )
        where = f" WHERE {since.source_condition()}" if since else ""
        data = _sqlite_arrow(path, f"SELECT * FROM {table}{where}", spec.name)
        if since is not None and data.num_rows == 0:
            # no rows, no types to infer (every column would come back int64): take the
            # types from one row of the table
            data = _sqlite_arrow(path, f"SELECT * FROM {table} LIMIT 1", spec.name).slice(0, 0)
        session.load_table(spec.name, data)
        return InputRead(type="sqlite", rows=data.num_rows, fingerprint=sqlite_mark(path))


def sqlite_mark(path: Path) -> str:
    """A cheap identity of a SQLite database's current contents (path, size, modified)."""
    stat = path.stat()
    # the name, not the whole path: a mesh folder that moves keeps its fingerprints
    mark = f"{path.name}|{stat.st_size}|{stat.st_mtime_ns}"
    return hashlib.sha256(mark.encode()).hexdigest()[:16]


def _sqlite_tables(path: Path, input_name: str) -> set[str]:
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = con.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
            return {r[0] for r in rows}
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise InputError(
            f"input '{input_name}': {path.name} is not a readable SQLite database: {exc}",
            hint="check the file; is it a SQLite database?",
        ) from None


def _sqlite_arrow(path: Path, query: str, input_name: str) -> pa.Table:
    import adbc_driver_sqlite.dbapi as adbc

    try:
        with adbc.connect(f"file:{path}?mode=ro") as con, con.cursor() as cur:
            # SQLite columns have no fixed type; read every batch with the same inferred
            # types by asking the driver to look at enough rows first.
            cur.adbc_statement.set_options(
                **{"adbc.sqlite.query.batch_rows": "65536"}
            )
            cur.execute(query)
            return cur.fetch_arrow_table()
    except Exception as exc:  # the driver raises its own hierarchy
        raise InputError(
            f"input '{input_name}': reading {path.name} failed: {str(exc).splitlines()[0]}",
            hint="a column mixing types (text in a numeric column) cannot be read; clean the "
            "source or cast in a view",
        ) from None


class PostgresConnector:
    type = "postgres"
    reads_since = True

    def load(
        self, session: DuckDBSession, spec: PostgresInput, context: InputContext,
        since: Since | None = None,
    ) -> InputRead:
        url = context.environ.get(spec.url_env)
        if not url:
            raise InputError(
                f"input '{spec.name}': environment variable {spec.url_env} is not set",
                hint=f"export {spec.url_env}=postgresql://user:password@host:5432/database",
            )
        table = _quoted_table(spec.table, spec.name)
        where = f" WHERE {since.source_condition()}" if since else ""
        data = _postgres_arrow(url, f"SELECT * FROM {table}{where}", spec)
        session.load_table(spec.name, data)
        return InputRead(type="postgres", rows=data.num_rows)


def _postgres_arrow(url: str, query: str, spec: PostgresInput) -> pa.Table:
    import adbc_driver_postgresql.dbapi as adbc

    try:
        con = adbc.connect(url)
    except Exception as exc:
        raise InputError(
            f"input '{spec.name}': cannot connect to PostgreSQL ({spec.url_env}): "
            f"{_first_line(exc)}",
            hint="check that the server is up and the URL in the variable is right",
            transient=True,
        ) from None
    try:
        with con.cursor() as cur:
            cur.execute(query)
            return cur.fetch_arrow_table()
    except Exception as exc:
        raise InputError(
            f"input '{spec.name}': reading table '{spec.table}' failed: {_first_line(exc)}",
            hint="check that the table exists and the user may read it",
        ) from None
    finally:
        con.close()


def _first_line(exc: Any) -> str:
    text = str(exc).strip()
    # never echo a password back from a connection string the driver included
    text = re.sub(r"(postgres(?:ql)?://[^:/@\s]+):[^@\s]+@", r"\1:***@", text)
    return text.splitlines()[0] if text else type(exc).__name__
