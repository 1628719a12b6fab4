"""Input port connectors, one per ``type:`` of input."""

from __future__ import annotations

from typing import Any

from quanta.inputs.base import Connector, InputContext, RemoteInputs
from quanta.inputs.databases import PostgresConnector, SqliteConnector
from quanta.inputs.files import FileConnector
from quanta.inputs.products import ProductConnector

CONNECTORS: dict[str, Connector] = {
    c.type: c for c in (FileConnector(), SqliteConnector(), PostgresConnector(),
                        ProductConnector())
}


def connector_for(spec: Any) -> Connector:
    """The connector that reads inputs of ``spec.type``."""
    return CONNECTORS[spec.type]


__all__ = ["CONNECTORS", "Connector", "InputContext", "RemoteInputs", "connector_for"]
