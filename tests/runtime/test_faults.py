"""Faults of the decentralized runtime (issue 7): killed builds and runners, a failing or
retired upstream, an unreachable database, a full disk, two runners at once, a build over its
time limit.

Most tests drive ``quanta run`` in its own process, as an operator would, and then check what
consumers rely on: every release listed still verifies and reads back whole, release numbers
run 1, 2, 3... with no gap or duplicate, nothing of a broken build is visible, build locks are
free again, and the run records say what went wrong. The mesh is tests/fixtures/runtime_faults.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import TypeVar

import duckdb
import pyarrow.parquet as pq
import pytest

import quanta
from conftest import copy_fixture
from quanta.context import MeshContext
from quanta.control.lifecycle import deprecate, retire
from quanta.observe import slo_report
from quanta.runtime import MeshRuntime
from quanta.runtime.state import ProductState, write_state
from quanta.spec.mesh import load_mesh
from quanta.storage import ProductStorage, RunLog, RunRecord
from quanta.storage.events import EventLog
from quanta.storage.locks import BuildLock

QUANTA = Path(sys.executable).parent / "quanta"
STORAGE = ".quanta"
READINGS, DAILY = "plant.readings", "plant.daily"
SLOW, BATCH_COUNT = "plant.slow", "plant.batch_count"
STUCK, METERS = "plant.stuck", "plant.meters_pg"
BIG = 1_200_000  # rows of readings.csv: building them takes well over a second
T = TypeVar("T")


# --- processes ---------------------------------------------------------------------------------


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("QUANTA_MESH", "FAULTS_SLOW_SECONDS", "FAULTS_PG_URL")}
    return {**env, "COLUMNS": "200", **extra}


def quanta_cli(mesh: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """One ``quanta`` command in its own process, on ``mesh`` (at most two minutes)."""
    return subprocess.run([str(QUANTA), *args, "--mesh", str(mesh)], capture_output=True,
                          text=True, timeout=120, env=environment(**env))


def run_once(mesh: Path, *products: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``quanta run --once`` of ``products``."""
    return quanta_cli(mesh, "run", "--once", "--poll", "0.2",
                      *[a for key in products for a in ("--product", key)], **env)


@dataclass
class Runner:
    """A ``quanta run`` started by a test; its output goes to a file."""

    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"quanta run still running after {timeout} s; its output:\n"
                                 f"{self.output()}") from None


