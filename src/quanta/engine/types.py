"""Declared field types (as written in dataproduct.yaml) and their engine and Arrow types."""

from __future__ import annotations

import re

import pyarrow as pa

DECIMAL = re.compile(r"^decimal\((\d{1,2}),\s*(\d{1,2})\)$")

_DUCKDB = {
    "string": "VARCHAR", "int32": "INTEGER", "int64": "BIGINT", "float32": "FLOAT",
    "float64": "DOUBLE", "boolean": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMPTZ",
    "binary": "BLOB",
}
_ARROW = {
    "string": pa.string(), "int32": pa.int32(), "int64": pa.int64(), "float32": pa.float32(),
    "float64": pa.float64(), "boolean": pa.bool_(), "date": pa.date32(),
    "timestamp": pa.timestamp("us", tz="UTC"), "binary": pa.binary(),
}
SCALAR_TYPES = tuple(_DUCKDB)


def duckdb_type(declared: str) -> str:
    """The DuckDB type of a declared field type."""
    match = DECIMAL.match(declared)
    if match:
        return f"DECIMAL({match.group(1)},{match.group(2)})"
    return _DUCKDB[declared]


def arrow_type(declared: str) -> pa.DataType:
    """The Arrow type of a declared field type."""
    match = DECIMAL.match(declared)
    if match:
        return pa.decimal128(int(match.group(1)), int(match.group(2)))
    return _ARROW[declared]
