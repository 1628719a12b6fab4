"""The sidecar's own cost per query, measured in this process (part of ``serving``).

Two measurements of one-row queries by key, side by side:

- **instrumented**: ``Sidecar.authenticate`` + ``Sidecar.query(...).read_all()`` with its
  stages wrapped by timers (restored afterwards). The engine's share is the time inside
  ``DuckDBSession.reader`` (DuckDB binds and runs the query) plus every batch fetched from
  that reader; the overhead of a query is its total minus that share. The verdict is the
  median over the queries.
- **paired**: the same query through the sidecar and, right after or before, the rewritten
  SQL on a plain DuckDB connection holding the same secure view (mask, filter, same files).
  The median of the differences is a cross-check; engine jitter (±1 ms on a 10 ms lookup)
  makes it noisier than the instrumented figure.
"""

from __future__ import annotations

import functools
import importlib
import random
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from quanta.address import Address
from quanta.context import MeshContext
from quanta.engine.duckdb import quote
from quanta.sidecar.access import decide
from quanta.sidecar.core import relation_name
from quanta.sidecar.gate import gate

STAGES: tuple[tuple[str, str, str], ...] = (
    # label, module, attribute (Class.method or function) called by Sidecar.query
    ("authenticate", "quanta.sidecar.core", "Sidecar.authenticate"),
    ("gate", "quanta.sidecar.core", "gate"),
    ("decide", "quanta.sidecar.core", "Sidecar.decide"),
    ("pin", "quanta.sidecar.core", "Sidecar._pin"),
    ("limits", "quanta.sidecar.core", "limits_for"),
    ("timeout_timer", "quanta.sidecar.limits", "Watchdog.after"),
    ("verify", "quanta.storage.products", "ProductStorage.verify"),
    ("cursor", "quanta.engine.duckdb", "DuckDBDatabase.session"),
    ("create_view", "quanta.engine.duckdb", "DuckDBSession.execute"),  # none since inlining
    ("engine", "quanta.engine.duckdb", "DuckDBSession.reader"),
    ("close_cursor", "quanta.engine.duckdb", "DuckDBSession.close"),
    ("audit", "quanta.sidecar.audit", "AuditLog.append"),
)


@dataclass
class Stages:
    """Seconds per stage of the current query, and of every finished one."""

    current: dict[str, float] = field(default_factory=dict)
    queries: list[dict[str, float]] = field(default_factory=list)

    def add(self, label: str, seconds: float) -> None:
        self.current[label] = self.current.get(label, 0.0) + seconds

    def finish(self, total: float) -> None:
        self.queries.append({**self.current, "total": total})
        self.current = {}

    def median_ms(self) -> dict[str, float]:
        labels = [label for label, _, _ in STAGES] + ["other", "total", "overhead"]
        return {label: round(statistics.median(q.get(label, 0.0) for q in self.queries) * 1e3, 3)
                for label in labels}


class _TimedReader:
    """A RecordBatchReader stand-in whose batch fetches count as engine time."""

    def __init__(self, reader: pa.RecordBatchReader, stages: Stages) -> None:
        self.reader = reader
        self.schema = reader.schema
        self.stages = stages

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        iterator = iter(self.reader)
        while True:
            start = time.perf_counter()
            batch = next(iterator, None)
            self.stages.add("engine", time.perf_counter() - start)
            if batch is None:
                return
            yield batch


