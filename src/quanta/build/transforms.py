"""Run a product's transform inside a locked engine session, as the user's code.

SQL is parsed first so that any table, file or function reading data that is not a
declared input is refused with its name; the session is also locked against file access,
so nothing parsed differently by the engine can get around that. Errors in the user's SQL
or Python point into the user's file.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import traceback
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from quanta.engine.duckdb import DuckDBSession, quote
from quanta.errors import Location, TransformError, UndeclaredInputError
from quanta.spec.models import ProductSpec, PythonTransform, SqlTransform

OUT_PREFIX = "__out_"


def check_declared(sql: str, declared: set[str], where: Location, what: str = "transform") -> None:
    """Refuse SQL that reads anything but the ``declared`` tables (or its own CTEs)."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except sqlglot.errors.ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        raise TransformError(
            f"{what} SQL does not parse: {first.get('description', exc)}",
            location=_offset(where, first.get("line"), first.get("col")),
            hint="fix the SQL syntax near this position",
        ) from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise TransformError(
            f"{what} must be exactly one SELECT query", location=where,
            hint="remove other statements; the platform writes the result for you",
        )
    tree = statements[0]
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            function = table.this.sql("duckdb").split("(")[0].lower()
            raise UndeclaredInputError(
                f"{what} reads data through {function}(...), which is not a declared input",
                location=where,
                hint=f"declared inputs: {', '.join(sorted(declared)) or 'none'}; declare the "
                "file or table under 'inputs:' and use its name",
            )
        name = table.name
        qualified = ".".join(p for p in (table.catalog, table.db, name) if p)
        if table.db or table.catalog or (name not in declared and name not in ctes):
            kind = "file" if table.this.quoted and ("." in name or "/" in name) else "table"
            raise UndeclaredInputError(
                f"{what} reads {kind} '{qualified}', which is not a declared input",
                location=where,
                hint=f"declared inputs: {', '.join(sorted(declared)) or 'none'}; add it under "
                "'inputs:' (type: product for another product's port)",
            )


def _offset(where: Location, line: int | None, col: int | None) -> Location:
    if line is None:
        return where
    return Location(where.file, line, col)


def run_sql(session: DuckDBSession, spec: ProductSpec, folder: Path, declared: set[str]) -> dict[
    str, str
]:
    """Run the SQL transform; return {port: table holding its output}."""
    transform = spec.transform
    assert isinstance(transform, SqlTransform)
    if transform.file:
        file = folder / transform.file
        sql = file.read_text(encoding="utf-8")
        where = Location(file, 1, 1)
    else:
        sql = transform.sql or ""
        where = Location(folder / "dataproduct.yaml")
    sql = sql.strip().rstrip(";")
    check_declared(sql, declared, where)
    port = transform.port or spec.outputs[0].name
    table = OUT_PREFIX + port
    try:
        # a view: the schema step reads it once, casting straight into the port's table
        session.execute(f"CREATE TEMP VIEW {quote(table)} AS {sql}")
    except duckdb.Error as exc:
        raise TransformError(
            f"transform SQL failed: {_duckdb_message(exc)}",
            location=_duckdb_location(exc, where), hint="fix the query and build again",
        ) from None
    return {port: quote(table)}


def _duckdb_message(exc: duckdb.Error) -> str:
    return str(exc).split("\n")[0]


def _duckdb_location(exc: duckdb.Error, where: Location) -> Location:
    match = re.search(r"LINE (\d+):", str(exc))
    return Location(where.file, int(match.group(1)), 1) if match and where.line else where


