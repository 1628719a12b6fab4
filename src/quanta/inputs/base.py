"""Input ports: connectors that bring one declared source into a build's engine session.

A connector loads its data as a table named after the input, before the session is locked
against file access; the transform then sees only those tables.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from quanta.engine.duckdb import DuckDBSession
from quanta.storage import InputRead, ProductStorage


@dataclass(frozen=True)
class InputContext:
    """What a connector may use: the product's folder, the mesh storage and the environment."""

    product_folder: Path
    storage_root: Path
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))

    def storage(self, product_key: str) -> ProductStorage:
        return ProductStorage(self.storage_root, product_key)


class Connector(Protocol):
    """Loads one kind of input port."""

    type: str

    def load(self, session: DuckDBSession, spec: Any, context: InputContext) -> InputRead:
        """Load ``spec`` into ``session`` as table ``spec.name``; say what was read."""
