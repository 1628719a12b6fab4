"""The sidecar: the one path every read goes through (gate, pin, read)."""

from quanta.sidecar.reader import MeshReader, QueryResult
from quanta.sidecar.snapshot import AsOf

__all__ = ["AsOf", "MeshReader", "QueryResult"]