class Inputs(Mapping[str, duckdb.DuckDBPyRelation]):
    """What a Python transform receives: its declared inputs, as DuckDB relations."""

    def __init__(self, session: DuckDBSession, names: set[str], where: Location) -> None:
        self._session = session
        self._names = names
        self._where = where

    def __getitem__(self, name: str) -> duckdb.DuckDBPyRelation:
        if name not in self._names:
            raise UndeclaredInputError(
                f"transform reads input '{name}', which is not declared",
                location=self._where,
                hint=f"declared inputs: {', '.join(sorted(self._names)) or 'none'}",
            )
        return self._session.con.table(quote(name))

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._names))

    def __len__(self) -> int:
        return len(self._names)

    def arrow(self, name: str) -> pa.Table:
        """Input ``name`` as a pyarrow Table."""
        return self[name].to_arrow_table()

    def sql(self, query: str) -> duckdb.DuckDBPyRelation:
        """Run a query over the declared inputs (and nothing else)."""
        check_declared(query, self._names, self._where, what="inputs.sql()")
        return self._session.con.sql(query)


def run_python(
    session: DuckDBSession, spec: ProductSpec, folder: Path, declared: set[str]
) -> dict[str, str]:
    """Import and call the Python transform; return {port: table holding its output}."""
    transform = spec.transform
    assert isinstance(transform, PythonTransform)
    file = (folder / transform.file).resolve()
    function = _load_function(file, transform.function)
    inputs = Inputs(session, declared, Location(file))
    try:
        result = function(inputs)
    except TransformError:
        raise
    except Exception as exc:
        raise TransformError(
            f"transform raised {type(exc).__name__}: {exc}",
            location=_user_frame(exc, file), hint="see the stack below; fix the transform",
        ) from exc
    if not isinstance(result, Mapping):
        raise TransformError(
            f"transform returned {type(result).__name__}, not a dict of port name to table",
            location=Location(file), hint="return {'port_name': arrow_table_or_relation, ...}",
        )
    tables: dict[str, str] = {}
    ports = {p.name for p in spec.outputs}
    for port, value in result.items():
        if port not in ports:
            raise TransformError(
                f"transform returned unknown port '{port}'", location=Location(file),
                hint=f"ports: {', '.join(sorted(ports))}",
            )
        table = OUT_PREFIX + port
        if isinstance(value, duckdb.DuckDBPyRelation):
            value = value.to_arrow_table()
        if hasattr(value, "__arrow_c_stream__") and not isinstance(value, pa.Table):
            value = pa.table(value) if not hasattr(value, "read_all") else value.read_all()
        if not isinstance(value, pa.Table):
            raise TransformError(
                f"transform returned {type(value).__name__} for port '{port}'",
                location=Location(file),
                hint="return a pyarrow Table, a DuckDB relation, or an Arrow stream",
            )
        session.load_table(table, value)
        tables[port] = quote(table)
    missing = ports - set(tables)
    if missing:
        raise TransformError(
            f"transform returned no data for port(s) {', '.join(sorted(missing))}",
            location=Location(file), hint="return a table for every declared output port",
        )
    return tables


def _load_function(file: Path, name: str) -> Any:
    module_name = f"quanta_transform_{uuid.uuid4().hex}"
    loader_spec = importlib.util.spec_from_file_location(module_name, file)
    if loader_spec is None or loader_spec.loader is None:
        raise TransformError(f"cannot import {file}", location=Location(file))
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    try:
        loader_spec.loader.exec_module(module)
    except SyntaxError as exc:
        raise TransformError(
            f"transform has a syntax error: {exc.msg}",
            location=Location(file, exc.lineno, exc.offset), hint="fix the Python syntax",
        ) from None
    except Exception as exc:
        raise TransformError(
            f"importing the transform raised {type(exc).__name__}: {exc}",
            location=_user_frame(exc, file), hint="fix the module's top-level code",
        ) from exc
    finally:
        sys.modules.pop(module_name, None)
    function = getattr(module, name, None)
    if not callable(function):
        raise TransformError(
            f"{file.name} has no function '{name}'", location=Location(file),
            hint=f"define 'def {name}(inputs):' or set transform.function",
        )
    return function


def _user_frame(exc: BaseException, file: Path) -> Location:
    """The deepest stack frame in the user's file: where their code went wrong."""
    where = Location(file)
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve() == file:
            where = Location(file, frame.lineno, (frame.colno or 0) + 1 if frame.colno else None)
    return where
