"""The build runner: inputs → transform → schema → checks → profile → write → release.

Each step that can fail because of the user (their spec, sources, code or data) raises a
QuantaError, which ends the build with a recorded failed run and no release. The release
manifest is committed last, so a failed or killed build leaves the previous release intact.
"""

from __future__ import annotations

import secrets
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from quanta.address import Address
from quanta.build import incremental, stability
from quanta.build.schema import arrow_schema, conform
from quanta.build.transforms import run_python, run_sql
from quanta.console import Reporter, SilentReporter
from quanta.engine.base import EngineLimits
from quanta.engine.duckdb import DuckDBEngine, DuckDBSession, keyed_hash, literal, quote
from quanta.errors import ChecksFailedError, QuantaError, StorageError
from quanta.governance import check_standards, enforce
from quanta.inputs import InputContext, RemoteInputs, connector_for
from quanta.inputs.probe import changed_inputs, current_inputs, recorded_inputs
from quanta.lineage.openlineage import BuildFacts, OpenLineageEmitter
from quanta.quality.checks import quality_metrics, run_checks
from quanta.quality.incremental import PortParts, profile_release, run_release_checks
from quanta.quality.profile import profile_table
from quanta.spec.durations import parse_duration
from quanta.spec.mesh import Mesh, Product
from quanta.spec.models import OutputPort, ProductSpec
from quanta.storage import (
    InputRead,
    PortRelease,
    ProductStorage,
    Release,
    RunLog,
    RunRecord,
    schema_hash,
)
from quanta.storage.events import EventLog
from quanta.storage.keys import key_id, mask_key
from quanta.storage.locks import BuildLock
from quanta.storage.manifest import CheckResult, DataFile
from quanta.storage.products import FILE_BYTES, ROW_GROUP_ROWS

PSEUDONYM_PREFIX = "_pseudonym_"