@dataclass
class Runners:
    """Runners and the build processes a test saw; teardown kills those still alive, by pid."""

    folder: Path
    started: list[Runner] = field(default_factory=list)
    builds: set[int] = field(default_factory=set)

    def start(self, mesh: Path, *args: str, **env: str) -> Runner:
        log = self.folder / f"runner-{len(self.started) + 1}.log"
        with open(log, "wb") as sink:
            process = subprocess.Popen(
                [str(QUANTA), "run", "--poll", "0.2", "--mesh", str(mesh), *args],
                stdout=sink, stderr=subprocess.STDOUT, env=environment(**env))
        runner = Runner(process, log)
        self.started.append(runner)
        return runner

    def build_of(self, mesh: Path, key: str, runner: Runner, after: set[int] | None = None,
                 timeout: float = 30) -> int:
        """The pid of ``runner``'s build of ``key`` once it holds the product's lock (the
        lock file names its holder; a runner's own pid differs)."""
        lock = BuildLock(mesh / STORAGE, key)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = lock.holder().get("pid")
            if (isinstance(pid, int) and pid not in (after or set()) and alive(pid)
                    and parent_of(pid) == runner.pid):
                self.builds.add(pid)
                return pid
            if runner.process.poll() is not None:
                raise AssertionError(f"quanta run ended before building {key}:\n"
                                     f"{runner.output()}")
            time.sleep(0.02)
        raise AssertionError(f"no build of {key} took its lock within {timeout} s:\n"
                             f"{runner.output()}")

    def close(self) -> None:
        for runner in self.started:
            if runner.process.poll() is None:
                runner.process.kill()
                runner.process.wait(10)
        for pid in self.builds:  # builds die with their runner; this is a safety net
            if alive(pid) and "multiprocessing" in _cmdline(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def runners(tmp_path: Path) -> Iterator[Runners]:
    started = Runners(tmp_path)
    try:
        yield started
    finally:
        started.close()


@pytest.fixture
def mesh(tmp_path: Path) -> Path:
    return copy_fixture("runtime_faults", tmp_path)


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # state, ppid, ...


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Whether any thread of ``pid`` still runs. A killed build's main thread may be a zombie
    while its engine's threads still exit, holding its files (and lock) open meanwhile."""
    try:
        threads = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return False
    for thread in threads:
        try:
            text = Path(f"/proc/{pid}/task/{thread}/stat").read_text()
        except OSError:
            continue
        if text[text.rindex(")") + 2] not in "ZX":
            return True
    return False


def parent_of(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields else None


def spawned_builds(runner: Runner) -> list[int]:
    """Build processes ``runner`` spawned (not multiprocessing's resource tracker)."""
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
            and parent_of(int(p.name)) == runner.pid and "spawn_main" in _cmdline(int(p.name))]


def wait_until(check: Callable[[], T], timeout: float, what: str) -> T:
    """``check()`` once it is truthy; an AssertionError saying ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} (waited {timeout} s)")
        time.sleep(0.05)


# --- the mesh's data ---------------------------------------------------------------------------


def write_readings(mesh: Path, rows: int) -> None:
    """Replace plant.readings' source with ``rows`` readings, at once (a runner watching it
    never sees half a file)."""
    target = mesh / "domains/plant/readings/readings.csv"
    partial = target.with_name(".readings.partial")
    duckdb.sql(f"""COPY (SELECT i AS id, 'm' || (i % 97) AS meter, (i % 1000) / 10 AS kwh,
                   TIMESTAMP '2024-01-01' + to_seconds(i * 7) AS read_at
                   FROM range({rows}) t(i)) TO '{partial}' (HEADER, FORMAT csv)""")
    partial.replace(target)


def build_now(mesh: Path, *keys: str) -> None:
    """Release ``keys`` in this process: the mesh as it was before the fault."""
    context = MeshContext(mesh)
    try:
        for key in keys:
            result = context.build_product(key)
            assert result.release is not None, result.error
    finally:
        context.close()


def assert_sound(storage: Path, key: str, numbers: list[int]) -> None:
    """``key`` has exactly releases ``numbers``; each verifies and reads back whole."""
    products = ProductStorage(storage, key)
    assert products.release_numbers() == numbers, (
        f"{key} has releases {products.release_numbers()}, expected {numbers}")
    for release in products.releases():
        products.verify(release)
        for port, written in release.ports.items():
            files = products.data_files(release, port)
            rows = sum(pq.read_table(f).num_rows for f in files)
            assert rows == written.rows, (
                f"{key} release {release.release} port {port}: {rows} rows read back, "
                f"{written.rows} released")


def assert_lock_free(storage: Path, key: str) -> None:
    lock = BuildLock(storage, key)
    assert lock.acquire("test"), f"the build lock of {key} is still held: {lock.holder()}"
    lock.release()


def runs_of(storage: Path, key: str, code: str | None = None) -> list[RunRecord]:
    return [r for r in RunLog(storage).runs(key)
            if code is None or (r.error or {}).get("code") == code]


def read_port(mesh: Path, address: str) -> tuple[list[dict[str, object]], dict[str, int]]:
    """A port's rows and the releases read, through the SDK as the mesh's operator."""
    client = quanta.connect(mesh)
    try:
        result = client.read(address)
    finally:
        client.close()
    return result.arrow.to_pylist(), result.snapshot


# --- 1. a build killed mid-write ---------------------------------------------------------------


def unreleased_parquet(storage: Path, key: str, port: str) -> list[Path]:
    """Parquet files in a port's folder that no release lists (a build writing them)."""
    products = ProductStorage(storage, key)
    listed = {f for r in products.releases() for f in products.data_files(r, port)}
    return [f for f in products.port_path(port).glob("*.parquet") if f not in listed]


