"""The sidecar: the one path every read goes through (authenticate, authorize, gate, pin,
rewrite onto secure relations, limit, audit)."""

from quanta.sidecar.core import QueryResult, QueryStream, Sidecar
from quanta.sidecar.principals import Principal
from quanta.sidecar.snapshot import AsOf

__all__ = ["AsOf", "Principal", "QueryResult", "QueryStream", "Sidecar"]
