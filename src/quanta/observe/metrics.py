"""Prometheus metrics of a served mesh.

Reads are counted live, in the serving process: ``MeshMetrics.record`` is an audit listener
(``AuditLog.listeners``), so every request the sidecar audits moves the counters, whichever
mode served it. Builds, releases and freshness are what storage records, collected at each
scrape. Labels carry product keys, ports, modes, outcomes, actions and error codes only:
never a principal, a query or a value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from quanta.errors import QuantaError
from quanta.observe.history import read_runs
from quanta.spec.durations import parse_duration
from quanta.spec.mesh import Mesh
from quanta.storage import ProductStorage, RunRecord

QUERY_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BUILD_SECONDS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class MeshMetrics:
    """The metrics of one served mesh, in a registry of their own (several servers, or
    tests, in one process never share counters)."""

    def __init__(self, mesh: Mesh, listener_errors: Callable[[], int] = lambda: 0) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.queries = Counter("quanta_queries", "Reads through the sidecar, by serving mode "
                               "and outcome", ["mode", "outcome"], registry=registry)
        self.query_seconds = Histogram(
            "quanta_query_duration_seconds", "Time from a read's start to its audit record, "
            "by serving mode and outcome", ["mode", "outcome"], buckets=QUERY_SECONDS,
            registry=registry)
        self.product_reads = Counter("quanta_product_reads", "Reads of a product, by "
                                     "outcome (denials included)", ["product", "outcome"],
                                     registry=registry)
        self.rows = Counter("quanta_query_rows", "Rows returned by reads, by serving mode",
                            ["mode"], registry=registry)
        self.bytes = Counter("quanta_query_bytes", "Bytes (Arrow) returned by reads, by "
                             "serving mode", ["mode"], registry=registry)
        self.denials = Counter("quanta_policy_denials", "Requests a policy denied (reads and "
                               "control-port actions), by mode", ["mode"], registry=registry)
        self.unauthenticated = Counter("quanta_authentication_failures", "Requests with a "
                                       "missing, unknown or expired token", registry=registry)
        self.control = Counter("quanta_control_actions", "Control-port actions (grants, "
                               "access requests, life cycle, erasure, retention) by outcome",
                               ["action", "outcome"], registry=registry)
        registry.register(StoredFacts(mesh, listener_errors))

    def record(self, entry: dict[str, Any]) -> None:
        """Count one audit record (the audit listener)."""
        outcome = str(entry.get("outcome") or "unknown")
        mode = str(entry.get("mode") or "unknown")
        if outcome == "unauthenticated":
            self.unauthenticated.inc()
            return
        if outcome == "denied":
            self.denials.labels(mode).inc()
        if mode == "control":
            self.control.labels(str(entry.get("action") or "unknown"), outcome).inc()
            return
        if "query_sha256" not in entry:
            return  # not a read
        self.queries.labels(mode, outcome).inc()
        if entry.get("duration_ms") is not None:
            self.query_seconds.labels(mode, outcome).observe(float(entry["duration_ms"]) / 1000)
        # a denial names no release, but the products it tried to read
        for product in entry.get("snapshot") or entry.get("products") or ():
            self.product_reads.labels(str(product), outcome).inc()
        if entry.get("rows"):
            self.rows.labels(mode).inc(int(entry["rows"]))
        if entry.get("bytes"):
            self.bytes.labels(mode).inc(int(entry["bytes"]))

    def exposition(self) -> bytes:
        """Every metric in Prometheus' text format (``CONTENT_TYPE``)."""
        return generate_latest(self.registry)


class StoredFacts(Collector):
    """Builds, releases and freshness of every product, from storage at each scrape."""

    def __init__(self, mesh: Mesh, listener_errors: Callable[[], int]) -> None:
        self.mesh = mesh
        self.listener_errors = listener_errors

    def describe(self) -> list[Metric]:
        return []  # collected on scrape only, not when registered

    def collect(self) -> Iterator[Metric]:
        now = datetime.now(UTC)
        keys = sorted(self.mesh.products)
        runs, damaged = read_runs(self.mesh.storage_root, keys)
        yield from _builds(runs)
        rows = GaugeMetricFamily("quanta_port_rows", "Rows of each port in the newest release",
                                 labels=["product", "port"])
        release = GaugeMetricFamily("quanta_latest_release", "Number of the newest release",
                                    labels=["product"])
        freshness = GaugeMetricFamily("quanta_freshness_seconds", "Seconds since the newest "
                                      "release was committed", labels=["product"])
        objective = GaugeMetricFamily("quanta_freshness_objective_seconds", "The freshness "
                                      "the product promises (slos.freshness)",
                                      labels=["product"])
        unreadable = len(damaged)
        for key in keys:
            promised = self.mesh.products[key].spec.slos.freshness
            if promised:
                objective.add_metric([key], parse_duration(promised).total_seconds())
            try:
                latest = ProductStorage(self.mesh.storage_root, key).latest()
            except QuantaError:
                unreadable += 1
                continue
            if latest is None:
                continue
            release.add_metric([key], latest.release)
            freshness.add_metric([key], (now - latest.committed_at).total_seconds())
            for port, written in sorted(latest.ports.items()):
                rows.add_metric([key, port], written.rows)
        yield from (rows, release, freshness, objective)
        yield GaugeMetricFamily("quanta_unreadable_records", "Run records and release "
                                "manifests that could not be read at this scrape",
                                value=unreadable)
        yield CounterMetricFamily("quanta_audit_listener_errors", "Audit listeners (these "
                                  "metrics) that failed on a record; reads went on",
                                  value=self.listener_errors())


def _builds(runs: dict[str, list[RunRecord]]) -> Iterator[Metric]:
    builds = CounterMetricFamily("quanta_builds", "Build attempts recorded, by product and "
                                 "outcome", labels=["product", "outcome"])
    failures = CounterMetricFamily("quanta_build_failures", "Failed builds, by product and "
                                   "error code", labels=["product", "code"])
    seconds = HistogramMetricFamily("quanta_build_duration_seconds", "Duration of build "
                                    "attempts, by product and outcome",
                                    labels=["product", "outcome"])
    for key, records in sorted(runs.items()):
        by_outcome: dict[str, list[float]] = {}
        codes: dict[str, int] = {}
        for run in records:
            by_outcome.setdefault(run.outcome, []).append(run.seconds)
            if run.outcome == "failed":
                code = str((run.error or {}).get("code") or "unknown")
                codes[code] = codes.get(code, 0) + 1
        for outcome, durations in sorted(by_outcome.items()):
            builds.add_metric([key, outcome], len(durations))
            buckets = [(f"{bound:g}", sum(1 for d in durations if d <= bound))
                       for bound in BUILD_SECONDS]
            seconds.add_metric([key, outcome], [*buckets, ("+Inf", len(durations))],
                               sum(durations))
        for code, count in sorted(codes.items()):
            failures.add_metric([key, code], count)
    yield from (builds, failures, seconds)