def test_a_build_killed_mid_write_leaves_the_last_release_whole_and_its_lock_free(
        mesh: Path, runners: Runners) -> None:
    storage = mesh / STORAGE
    build_now(mesh, READINGS)
    runner = runners.start(mesh, "--product", READINGS, "--grace", "0")
    seen: set[int] = set()
    # killed 0.2 s and 0.6 s into the build (reading, conforming), then while writing Parquet
    for n, moment in enumerate((0.2, 0.6, None), start=1):
        left = set(unreleased_parquet(storage, READINGS, "readings"))  # by builds killed before
        write_readings(mesh, BIG + n)
        pid = runners.build_of(mesh, READINGS, runner, after=seen)
        seen.add(pid)
        if moment is None:
            wait_until(lambda: set(unreleased_parquet(storage, READINGS, "readings")) - left,  # noqa: B023
                       30, "the build wrote no Parquet file")
        else:
            time.sleep(moment)
        assert alive(pid), "the build ended before it was killed; make readings.csv bigger"
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not alive(pid), 5, "the killed build is still running")  # noqa: B023
        assert_sound(storage, READINGS, list(range(1, n + 1)))  # nothing of it is visible
        assert_lock_free(storage, READINGS)
        died = wait_until(lambda: runs_of(storage, READINGS, "build_died")[n - 1:],  # noqa: B023
                          10, "the runner recorded no run for the killed build")
        assert "ended without an outcome" in str(died[0].error), died[0].error
        if n < 3:  # the runner retries the killed build by itself
            wait_until(lambda: len(ProductStorage(storage, READINGS).release_numbers()) > n,  # noqa: B023
                       60, f"the runner did not rebuild after kill {n}:\n{runner.output()}")
            assert_sound(storage, READINGS, list(range(1, n + 2)))
            retry = BuildLock(storage, READINGS).holder().get("pid")
            seen.add(retry if isinstance(retry, int) else 0)  # it may still be winding up
    runner.process.send_signal(signal.SIGTERM)
    runner.wait(20)
    again = run_once(mesh, READINGS)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 release(s), 0 failure(s)" in again.stdout, again.stdout
    assert_sound(storage, READINGS, [1, 2, 3, 4])
    assert ProductStorage(storage, READINGS).release(4).ports["readings"].rows == BIG + 3


# --- 2. a runner killed with builds in flight --------------------------------------------------


def test_a_killed_runner_takes_its_builds_along_and_a_restart_finishes_them(
        mesh: Path, runners: Runners) -> None:
    storage = mesh / STORAGE
    build_now(mesh, READINGS, SLOW)
    write_readings(mesh, BIG)
    MeshRuntime(mesh).trigger(SLOW, by="operator")  # kept in the event log
    # killed right after spawning: the build must not go on alone, even if it had no time yet
    # to arrange to die with its runner
    early = runners.start(mesh, "--product", SLOW, FAULTS_SLOW_SECONDS="30")
    spawned = wait_until(lambda: spawned_builds(early), 30, "no build was spawned")
    early.process.kill()
    early.wait(10)
    runners.builds.update(spawned)
    wait_until(lambda: not any(alive(p) for p in spawned), 10,
               f"builds {spawned} outlived the runner killed as it spawned them")
    # killed while both builds hold their locks, one of them writing
    late = runners.start(mesh, "--product", READINGS, "--product", SLOW,
                         FAULTS_SLOW_SECONDS="30")
    builds = [runners.build_of(mesh, key, late) for key in (READINGS, SLOW)]
    late.process.kill()
    late.wait(10)
    wait_until(lambda: not any(alive(p) for p in builds), 5,
               f"builds {builds} outlived their killed runner")
    for key in (READINGS, SLOW):
        assert_lock_free(storage, key)
        assert_sound(storage, key, [1])
    restart = run_once(mesh, READINGS, SLOW)
    assert restart.returncode == 0, restart.stdout + restart.stderr
    assert "triggered by" in restart.stdout and "source 'raw' changed" in restart.stdout
    assert_sound(storage, READINGS, [1, 2])
    assert_sound(storage, SLOW, [1, 2])
    assert ProductStorage(storage, READINGS).release(2).ports["readings"].rows == BIG


