"""The default engine: embedded DuckDB, with no extension downloads and no Python scans."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from quanta.engine.base import Capabilities, EngineLimits

_BASE_CONFIG: dict[str, Any] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    # Without this DuckDB would resolve unknown table names to Python variables in scope.
    "python_enable_replacements": False,
}


def quote(name: str) -> str:
    """Quote an identifier for DuckDB."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """Quote a string literal for DuckDB."""
    return "'" + text.replace("'", "''") + "'"


def keyed_hash(expression: str, key: str) -> str:
    """SQL for a keyed pseudonym of ``expression``: 128 bits of SHA-256(key || value), hex.

    The raw 32-byte key keeps short values to one SHA-256 block; nulls stay null.
    """
    return (f"CASE WHEN ({expression}) IS NULL THEN NULL ELSE left(sha256(unhex({literal(key)})"
            f" || encode(CAST({expression} AS VARCHAR))), 32) END")


class DuckDBSession:
    """One in-memory DuckDB database (or one cursor of a shared one)."""

    def __init__(self, limits: EngineLimits | None = None,
                 connection: duckdb.DuckDBPyConnection | None = None) -> None:
        self._arrow: dict[str, pa.Table] = {}
        self._allowed_directories: list[str] = []
        self._allowed_files: list[str] = []
        if connection is not None:
            self.con = connection
            return
        config = dict(_BASE_CONFIG)
        limits = limits or EngineLimits()
        if limits.threads:
            config["threads"] = limits.threads
        if limits.memory_limit:
            config["memory_limit"] = limits.memory_limit
        if limits.temp_directory:
            config["temp_directory"] = str(limits.temp_directory)
        self.con = duckdb.connect(":memory:", config=config)
        self.con.execute("SET TimeZone = 'UTC'")

    def load_table(self, name: str, data: pa.Table | pa.RecordBatchReader) -> None:
        if isinstance(data, pa.Table):
            # Arrow tables are scanned in place, without a copy; keep them alive meanwhile
            self._arrow[name] = data
            self.con.register(name, data)
            return
        view = f"__arrow_{name}"
        self.con.register(view, data)
        try:
            self.con.execute(f"CREATE TEMP TABLE {quote(name)} AS SELECT * FROM {quote(view)}")
        finally:
            self.con.unregister(view)

    def load_query(self, name: str, sql: str) -> None:
        self.con.execute(f"CREATE TEMP TABLE {quote(name)} AS {sql}")

    def load_parquet(self, name: str, files: list[Path], schema: pa.Schema) -> None:
        if files:
            listing = ", ".join(literal(str(f)) for f in files)
            self.con.execute(
                f"CREATE TEMP VIEW {quote(name)} AS SELECT * FROM read_parquet([{listing}])"
            )
        else:
            self.load_table(name, schema.empty_table())

    def allow_directory(self, folder: Path) -> None:
        """Let queries read files under ``folder`` even once file access is locked."""
        self._allowed_directories.append(str(folder).rstrip("/") + "/")

    def allow_file(self, file: Path) -> None:
        """Let queries read ``file`` even once file access is locked."""
        self._allowed_files.append(str(file))

    def lock_file_access(self) -> None:
        for setting, values in (("allowed_directories", self._allowed_directories),
                                ("allowed_paths", self._allowed_files)):
            if values:
                listing = ", ".join(literal(v) for v in values)
                self.con.execute(f"SET {setting} = [{listing}]")
        self.con.execute("SET enable_external_access = false")
        self.con.execute("SET lock_configuration = true")

    def execute(self, sql: str) -> None:
        self.con.execute(sql)

    def table(self, sql: str) -> pa.Table:
        return self.con.sql(sql).to_arrow_table()

    def reader(self, sql: str, batch_rows: int = 1_000_000) -> pa.RecordBatchReader:
        return self.con.sql(sql).to_arrow_reader(batch_rows)

    def write_parquet(self, sql: str, folder: Path, row_group_rows: int, file_bytes: int
                      ) -> list[Path]:
        """Write the result of ``sql``, in its order, as new Parquet files (snappy) in
        ``folder``: a new file after each ``file_bytes``, never one that exists already."""
        options = (f"FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE {int(row_group_rows)}, "
                   f"FILE_SIZE_BYTES {int(file_bytes)}, FILENAME_PATTERN 'part-{{uuid}}', "
                   "PRESERVE_ORDER true, APPEND, RETURN_FILES")
        [(_, files)] = self.con.sql(f"COPY ({sql}) TO {literal(str(folder))} ({options})"
                                    ).fetchall()
        return [Path(f) for f in files]

    def scalar(self, sql: str) -> Any:
        rows = self.con.sql(sql).fetchall()
        return rows[0][0] if rows else None

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.con.sql(sql).fetchall()

    def close(self) -> None:
        self.con.close()
        self._arrow.clear()

    def __enter__(self) -> DuckDBSession:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class DuckDBDatabase:
    """A database shared by many short queries: opened and locked once, a cursor per query.

    Opening a DuckDB database costs milliseconds; a cursor costs microseconds. The database
    may read files only under ``readable`` (released data), and its configuration is locked.
    """

    def __init__(self, readable: Path | list[Path], limits: EngineLimits | None = None) -> None:
        session = DuckDBSession(limits)
        session.execute("SET GLOBAL TimeZone = 'UTC'")
        # released files never change, so their Parquet footers can be cached
        session.execute("SET GLOBAL parquet_metadata_cache = true")
        for folder in readable if isinstance(readable, list) else [readable]:
            session.allow_directory(folder)
        session.lock_file_access()
        self._base = session.con

    def session(self) -> DuckDBSession:
        """A fresh cursor: its temporary views are its own."""
        return DuckDBSession(connection=self._base.cursor())

    def close(self) -> None:
        self._base.close()


class DuckDBEngine:
    """Embedded DuckDB; the default engine of every mesh."""

    name = "duckdb"
    capabilities = Capabilities(sql_dialect="duckdb")

    def session(self, limits: EngineLimits | None = None) -> DuckDBSession:
        return DuckDBSession(limits)
