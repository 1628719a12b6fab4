"""Input ports: connectors that bring one declared source into a build's engine session.

A connector loads its data as a table named after the input, before the session is locked
against file access; the transform then sees only those tables.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from quanta.engine.duckdb import DuckDBSession, literal, quote
from quanta.storage import InputRead, ProductStorage


class RemoteInputs(Protocol):
    """Product inputs served by other units, reached through the catalog.

    Given to a build from above (the runtime or the container layer): inputs never reach
    the catalog or the network of units themselves.
    """

    def serves(self, product_key: str) -> bool:
        """Whether ``product_key`` is read through this (another unit serves it)."""

    def load(self, session: DuckDBSession, spec: Any, since: Since | None = None
             ) -> InputRead:
        """Load the product input ``spec`` from the unit serving it, as table ``spec.name``."""

    def release(self, spec: Any) -> int | None:
        """The release the unit serving ``spec``'s product would give now (None: unknown)."""


@dataclass(frozen=True)
class InputContext:
    """What a connector may use: the product's folder, the mesh storage and the environment;
    ``external`` products (served by other units) are read through ``remote``."""

    product_folder: Path
    storage_root: Path
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    external: frozenset[str] = frozenset()
    remote: RemoteInputs | None = None

    def storage(self, product_key: str) -> ProductStorage:
        return ProductStorage(self.storage_root, product_key)


_ENGINE_TYPE = re.compile(r"^[A-Z][A-Z0-9_ ]*(\(\d+(,\s*\d+)?\))?$")
_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT",
                  "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")


@dataclass(frozen=True)
class Since:
    """Read only rows whose ``column`` is above ``value``: an incremental build's watermark.

    ``value`` is text and ``type`` the engine type it was recorded as, so that it compares as
    that type (a timestamp as a timestamp, an id as a number or as text).
    """

    column: str
    value: str
    type: str

    def __post_init__(self) -> None:
        if not _ENGINE_TYPE.match(self.type):
            raise ValueError(f"{self.type!r} is not an engine type")

    @property
    def numeric(self) -> bool:
        return self.type.startswith(_NUMERIC_TYPES) and bool(_NUMBER.match(self.value))

    def condition(self) -> str:
        """The filter in the engine's SQL."""
        return f"{quote(self.column)} > CAST({literal(self.value)} AS {self.type})"

    def source_condition(self) -> str:
        """The filter in a source database's SQL (SQLite, PostgreSQL): a number stays a
        number; anything else is a plain string literal the database reads as the column's
        type."""
        value = self.value if self.numeric else literal(self.value)
        return f"{quote(self.column)} > {value}"


class Connector(Protocol):
    """Loads one kind of input port."""

    type: str
    reads_since: bool
    """Capability: ``load`` can read only the rows above a watermark (incremental builds)."""

    def load(self, session: DuckDBSession, spec: Any, context: InputContext,
             since: Since | None = None) -> InputRead:
        """Load ``spec`` into ``session`` as table ``spec.name``; say what was read. With
        ``since``, only the rows above it."""