# --- 3. SIGTERM: builds in flight finish within the grace, or are rolled back ------------------


def test_sigterm_lets_a_build_in_flight_finish_and_release(
        mesh: Path, runners: Runners) -> None:
    storage = mesh / STORAGE
    runner = runners.start(mesh, "--product", SLOW, "--grace", "30",
                           FAULTS_SLOW_SECONDS="1.5")
    pid = runners.build_of(mesh, SLOW, runner)
    runner.process.send_signal(signal.SIGTERM)
    assert runner.wait(30) == 0, runner.output()
    assert not alive(pid)
    assert "stopping" in runner.output() and "released" in runner.output(), runner.output()
    assert_sound(storage, SLOW, [1])
    assert_lock_free(storage, SLOW)


def test_sigterm_without_grace_stops_a_slow_build_and_releases_nothing(
        mesh: Path, runners: Runners) -> None:
    storage = mesh / STORAGE
    build_now(mesh, SLOW)
    MeshRuntime(mesh).trigger(SLOW, by="operator")
    runner = runners.start(mesh, "--product", SLOW, "--grace", "0", FAULTS_SLOW_SECONDS="30")
    pid = runners.build_of(mesh, SLOW, runner)
    runner.process.send_signal(signal.SIGTERM)
    assert runner.wait(15) == 0, runner.output()
    wait_until(lambda: not alive(pid), 5, "the stopped build is still running")
    assert "stopped at shutdown; nothing released" in runner.output(), runner.output()
    assert_sound(storage, SLOW, [1])
    assert_lock_free(storage, SLOW)
    interrupted = runs_of(storage, SLOW)
    assert [r.outcome for r in interrupted] == ["released", "failed"]
    assert interrupted[-1].error is not None
    assert interrupted[-1].error["code"] == "build_interrupted", interrupted[-1].error
    # the trigger was not answered, so the next run still owes it
    status = {p.product: p for p in MeshRuntime(mesh).status()}
    assert status[SLOW].due and "triggered by" in status[SLOW].reasons[0], status[SLOW]


# --- 4. a failing or retired upstream ----------------------------------------------------------


def test_a_failing_upstream_leaves_downstream_serving_and_its_freshness_breached(
        mesh: Path) -> None:
    storage = mesh / STORAGE
    build_now(mesh, READINGS, DAILY)
    served = read_port(mesh, "quanta://plant/daily/daily")
    source = mesh / "domains/plant/readings/readings.csv"
    source.write_text("id,meter,kwh,read_at\nnot-a-number,m1,1.0,2024-01-03 00:00:00\n")
    result = run_once(mesh, READINGS, DAILY)
    assert result.returncode == 1, result.stdout + result.stderr
    failed = runs_of(storage, READINGS)[-1]
    assert failed.outcome == "failed" and failed.error is not None
    assert "not int64" in failed.error["message"] and "not-a-number" in failed.error["message"]
    assert [r.outcome for r in runs_of(storage, DAILY)] == ["released"], "downstream not rebuilt"
    assert read_port(mesh, "quanta://plant/daily/daily") == served
    assert_sound(storage, READINGS, [1])
    assert_sound(storage, DAILY, [1])
    # freshness 1s: daily's only release is older than that by now
    released = ProductStorage(storage, DAILY).release(1).committed_at
    wait_until(lambda: datetime.now(UTC) - released > timedelta(seconds=1.5), 5, "clock")
    report = slo_report(load_mesh(mesh), [DAILY])
    freshness = next(s for s in report.products[0].slos if s.slo == "freshness")
    assert freshness.status == "breached", freshness
    assert "no release since" in freshness.breaches[-1].cause, freshness.breaches
    # the downstream names why its input is stale, and what it still serves
    status = quanta_cli(mesh, "triggers", DAILY)
    assert "upstream plant.readings failed (built from its release 1)" in status.stdout, \
        status.stdout
    assert "not-a-number" in status.stdout