@contextmanager
def instrumented() -> Iterator[Stages]:
    """Wrap the sidecar's stages with timers for the duration of the block."""
    stages = Stages()
    restore: list[tuple[Any, str, Any]] = []

    def wrap(label: str, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def timed_call(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                result = original(*args, **kwargs)
            finally:
                stages.add(label, time.perf_counter() - start)
            return _TimedReader(result, stages) if label == "engine" else result

        return timed_call

    for label, module_name, attribute in STAGES:
        owner: Any = importlib.import_module(module_name)
        *path, name = attribute.split(".")
        for part in path:
            owner = getattr(owner, part)
        original = getattr(owner, name)
        restore.append((owner, name, original))
        setattr(owner, name, wrap(label, original))
    try:
        yield stages
    finally:
        for owner, name, original in reversed(restore):
            setattr(owner, name, original)


@dataclass
class Overhead:
    """Results of :func:`measure`, in milliseconds."""

    overhead_p50: float
    overhead_p90: float
    sidecar_p50: float
    sidecar_p99: float
    engine_in_sidecar_p50: float
    plain_p50: float
    plain_p99: float
    paired_difference_p50: float
    stages_p50: dict[str, float]
    queries: int


def measure(mesh: Any, token: str, port: Address, files: list[str],
            queries: list[str], warmup: int = 50) -> Overhead:
    """Run ``queries`` (each must return one row) through the sidecar and plain DuckDB."""
    ctx = MeshContext(mesh)
    plain = duckdb.connect()
    try:
        sidecar = ctx.sidecar
        principal = sidecar.authenticate(token)
        product = ctx.product(port.product_key)
        spec = product.spec.port(str(port.port))
        assert spec is not None
        access = decide(principal, None, product, port, sidecar.grants.grants())
        if not access.masked or not access.filters:
            raise RuntimeError(f"{principal} should read masked, filtered rows: {access}")
        listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
        release = ctx.storage(port.product_key).latest()
        assert release is not None and port.port is not None
        relation = access.relation_sql(spec, f"read_parquet([{listing}])", sidecar._mask_key,
                                       release.ports[port.port].pseudonyms)
        plain.execute("SET TimeZone = 'UTC'")
        plain.execute(f"CREATE VIEW {quote(relation_name(port))} AS {relation}")

        def resolve(address: Address) -> Address:
            return Address(address.domain, address.product, address.port or port.port)

        def through_sidecar(sql: str, stages: Stages) -> float:
            start = time.perf_counter()
            who = sidecar.authenticate(token)
            table = sidecar.query(who, sql).read_all()
            elapsed = time.perf_counter() - start
            if table.num_rows != 1:
                raise RuntimeError(f"sidecar query returned {table.num_rows} rows: {sql}")
            stages.finish(elapsed)
            return elapsed

        def engine_only(rewritten: str) -> float:
            start = time.perf_counter()
            table = plain.sql(rewritten).to_arrow_table()
            elapsed = time.perf_counter() - start
            if table.num_rows != 1:
                raise RuntimeError(f"plain query returned {table.num_rows} rows: {rewritten}")
            return elapsed

        pairs = [(sql, gate(sql, resolve, relation_name).rewritten) for sql in queries]
        rng = random.Random(3)
        with instrumented() as stages:
            for _ in range(warmup):  # file hashes, caches, DuckDB metadata
                sql, rewritten = rng.choice(pairs)
                through_sidecar(sql, stages)
                engine_only(rewritten)
            stages.queries.clear()
            full: list[float] = []
            engine: list[float] = []
            for index, (sql, rewritten) in enumerate(pairs):
                if index % 2:
                    engine.append(engine_only(rewritten))
                    full.append(through_sidecar(sql, stages))
                else:
                    full.append(through_sidecar(sql, stages))
                    engine.append(engine_only(rewritten))
    finally:
        plain.close()
        ctx.close()
    staged = [label for label, _, _ in STAGES if label != "engine"]
    for query in stages.queries:
        query["overhead"] = query["total"] - query.get("engine", 0.0)
        query["other"] = query["overhead"] - sum(query.get(label, 0.0) for label in staged)
    overheads = sorted(q["overhead"] for q in stages.queries)
    ms = 1e3
    return Overhead(
        overhead_p50=statistics.median(overheads) * ms,
        overhead_p90=overheads[int(0.9 * (len(overheads) - 1))] * ms,
        sidecar_p50=statistics.median(full) * ms,
        sidecar_p99=sorted(full)[int(0.99 * (len(full) - 1))] * ms,
        engine_in_sidecar_p50=statistics.median(q.get("engine", 0.0)
                                                for q in stages.queries) * ms,
        plain_p50=statistics.median(engine) * ms,
        plain_p99=sorted(engine)[int(0.99 * (len(engine) - 1))] * ms,
        paired_difference_p50=statistics.median(
            f - e for f, e in zip(full, engine, strict=True)) * ms,
        stages_p50=stages.median_ms(),
        queries=len(pairs),
    )
