"""``quanta run``: each product of a mesh reacting to its own triggers, no central scheduler.

The loop holds, for each product it runs, only that product's facts: its triggers, its inputs,
its state file and the events addressed to it. A build runs in a spawned process with the
product's time and memory limits; transient failures (a source that is unreachable) are retried
with a doubling delay, terminal ones (a failing check, a schema violation) are not retried until
the spec, code or inputs change. A product waits while one of its own inputs is building here,
so a burst of source data flows downstream in order without a DAG computed up front.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from quanta.container.remote import remote_inputs
from quanta.errors import QuantaError
from quanta.runtime.state import ProductState, read_state, write_state
from quanta.runtime.triggers import Pending, pending_reasons
from quanta.runtime.worker import BuildOutcome, BuildProcess
from quanta.spec.durations import parse_duration
from quanta.spec.mesh import Mesh, Product, load_mesh
from quanta.spec.models import RuntimeSpec
from quanta.storage import ProductStorage, RunLog, RunRecord
from quanta.storage.events import EventLog
from quanta.storage.locks import BuildLock

_UNITS = {"kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


@dataclass(frozen=True)
class RuntimeEvent:
    """Something the runtime did, for the CLI to show."""

    product: str
    kind: str  # started | released | unchanged | failed | retrying | stopped | waiting
    message: str


@dataclass
class RuntimeReport:
    """What a run did: every build outcome, in the order they ended."""

    outcomes: list[BuildOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[BuildOutcome]:
        """Products whose last build failed (a failure a retry made good is not counted)."""
        last = {o.product: o for o in self.outcomes if o.outcome != "locked"}
        return [o for o in last.values() if o.outcome == "failed"]


@dataclass
class _Running:
    process: BuildProcess
    pending: Pending
    timeout: float
    memory: int | None


def memory_bytes(text: str) -> int:
    """``2GB`` / ``512MiB`` as bytes."""
    match = re.match(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)\s*$", text)
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"{text!r} is not an amount of memory; write e.g. 512MB or 2GB")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


class MeshRuntime:
    """Runs the products of one mesh (or the ones named) as their triggers fire."""

    def __init__(self, root: Path, products: list[str] | None = None, workers: int = 2,
                 poll: float = 1.0, listener: Callable[[RuntimeEvent], None] | None = None,
                 catalog: str | None = None) -> None:
        self.root = Path(root).resolve()
        # where the units serving the mesh's external products are found (None: from
        # QUANTA_CATALOG_URL or mesh.yaml)
        self.catalog = catalog
        self.mesh: Mesh = load_mesh(self.root)
        self.products = products
        self.keys = [self.mesh.product(k).key for k in products] if products \
            else sorted(self.mesh.products)
        self._specs = self._spec_stamp()
        self.workers = max(1, workers)
        self.poll = poll
        self.listener = listener or (lambda event: None)
        self.events = EventLog(self.mesh.storage_root)
        self.runs = RunLog(self.mesh.storage_root)
        self._running: dict[str, _Running] = {}
        self._spare: BuildProcess | None = None
        # input products served by other units: their releases are asked of those units
        self.remote = remote_inputs(self.mesh, catalog)

    # --- status -------------------------------------------------------------------------------

    def status(self, now: datetime | None = None) -> list[Pending]:
        """Each product's triggers as they stand now (nothing is built)."""
        now = now or datetime.now(UTC)
        events = self.events.read()
        return [self._evaluate(self.mesh.products[k], events, now) for k in self.keys]

    def upstream_problems(self, key: str) -> list[str]:
        """Why the product's own inputs are stale: each input product whose last build
        failed, with the cause, and which of its releases this product still serves from."""
        product = self.mesh.products[key]
        latest = ProductStorage(self.mesh.storage_root, key).latest()
        used = {name: read.release for name, read in latest.inputs.items()} if latest else {}
        problems = []
        for name, address in product.upstream():
            runs = self.runs.runs(address.product_key, limit=1)
            if runs and runs[-1].outcome == "failed":
                message = str((runs[-1].error or {}).get("message", "failed"))
                served = f" (built from its release {used[name]})" if used.get(name) else ""
                problems.append(f"upstream {address.product_key} failed{served}: {message}")
        return problems

    def trigger(self, key: str, by: str) -> int:
        """Ask for a build of ``key`` whatever its triggers say; the event's number."""
        return self.events.append("trigger", self.mesh.product(key).key, by=by).seq

    # --- the loop -----------------------------------------------------------------------------

    def run(self, once: bool = False, stop: threading.Event | None = None,
            grace: float = 60.0) -> RuntimeReport:
        """React to triggers until ``stop`` is set (or, with ``once``, until nothing is pending
        or building). On stop, builds in flight get ``grace`` seconds to finish; the rest are
        stopped, which releases nothing."""
        stop = stop or threading.Event()
        report = RuntimeReport()
        while not stop.is_set():
            self._collect(report)
            self._reload()
            now = datetime.now(UTC)
            events = self.events.read()
            pending = {k: self._evaluate(self.mesh.products[k], events, now)
                       for k in self.keys if k not in self._running}
            self._dispatch(pending)
            if once and not self._running and not any(
                    p.due or p.retry_at is not None for p in pending.values()):
                break
            self._wait(stop, self.events.stamp())
        self._shut_down(report, grace)
        return report

    def _spec_stamp(self) -> tuple[tuple[str, int], ...]:
        """Modification times of mesh.yaml and every product spec the mesh's globs find."""
        files = {self.root / "mesh.yaml"}
        for pattern in self.mesh.spec.products:
            files.update(self.root.glob(pattern))
        stamp = []
        for file in sorted(files):
            try:
                stamp.append((str(file), file.stat().st_mtime_ns))
            except OSError:
                continue
        return tuple(stamp)

    def _reload(self) -> None:
        """Pick up added, removed or edited products while running: a spec that no longer
        loads keeps the last good mesh and is reported once (quanta validate says more)."""
        stamp = self._spec_stamp()
        if stamp == self._specs:
            return
        self._specs = stamp
        try:
            mesh = load_mesh(self.root)
            keys = [mesh.product(k).key for k in self.products] if self.products \
                else sorted(mesh.products)
        except QuantaError as exc:
            self.listener(RuntimeEvent("mesh", "waiting", f"specs changed but do not load: "
                                       f"{exc.message}; still running the last good ones"))
            return
        if mesh.problems:
            self.listener(RuntimeEvent("mesh", "waiting", f"specs changed with "
                                       f"{len(mesh.problems)} problem(s) (see quanta validate): "
                                       f"{mesh.problems[0].render()}; still running the last "
                                       "good ones"))
            return
        added = sorted(set(keys) - set(self.keys))
        self.mesh, self.keys = mesh, [k for k in keys]
        if self.remote is not None:
            self.remote.close()
        self.remote = remote_inputs(mesh, self.catalog)
        self.listener(RuntimeEvent("mesh", "reloaded", f"{len(keys)} product(s)"
                                   + (f"; new: {', '.join(added)}" if added else "")))

    def _evaluate(self, product: Product, events: list, now: datetime) -> Pending:
        state = read_state(self.mesh.storage_root, product.key)
        try:
            pending = pending_reasons(product, self.mesh.storage_root, state,
                                      [e for e in events if e.seq > state.cursor], now,
                                      self.remote)
        except QuantaError as exc:
            return Pending(product.key, [exc.message], held="cannot evaluate its triggers")
        if pending.due:
            lock = BuildLock(self.mesh.storage_root, product.key)
            if lock.is_held():
                holder = lock.holder()
                return Pending(product.key, pending.reasons, identity=pending.identity,
                               cursor=pending.cursor,
                               held=f"being built by process {holder.get('pid', '?')}")
        return pending

    def _dispatch(self, pending: dict[str, Pending]) -> None:
        for key, item in sorted(pending.items()):
            if not item.due or len(self._running) >= self.workers:
                continue
            product = self.mesh.products[key]
            # an input being built here, about to be, or by another runner (its lock is held)
            busy = [u for _, a in product.upstream() if (u := a.product_key) in self._running
                    or (u in pending and pending[u].due)
                    or BuildLock(self.mesh.storage_root, u).is_held()]
            if busy:  # its own inputs are about to change: build once, after them
                continue
            runtime = product.spec.runtime
            process = self._take_spare().assign(
                self.root, key, item.triggered_at if item.force else None, runtime.memory,
                self.catalog)
            self._running[key] = _Running(
                process, item, parse_duration(runtime.timeout).total_seconds(),
                memory_bytes(runtime.memory) if runtime.memory else None)
            self.listener(RuntimeEvent(key, "started", "; ".join(item.reasons)))
            self._keep_spare()

    def _take_spare(self) -> BuildProcess:
        """The warm spare process (its imports done), or a new process if there is none."""
        spare, self._spare = self._spare, None
        if spare is not None and spare.alive:
            return spare
        return BuildProcess()

    def _keep_spare(self) -> None:
        """Have a process waiting for the next build: downstream builds follow soon."""
        if self._spare is None or not self._spare.alive:
            self._spare = BuildProcess()

    def _collect(self, report: RuntimeReport) -> None:
        for key, running in list(self._running.items()):
            outcome = self._outcome_of(running)
            if outcome is None:
                continue
            del self._running[key]
            self._settle(running, outcome)
            report.outcomes.append(outcome)

    def _outcome_of(self, running: _Running) -> BuildOutcome | None:
        process, key = running.process, running.process.key
        result = process.poll()
        elapsed = time.monotonic() - process.started
        if result is True:
            if elapsed > running.timeout:
                process.kill()
                return self._failed_run(key, "build_timeout", f"the build of {key} ran longer "
                                        f"than its timeout ({running.timeout:.0f} s) and was "
                                        "stopped", "raise runtime.timeout in dataproduct.yaml "
                                        "or make the build faster", elapsed)
            if running.memory is not None and process.rss_bytes() > running.memory:
                process.kill()
                return self._failed_run(key, "build_memory", f"the build of {key} used more "
                                        f"memory than its limit ({running.memory:,} bytes) and "
                                        "was stopped", "raise runtime.memory in "
                                        "dataproduct.yaml or read less at once", elapsed)
            return None
        if isinstance(result, BuildOutcome):
            return result
        # killed from outside (OOM killer, an operator, a shutdown): retried like a source
        # that was unreachable, at most runtime.retries times
        return self._failed_run(key, "build_died", f"the build process of {key} ended without "
                                f"an outcome (exit code {process.exitcode}); nothing was "
                                "released", "see the run records; the last release is still "
                                "served", elapsed, transient=True)

    def _failed_run(self, key: str, code: str, message: str, hint: str, seconds: float,
                    transient: bool = False) -> BuildOutcome:
        error = QuantaError(message, hint=hint, code=code)
        ended = datetime.now(UTC)
        self.runs.record(RunRecord(
            run_id=f"{ended:%Y%m%dT%H%M%S%fZ}-{key}-runtime", product=key,
            started_at=ended - timedelta(seconds=seconds), ended_at=ended, outcome="failed",
            error=error.to_dict()))
        return BuildOutcome(key, "failed", error=error.to_dict(), transient=transient,
                            seconds=seconds)

    def _settle(self, running: _Running, outcome: BuildOutcome) -> None:
        """Remember what the build means for the product's next triggers."""
        key = outcome.product
        root = self.mesh.storage_root
        state = read_state(root, key)
        now = datetime.now(UTC)
        pending = running.pending
        if outcome.outcome == "locked":
            self.listener(RuntimeEvent(key, "waiting", "another process is building it"))
            return
        if outcome.outcome in ("released", "unchanged"):
            write_state(root, key, ProductState(cursor=pending.cursor, last_attempt=now))
            message = (f"release {outcome.release}, {outcome.rows:,} rows, "
                       f"{outcome.seconds:.1f} s" if outcome.outcome == "released"
                       else f"inputs unchanged since release {outcome.release}")
            self.listener(RuntimeEvent(key, outcome.outcome, message))
            return
        error = outcome.error or {}
        product = self.mesh.products.get(key)  # None: removed from the mesh meanwhile
        runtime = product.spec.runtime if product else RuntimeSpec()
        retries = runtime.retries
        if outcome.transient and state.failures < retries:
            delay = parse_duration(runtime.retry_delay) * (2 ** state.failures)
            write_state(root, key, state.model_copy(update={
                "cursor": pending.cursor, "last_attempt": now, "failures": state.failures + 1,
                "retry_at": now + delay, "last_error": error, "failed_identity": None}))
            self.listener(RuntimeEvent(
                key, "retrying", f"{error.get('message')} (retry {state.failures + 1} of "
                f"{retries} in {delay.total_seconds():.0f} s)"))
            return
        write_state(root, key, ProductState(
            cursor=pending.cursor, last_attempt=now, failed_identity=pending.identity,
            last_error=error))
        hint = f" (hint: {error['hint']})" if error.get("hint") else ""
        self.listener(RuntimeEvent(key, "failed", f"{error.get('message', 'failed')}{hint}"))

    def _wait(self, stop: threading.Event, stamp: int) -> None:
        """Sleep until the poll interval ends, an event is appended or a build ends."""
        deadline = time.monotonic() + self.poll
        while time.monotonic() < deadline and not stop.is_set():
            if self.events.stamp() != stamp:
                return
            if any(r.process.poll() is not True for r in self._running.values()):
                return
            stop.wait(0.05)

    def _shut_down(self, report: RuntimeReport, grace: float) -> None:
        if self.remote is not None:
            self.remote.close()
        if self._spare is not None:
            self._spare.retire()
            self._spare = None
        deadline = time.monotonic() + grace
        while self._running and time.monotonic() < deadline:
            self._collect(report)
            time.sleep(0.05)
        for key, running in list(self._running.items()):
            running.process.stop()
            self._failed_run(key, "build_interrupted", f"the build of {key} was stopped when "
                             "quanta run shut down; nothing was released", "it is still "
                             "pending: the next quanta run builds it",
                             time.monotonic() - running.process.started)
            self.listener(RuntimeEvent(key, "stopped", "stopped at shutdown; nothing released"))
            del self._running[key]
        self._collect(report)