def new_run_id(product_key: str) -> str:
    """A sortable, unique run id: UTC time, product, random suffix."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"{stamp}-{product_key}-{secrets.token_hex(3)}"


@dataclass
class BuildResult:
    """The outcome of building one product."""

    product: str
    run: RunRecord
    release: Release | None = None
    error: QuantaError | None = None
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


class Builder:
    """Builds products of one mesh, upstream before downstream."""

    full = False
    """Build incremental products from every source row (``quanta build --full``)."""

    def __init__(
        self, mesh: Mesh, reporter: Reporter | None = None, limits: EngineLimits | None = None,
        enforce_retention: bool = True, remote: RemoteInputs | None = None,
    ) -> None:
        self.mesh = mesh
        # product inputs served by other units (the mesh's ``external``), read through this
        self.remote = remote
        self.engine = DuckDBEngine()
        self.reporter = reporter or SilentReporter()
        self.limits = limits
        # a product's retention holds at build time too: rows older than it are not released
        # (quanta retention apply removes them from releases made before)
        self.enforce_retention = enforce_retention
        self.run_log = RunLog(mesh.storage_root)
        self.openlineage = OpenLineageEmitter(mesh)  # never raises; problems become warnings
        self.events = EventLog(mesh.storage_root)

    def build(self, keys: list[str] | None = None, full: bool | None = None
              ) -> list[BuildResult]:
        """Build ``keys`` (default: every product) in dependency order; ``full``: rebuild
        incremental products from every source row."""
        if full is not None:
            self.full = full
        for key in keys or []:
            self.mesh.product(key)
        order = self.mesh.build_order(keys)
        failed: set[str] = set()
        results = []
        for key in order:
            product = self.mesh.products[key]
            broken = [a.product_key for _, a in product.upstream() if a.product_key in failed]
            result = self._skipped(product, broken) if broken else self.build_one(product)
            if not result.ok:
                failed.add(key)
            results.append(result)
        return results

    def build_one(self, product: Product, skip_unchanged: bool = False) -> BuildResult:
        """Build one product and record the run; never raises for the user's mistakes.

        One build of a product runs at a time (a lock the kernel frees if its holder dies);
        another one gets a ``build_locked`` error at once. With ``skip_unchanged``, a product
        whose latest release was built from the same spec, code and inputs is not rebuilt
        (the run is recorded as ``unchanged``), checked under the lock so that two runners
        reacting to one trigger release once.
        """
        lock = BuildLock(self.mesh.storage_root, product.key)
        if not lock.acquire():
            return self._locked(product, lock.holder())
        try:
            if skip_unchanged:
                unchanged = self._unchanged(product)
                if unchanged is not None:
                    return unchanged
            return self._build_locked(product)
        finally:
            lock.release()

    def _build_locked(self, product: Product) -> BuildResult:
        key = product.key
        run_id = new_run_id(key)
        started = datetime.now(UTC)
        stages: dict[str, float] = {}
        inputs: dict[str, InputRead] = {}
        checks: list[CheckResult] = []
        rows: dict[str, int] = {}
        self.reporter.started(key)
        lineage_problems = self.openlineage.start(product, run_id, started)
        release: Release | None = None
        error: QuantaError | None = None
        try:
            release = self._build(product, run_id, stages, inputs, checks, rows)
        except QuantaError as exc:
            error = exc
        except Exception as exc:  # a platform bug: keep the stack for the run record
            error = QuantaError(
                f"quanta failed unexpectedly while building {key}: {type(exc).__name__}: {exc}",
                hint="this is a bug in quanta; the run record keeps the stack trace",
                code="internal_error",
            )
            error.__cause__ = exc
        ended = datetime.now(UTC)
        if release is not None:
            lineage_problems += self._announce(release, inputs)
        lineage_problems += self.openlineage.finish(
            product, run_id, ended, BuildFacts(release, inputs, checks, error))
        run = RunRecord(
            run_id=run_id, product=key, started_at=started, ended_at=ended,
            outcome="released" if release else "failed",
            release=release.release if release else None, rows=rows, inputs=inputs,
            error=_error_record(error), stages=stages,
            warnings=[f"{c.name}: {c.message}" for c in checks if not c.passed]
            + lineage_problems,
        )
        self.run_log.record(run)
        summary = (f"release {release.release}, {sum(rows.values()):,} rows" if release
                   else error.render() if error else "")
        self.reporter.finished(key, release is not None, summary)
        return BuildResult(key, run, release, error, checks)

    def _build(
        self, product: Product, run_id: str, stages: dict[str, float],
        inputs: dict[str, InputRead], checks: list[CheckResult], rows: dict[str, int],
    ) -> Release:
        spec = product.spec
        key = product.key
        storage = ProductStorage(self.mesh.storage_root, key)
        region = spec.region
        storage.place(self.mesh.region_root(region) / "products" / spec.domain / spec.name
                      if region else None)
        lifecycle = storage.lifecycle()
        if lifecycle.state == "retired":
            raise QuantaError(f"{lifecycle.notice(key)}: it is not built any more",
                              hint=f"quanta reactivate {key} to build it again",
                              code="product_retired")
        previous = storage.latest()
        # before any work: the federation's standards, and a new major for a breaking change
        enforce(check_standards(self.mesh, [key]), [key])
        if previous is not None:
            stability.check_version(previous, spec, stability.changes(previous, spec),
                                    [f"product {k}" for k in self.mesh.downstream(key)])
        plan = incremental.plan(spec, product.folder, storage, self.mesh.storage_root,
                                previous, self.full)
        if plan.declared and previous and not plan.incremental and not self.full:
            self.reporter.warn(f"{key}: {plan.reason}")
        context = InputContext(product.folder, self.mesh.storage_root,
                               external=self.mesh.external_products(), remote=self.remote)
        with self.engine.session(self.limits) as session:
            with self._stage(key, "inputs", stages):
                for item in spec.inputs:
                    inputs[item.name] = connector_for(item).load(
                        session, item, context, plan.since_for(item.name))
                # the build may read released data of this mesh (its own previous release,
                # product inputs) and nothing else
                for readable in self.mesh.readable_roots():
                    session.allow_directory(readable)
                session.lock_file_access()
                watermarks = incremental.measure(session, plan, inputs)
            declared = {i.name for i in spec.inputs}
            with self._stage(key, "transform", stages):
                run = run_sql if spec.transform.type == "sql" else run_python
                outputs = run(session, spec, product.folder, declared)
            recorded_at = datetime.now(UTC)
            port_tables: dict[str, str] = {}
            with self._stage(key, "schema", stages):
                for port in spec.outputs:
                    target = f"__port_{port.name}"
                    rows[port.name] = conform(
                        session, port, outputs[port.name], target,
                        recorded_at.isoformat(), key,
                        None if plan.incremental else _previous_files(storage, previous, port),
                    )
                    port_tables[port.name] = quote(target)
            cutoff = _retention_cutoff(spec, recorded_at) if self.enforce_retention else None
            if cutoff is not None:
                # before checks and profile, so that they describe what is released
                with self._stage(key, "retention", stages):
                    for port in spec.outputs:
                        if port.event_time:
                            rows[port.name] = _drop_expired(
                                session, port_tables[port.name], port.event_time, cutoff)
            parts: dict[str, PortParts] = {}
            if plan.incremental:
                # the previous release's files stay; checks and profile see the whole port
                with self._stage(key, "merge", stages):
                    for port in spec.outputs:
                        parts[port.name] = incremental.combine(
                            session, storage, plan, port, port_tables[port.name], cutoff)
                        rows[port.name] = parts[port.name].rows
            with self._stage(key, "checks", stages):
                if plan.previous is not None:
                    checks += run_release_checks(session, spec, parts, rows, plan.previous,
                                                 plan.checks_reusable)
                else:
                    checks += run_checks(session, spec, port_tables, rows)
            blocking = [c for c in checks if not c.passed and c.severity == "error"]
            if blocking:
                raise ChecksFailedError(
                    f"{len(blocking)} blocking check(s) failed, so no release was made: "
                    + "; ".join(f"{c.name} ({c.message})" for c in blocking),
                    hint="fix the data or the transform, or set 'severity: warn' on the check",
                )
            with self._stage(key, "profile", stages):
                profile = {name: profile_release(session, table, parts[name].view,
                                                 parts[name].kept_files, parts[name].rows)
                           if parts else profile_table(session, table)
                           for name, table in port_tables.items()}
            with self._stage(key, "write", stages):
                ports = {port.name: self._write(session, storage, spec, port,
                                                port_tables[port.name],
                                                parts[port.name].keep if parts else None)
                         for port in spec.outputs}
        with self._stage(key, "release", stages):
            release = Release(
                product=key, release=(previous.release if previous else 0) + 1,
                interface_version=spec.version, committed_at=datetime.now(UTC),
                recorded_at=recorded_at, run_id=run_id, ports=ports, inputs=inputs,
                checks=checks, metrics=quality_metrics(checks), profile=profile,
                retention_cutoff=cutoff, definition=product.definition_digest(),
                watermarks=watermarks,
            )
            return storage.commit(release)

    def _write(self, session: DuckDBSession, storage: ProductStorage, spec: ProductSpec,
               port: OutputPort, table: str, keep: list[DataFile] | None = None
               ) -> PortRelease:
        """Write a port, with keyed pseudonyms of hash-masked columns computed once, here,
        instead of on every masked read. With ``keep`` (an incremental build), the rows of
        ``table`` are added to those files of the previous release instead of replacing
        them."""
        declared = arrow_schema(port)
        hashed = spec.hash_masked(port)
        key = mask_key(self.mesh.storage_root) if hashed else ""
        stored = {column: f"{PSEUDONYM_PREFIX}{column}" for column in hashed}
        extra = "".join(f", {keyed_hash(quote(c), key)} AS {quote(name)}"
                        for c, name in stored.items())
        schema = pa.schema([*declared, *(pa.field(n, pa.string()) for n in stored.values())])
        # clustered by key: each data file and row group covers a narrow key range, so a
        # lookup by key reads one row group of one file (see quanta.sidecar.skipping)
        order = f" ORDER BY {', '.join(quote(c) for c in port.primary_key)}" \
            if port.primary_key else ""
        query = f"SELECT *{extra} FROM {table}{order}"
        folder = storage.port_path(port.name)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            nothing = keep is not None and not session.scalar(f"SELECT count(*) FROM {table}")
            files = [] if nothing else session.write_parquet(query, folder, ROW_GROUP_ROWS,
                                                             FILE_BYTES)
        except (duckdb.Error, OSError) as exc:
            raise StorageError(
                f"writing port '{port.name}' of {spec.key} failed: {str(exc).splitlines()[0]}",
                hint="check free disk space and permissions of the storage root") from None
        written = (storage.commit_port(port.name, files, schema, declared) if keep is None
                   else storage.commit_port_files(port.name, keep, files, schema, declared))
        update: dict[str, object] = {"contract": stability.contract_of(port)}
        if stored:
            update |= {"pseudonyms": stored, "key_id": key_id(key)}
        return written.model_copy(update=update)

    @contextmanager
    def _stage(self, key: str, name: str, stages: dict[str, float]) -> Iterator[None]:
        self.reporter.stage(key, name)
        start = time.perf_counter()
        try:
            yield
        finally:
            stages[name] = round(time.perf_counter() - start, 4)

    def _announce(self, release: Release, inputs: dict[str, InputRead]) -> list[str]:
        """Append the release to the mesh's event log, which downstream runners react to
        (instead of a central scheduler); a runner that misses it still finds the release
        when it compares inputs, so a failure here is a warning, not a failed build."""
        try:
            self.events.append("release", release.product, release=release.release, inputs={
                Address.parse(read.product).product_key: read.release
                for read in inputs.values()
                if read.product is not None and read.release is not None})
        except QuantaError as exc:
            return [f"event log: {exc.message}"]
        return []

    def _unchanged(self, product: Product) -> BuildResult | None:
        """A recorded ``unchanged`` run when the latest release is up to date, else None."""
        storage = ProductStorage(self.mesh.storage_root, product.key)
        latest = storage.latest()
        if latest is None or latest.definition != product.definition_digest():
            return None
        now = current_inputs(product.spec, product.folder, self.mesh.storage_root,
                             self.remote)
        if changed_inputs(now, recorded_inputs(latest)):
            return None
        moment = datetime.now(UTC)
        run = RunRecord(run_id=new_run_id(product.key), product=product.key, started_at=moment,
                        ended_at=moment, outcome="unchanged", release=latest.release,
                        inputs=latest.inputs)
        self.run_log.record(run)
        self.reporter.started(product.key)
        self.reporter.finished(product.key, True, f"unchanged, release {latest.release}")
        return BuildResult(product.key, run, None, None)

    def _locked(self, product: Product, holder: dict[str, object]) -> BuildResult:
        who = f" (pid {holder['pid']} since {holder.get('since')})" if "pid" in holder else ""
        error = QuantaError(
            f"{product.key} is being built by another process{who}",
            hint="wait for that build to finish; its release will be served", code="build_locked")
        moment = datetime.now(UTC)
        run = RunRecord(run_id=new_run_id(product.key), product=product.key, started_at=moment,
                        ended_at=moment, outcome="failed", error=_error_record(error))
        self.reporter.started(product.key)
        self.reporter.finished(product.key, False, error.render())
        return BuildResult(product.key, run, None, error)

    def _skipped(self, product: Product, broken: list[str]) -> BuildResult:
        error = QuantaError(
            f"not built: upstream product(s) {', '.join(broken)} failed in this run",
            hint="fix the upstream build first; the last release stays served",
            code="upstream_failed",
        )
        now = datetime.now(UTC)
        run = RunRecord(
            run_id=new_run_id(product.key), product=product.key, started_at=now, ended_at=now,
            outcome="failed", error=_error_record(error),
        )
        self.run_log.record(run)
        self.reporter.started(product.key)
        self.reporter.finished(product.key, False, error.render())
        return BuildResult(product.key, run, None, error)


def _retention_cutoff(spec: ProductSpec, now: datetime) -> datetime | None:
    """The moment before which rows are too old to release, if the product declares retention."""
    return now - parse_duration(spec.retention) if spec.retention else None


def _drop_expired(session: DuckDBSession, table: str, event_time: str, cutoff: datetime) -> int:
    """Delete the rows of ``table`` whose event time is before ``cutoff``; return the rows left.
    Conformed event times are dates or timestamps (UTC, like the session); a date counts as
    its first instant, and rows without an event time stay (the same rule as
    quanta.control.retention.older_than)."""
    moment = f"TIMESTAMPTZ {literal(cutoff.astimezone(UTC).isoformat())}"
    session.execute(f"DELETE FROM {table} WHERE {quote(event_time)} < {moment}")
    return int(session.scalar(f"SELECT count(*) FROM {table}"))


def _previous_files(storage: ProductStorage, previous: Release | None, port: OutputPort
                    ) -> list[Path] | None:
    """Data files of ``port`` in the previous release, when its schema is unchanged."""
    if previous is None or port.name not in previous.ports:
        return None
    if previous.ports[port.name].schema_hash != schema_hash(arrow_schema(port)):
        return None
    return storage.data_files(previous, port.name) or None


def _error_record(error: QuantaError | None) -> dict[str, object] | None:
    if error is None:
        return None
    record = error.to_dict()
    cause = error.__cause__
    if cause is not None and error.code in ("internal_error", "transform_failed"):
        record["traceback"] = "".join(traceback.format_exception(cause))[-8000:]
    return record
