"""Compute engines behind one small protocol; DuckDB is the default."""

from quanta.engine.base import Capabilities, Engine, EngineLimits, EngineSession
from quanta.engine.duckdb import DuckDBEngine, DuckDBSession

__all__ = [
    "Capabilities", "DuckDBEngine", "DuckDBSession", "Engine", "EngineLimits", "EngineSession",
]
