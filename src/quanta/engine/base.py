"""The Engine protocol: what the build runner and the sidecar need from a compute engine.

Engines state what they can do as capability flags; callers check flags, never names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pyarrow as pa


@dataclass(frozen=True)
class Capabilities:
    """What an engine can do; callers branch on these, not on the engine's name."""

    sql_dialect: str
    streams_arrow: bool = True
    reads_files_natively: bool = True
    can_lock_file_access: bool = True


@dataclass(frozen=True)
class EngineLimits:
    """Resource limits of one engine session."""

    threads: int | None = None
    memory_limit: str | None = None
    temp_directory: Path | None = None


class EngineSession(Protocol):
    """One isolated workspace: tables registered in it are visible only to it."""

    def load_table(self, name: str, data: pa.Table | pa.RecordBatchReader) -> None:
        """Materialize Arrow data as table ``name``."""

    def load_query(self, name: str, sql: str) -> None:
        """Materialize the result of a trusted platform query as table ``name``."""

    def load_parquet(self, name: str, files: list[Path], schema: pa.Schema) -> None:
        """Make Parquet files (possibly none) visible as view ``name`` with ``schema``."""

    def allow_directory(self, folder: Path) -> None:
        """Let queries read files under ``folder`` even once file access is locked."""

    def allow_file(self, file: Path) -> None:
        """Let queries read ``file`` even once file access is locked."""

    def lock_file_access(self) -> None:
        """From now on, queries may not read or write any file or URL."""

    def execute(self, sql: str) -> None:
        """Run a statement for its effect."""

    def table(self, sql: str) -> pa.Table:
        """Run a query and return the whole result."""

    def reader(self, sql: str, batch_rows: int = 1_000_000) -> pa.RecordBatchReader:
        """Run a query and stream the result."""

    def write_parquet(self, sql: str, folder: Path, row_group_rows: int, file_bytes: int
                      ) -> list[Path]:
        """Write the result of ``sql``, in its order, as new Parquet files in ``folder``."""
        ...

    def close(self) -> None:
        """Release the session's resources."""


class Engine(Protocol):
    """A compute engine that opens isolated sessions."""

    name: str
    capabilities: Capabilities

    def session(self, limits: EngineLimits | None = None) -> EngineSession:
        """Open a fresh session."""
