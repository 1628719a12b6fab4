"""One product build in a process of its own (spawned, not forked), watched by its runner.

The runner keeps one such process spawned ahead, its imports done, waiting for a build; when
a trigger fires the build starts at once. The child loads the mesh afresh, builds under the
product's lock, sends one small outcome back through a pipe and exits. It dies with the
process that started it, so a killed runner never leaves builds running unsupervised; a
killed build leaves nothing half released (the release manifest is written last) and its
lock is freed by the kernel.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quanta.errors import InputError, QuantaError
from quanta.storage.locks import BuildLock

if TYPE_CHECKING:
    from quanta.build.runner import BuildResult
    from quanta.context import MeshContext

_SPAWN = multiprocessing.get_context("spawn")
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class BuildOutcome:
    """What became of one build attempt, as the runner needs it."""

    product: str
    outcome: str  # released | unchanged | failed | locked
    release: int | None = None
    rows: int = 0
    error: dict[str, Any] | None = None
    transient: bool = False
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


def _die_with_parent(parent: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the child outlives a killed runner
        pass
    if os.getppid() != parent:  # the runner died before the line above: build nothing
        os._exit(1)


def _child(jobs: Connection, results: Connection, parent: int) -> None:
    _die_with_parent(parent)
    # the runner decides when to stop a build (SIGTERM → roll back by exiting unreleased)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # the slow part of starting (imports) happens before a job arrives: a spare process
    # waits warm, so a trigger is answered in milliseconds rather than a second
    from quanta.container.remote import remote_inputs
    from quanta.context import MeshContext
    from quanta.engine.base import EngineLimits

    try:
        job = jobs.recv()
    except (EOFError, OSError):
        return
    if job is None:  # the runner no longer needs this spare
        return
    mesh_root, key, triggered_at, memory, catalog = job
    start = time.perf_counter()
    try:
        context = MeshContext(Path(mesh_root),
                              limits=EngineLimits(memory_limit=memory) if memory else None)
        # products served by other units are read through the catalog
        context.remote = remote_inputs(context.mesh, catalog)
        result = _build(context, key, triggered_at)
        error = result.error if result is not None else None
        if result is None:
            outcome = BuildOutcome(key, "locked")
        elif error is not None and error.code == "build_locked":
            outcome = BuildOutcome(key, "locked", error=error.to_dict())
        else:
            outcome = BuildOutcome(
                key, result.run.outcome, release=result.run.release,
                rows=sum(result.run.rows.values()),
                error=error.to_dict() if error else None,
                transient=isinstance(error, InputError) and error.transient,
                warnings=list(result.run.warnings))
    except QuantaError as exc:  # the mesh or product no longer loads
        outcome = BuildOutcome(key, "failed", error=exc.to_dict())
    outcome = BuildOutcome(**{**outcome.__dict__, "seconds": time.perf_counter() - start})
    results.send(outcome)
    results.close()


def _build(context: MeshContext, key: str, triggered_at: datetime | None
           ) -> BuildResult | None:
    """Build ``key``; with ``triggered_at`` (a manual trigger) even from unchanged inputs.

    Every runner on the mesh sees a trigger, so forced builds take turns on a lock of their
    own, and one that finds a release committed since the trigger only builds if the inputs
    changed: a trigger makes one release, not one per runner. None: another runner's turn.
    """
    if triggered_at is None:
        return context.build_product(key, skip_unchanged=True)
    from quanta.storage import ProductStorage

    root = context.mesh.storage_root
    turn = BuildLock(root, f"{key}.trigger")
    if not turn.acquire("trigger"):
        return None
    try:
        latest = ProductStorage(root, key).latest()
        answered = latest is not None and latest.committed_at >= triggered_at
        return context.build_product(key, skip_unchanged=answered)
    finally:
        turn.release()


class BuildProcess:
    """A process for one build: spawned ahead (warm, waiting), given its build, polled,
    stopped. It builds once and exits."""

    def __init__(self) -> None:
        job_receiver, self._jobs = _SPAWN.Pipe(duplex=False)
        receiver, sender = _SPAWN.Pipe(duplex=False)
        self._receiver = receiver
        self._process = _SPAWN.Process(
            target=_child, args=(job_receiver, sender, os.getpid()),
            name="quanta-build", daemon=False)
        self._process.start()
        job_receiver.close()
        sender.close()
        self._outcome: BuildOutcome | None = None
        self.key = ""
        self.started = time.monotonic()

    def assign(self, mesh_root: Path, key: str, triggered_at: datetime | None,
               memory: str | None, catalog: str | None = None) -> BuildProcess:
        """Start building ``key``; ``triggered_at``: answer the manual trigger made then (a
        build even from unchanged inputs); ``catalog``: where units serving its external
        input products are found."""
        self.key = key
        self.started = time.monotonic()
        with contextlib.suppress(OSError):  # a spare that died is seen by poll()
            self._jobs.send((str(mesh_root), key, triggered_at, memory, catalog))
        return self

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def retire(self) -> None:
        """End an unassigned spare (it holds no lock and has done no work)."""
        with contextlib.suppress(OSError):
            self._jobs.send(None)
        self._process.terminate()
        self._process.join()

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def poll(self) -> BuildOutcome | bool | None:
        """The outcome once the child has ended (None if it died without one); True while
        it still runs."""
        self._receive()
        if self._process.is_alive():
            return True
        self._receive()
        self._process.join()
        return self._outcome

    def _receive(self) -> None:
        if self._outcome is None and self._receiver.poll():
            with contextlib.suppress(EOFError, OSError):
                self._outcome = self._receiver.recv()

    @property
    def exitcode(self) -> int | None:
        return self._process.exitcode

    def rss_bytes(self) -> int:
        """Resident memory of the build process now (0 when it cannot be read)."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return 0
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self, grace: float = 5.0) -> None:
        """Ask the build to end (SIGTERM), then kill it after ``grace`` seconds."""
        if not self._process.is_alive():
            return
        self._process.terminate()
        self._process.join(grace)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()

    def kill(self) -> None:
        if self._process.is_alive() and self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)
            self._process.join()