def test_a_retired_upstream_fails_downstream_once_and_it_keeps_serving(mesh: Path) -> None:
    storage = mesh / STORAGE
    build_now(mesh, READINGS, DAILY)
    served = read_port(mesh, "quanta://plant/daily/daily")
    context = MeshContext(mesh)  # what quanta deprecate and quanta retire do
    try:
        operator = context.sidecar.operator()
        deprecate(context.sidecar, operator, "quanta://plant/readings", date(2030, 1, 1))
        retire(context.sidecar, operator, "quanta://plant/readings", reason="meters instead")
    finally:
        context.close()
    # daily's team changes its spec while its input is retired: its trigger fires
    spec = mesh / "domains/plant/daily/dataproduct.yaml"
    spec.write_text(spec.read_text().replace("Energy per meter", "Energy used per meter"))
    result = run_once(mesh, READINGS, DAILY)
    assert result.returncode == 1, result.stdout + result.stderr
    failed = runs_of(storage, DAILY)[-1]
    assert failed.error is not None and failed.error["code"] == "input_retired", failed.error
    assert "plant.readings is retired (meters instead)" in failed.error["message"]
    held = quanta_cli(mesh, "triggers", DAILY)
    assert "held" in held.stdout and "failed with these inputs" in held.stdout, held.stdout
    again = run_once(mesh, READINGS, DAILY)
    assert again.returncode == 0 and "nothing pending" in again.stdout, again.stdout
    assert [r.outcome for r in runs_of(storage, DAILY)] == ["released", "failed"]
    assert read_port(mesh, "quanta://plant/daily/daily") == served
    assert_sound(storage, DAILY, [1])


# --- 5. an unreachable source ------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_database_is_retried_with_backoff_then_fails_clearly(
        mesh: Path) -> None:
    storage = mesh / STORAGE
    url = f"postgresql://meters:s3cret@127.0.0.1:{closed_port()}/plant"
    result = run_once(mesh, METERS, FAULTS_PG_URL=url)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "retry 1 of 2 in 1 s" in output and "retry 2 of 2 in 2 s" in output, output
    runs = runs_of(storage, METERS)
    assert [r.outcome for r in runs] == ["failed"] * 3, [r.outcome for r in runs]
    for run in runs:
        assert "cannot connect to PostgreSQL (FAULTS_PG_URL)" in str(run.error), run.error
        assert "s3cret" not in run.model_dump_json()
    assert "s3cret" not in output
    waits = [(b.started_at - a.ended_at).total_seconds() for a, b in pairwise(runs)]
    assert waits[0] >= 1 and waits[1] >= 2 and waits[1] > waits[0], waits
    assert_sound(storage, METERS, [])
    status = {p.product: p for p in MeshRuntime(mesh).status()}[METERS]
    assert not status.due and status.held is not None, status


def test_a_retry_owed_is_made_by_a_restarted_runner_even_if_nothing_else_fires(
        mesh: Path) -> None:
    build_now(mesh, SLOW)
    storage = load_mesh(mesh).storage_root
    cursor = EventLog(storage).last_seq()
    error = {"code": "input_failed", "message": "the source was down"}
    soon = datetime.now(UTC) + timedelta(hours=1)
    write_state(storage, SLOW, ProductState(cursor=cursor, failures=1, retry_at=soon,
                                            last_error=error))
    waiting = {p.product: p for p in MeshRuntime(mesh).status()}[SLOW]
    assert not waiting.due and waiting.retry_at == soon, waiting
    write_state(storage, SLOW, ProductState(cursor=cursor, failures=1,
                                            retry_at=datetime.now(UTC), last_error=error))
    due = {p.product: p for p in MeshRuntime(mesh).status()}[SLOW]
    assert due.due and due.reasons == ["retry 1 after a transient failure"], due


# --- 6. a full disk ----------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs, unmounted at teardown."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs",
                                  str(folder)], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        pytest.skip("no mount command here to make a small tmpfs")
    if mounted.returncode != 0:
        reason = mounted.stderr.strip()
        if any(w in reason.lower() for w in ("permission denied", "not permitted",
                                             "must be superuser", "only root")):
            pytest.skip(f"cannot mount a tmpfs here (an environment limit): {reason}")
        pytest.fail(f"mount -t tmpfs failed: {reason}")
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_a_full_disk_fails_the_build_clearly_and_keeps_the_last_release(
        mesh: Path, small_disk: Path) -> None:
    config = mesh / "mesh.yaml"
    config.write_text(config.read_text() + f"storage: {{root: '{small_disk}'}}\n")
    build_now(mesh, READINGS)
    write_readings(mesh, 400_000)  # some 3 MB of Parquet, on a 2 MB disk
    result = run_once(mesh, READINGS)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "No space left on device" in result.stdout, result.stdout
    failed = runs_of(small_disk, READINGS)[-1]
    assert failed.error is not None and failed.error["code"] == "storage_failed", failed.error
    assert "No space left on device" in failed.error["message"]
    assert "disk space" in str(failed.error["hint"])
    assert_sound(small_disk, READINGS, [1])
    assert_lock_free(small_disk, READINGS)
    products = ProductStorage(small_disk, READINGS)
    kept = set(products.data_files(products.release(1), "readings"))
    assert set(products.port_path("readings").glob("*.parquet")) == kept, "partial data left"
    rows, snapshot = read_port(mesh, "quanta://plant/readings/readings")
    assert len(rows) == 3 and snapshot == {READINGS: 1}


# --- 7. two runners on one mesh ----------------------------------------------------------------


def test_two_runners_on_one_mesh_release_each_product_once(
        mesh: Path, runners: Runners) -> None:
    storage = mesh / STORAGE
    keys = (SLOW, BATCH_COUNT, READINGS, DAILY)
    products = [a for key in keys for a in ("--product", key)]
    # the second starts while the first builds an upstream that has no release yet: its
    # downstream waits for that build instead of failing on a missing input
    first = runners.start(mesh, "--once", *products, FAULTS_SLOW_SECONDS="6")
    runners.build_of(mesh, SLOW, first)
    second = runners.start(mesh, "--once", *products, FAULTS_SLOW_SECONDS="6")
    assert second.wait(60) == 0, second.output()
    assert first.wait(60) == 0, first.output()
    for key in keys:
        assert_sound(storage, key, [1])
    # both at once, reacting to one manual trigger: one release, and one of its downstream
    MeshRuntime(mesh).trigger(SLOW, by="operator")
    both = [runners.start(mesh, "--once", *products) for _ in range(2)]
    for runner in both:
        assert runner.wait(90) == 0, runner.output()
    for key in keys:
        assert_sound(storage, key, [1, 2] if key in (SLOW, BATCH_COUNT) else [1])
    assert not [r for r in RunLog(storage).runs() if r.outcome == "failed"]


# --- 8. a build over its time limit ------------------------------------------------------------


def test_a_build_over_its_time_limit_is_stopped_and_releases_nothing(mesh: Path) -> None:
    storage = mesh / STORAGE
    result = run_once(mesh, STUCK)
    assert result.returncode == 1, result.stdout + result.stderr
    runs = runs_of(storage, STUCK)
    assert [(r.outcome, (r.error or {}).get("code")) for r in runs] == [
        ("failed", "build_timeout")], runs
    assert "longer than its timeout (1 s)" in str(runs[0].error)
    assert (runs[0].ended_at - runs[0].started_at).total_seconds() < 4, "not stopped in time"
    assert_sound(storage, STUCK, [])
    # (a slow start may be stopped before the build even took its lock and named itself)
    holder = BuildLock(storage, STUCK).holder().get("pid")
    assert not (isinstance(holder, int) and alive(holder)), "the stopped build still runs"
    assert_lock_free(storage, STUCK)
