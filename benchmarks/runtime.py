"""Reaction time of the decentralized runtime: upstream release → downstream release readable.

A two-product mesh: ``bench.source`` reads a CSV file, ``bench.daily`` aggregates it (``on:
upstream``). ``quanta run`` (a MeshRuntime in a thread) runs ``bench.daily`` only; the
benchmark plays the upstream team, appending rows and releasing ``bench.source`` in this
process, and measures how long until ``bench.daily``'s new release is committed. The baseline
is the downstream build alone, run directly by ``Builder.build_one``; what the runtime adds is
the reaction (noticing the event, spawning the build process). Target: under 2 s plus the
downstream's own build time.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.common import Row, Settings, at_most
from quanta.build.runner import Builder
from quanta.runtime import MeshRuntime
from quanta.spec.mesh import load_mesh
from quanta.storage import ProductStorage, RunLog

TARGET_S = 2.0
SOURCE = """apiVersion: quanta/v1
name: source
domain: bench
kind: source-aligned
version: 1.0.0
owner: {team: bench}
description: Events as a file.
inputs: [{name: raw, type: file, path: events.csv}]
transform: {type: sql, sql: "SELECT id, day, amount FROM raw"}
outputs:
  - name: events
    primary_key: [id]
    fields:
      - {name: id, type: int64, description: Event id}
      - {name: day, type: date, description: Day}
      - {name: amount, type: float64, description: Amount}
triggers: [{on: manual}]
"""
DAILY = """apiVersion: quanta/v1
name: daily
domain: bench
kind: aggregate
version: 1.0.0
owner: {team: bench}
description: Amount per day.
inputs: [{name: events, type: product, product: quanta://bench/source/events}]
transform: {type: sql, sql: "SELECT day, sum(amount) AS amount FROM events GROUP BY day"}
outputs:
  - name: daily
    primary_key: [day]
    fields:
      - {name: day, type: date, description: Day}
      - {name: amount, type: float64, description: Amount}
triggers: [{on: upstream}]
"""


def _mesh(folder: Path, rows: int) -> None:
    (folder / "mesh.yaml").write_text("apiVersion: quanta/v1\nname: bench\n")
    for name, text in (("source", SOURCE), ("daily", DAILY)):
        product = folder / "domains" / "bench" / name
        product.mkdir(parents=True)
        (product / "dataproduct.yaml").write_text(text)
    _append(folder, 0, rows)


def _append(folder: Path, start: int, rows: int) -> None:
    file = folder / "domains" / "bench" / "source" / "events.csv"
    with open(file, "a") as handle:
        if start == 0:
            handle.write("id,day,amount\n")
        handle.writelines(f"{i},2026-11-{1 + i % 28:02d},{i % 100}.5\n"
                          for i in range(start, start + rows))


def run(settings: Settings) -> list[Row]:
    rows = 2_000 if settings.quick else 100_000
    repeats = max(settings.repeats, 3)
    folder = Path(tempfile.mkdtemp(prefix="quanta-bench-runtime-"))
    stop = threading.Event()
    try:
        _mesh(folder, rows)
        mesh = load_mesh(folder)
        builder = Builder(mesh)
        for key in ("bench.source", "bench.daily"):
            builder.build_one(mesh.product(key))
        runtime = MeshRuntime(folder, ["bench.daily"], poll=1.0)
        thread = threading.Thread(target=runtime.run, kwargs={"stop": stop}, daemon=True)
        thread.start()
        reactions, builds, direct = [], [], []
        daily = ProductStorage(mesh.storage_root, "bench.daily")
        for number in range(repeats):
            _append(folder, rows * (number + 1), rows // 100)
            upstream = builder.build_one(mesh.product("bench.source")).release
            assert upstream is not None
            expected = len(daily.release_numbers()) + 1
            deadline = time.monotonic() + 60
            while daily.release_numbers()[-1] < expected and time.monotonic() < deadline:
                time.sleep(0.02)
            latest = daily.latest()
            assert latest is not None and latest.release == expected, "no downstream release"
            run_record = RunLog(mesh.storage_root).runs("bench.daily")[-1]
            total = (latest.committed_at - upstream.committed_at).total_seconds()
            reactions.append(total - run_record.seconds)
            builds.append(run_record.seconds)
            settings.log(f"upstream release {upstream.release} → downstream release "
                         f"{latest.release} in {total:.2f} s (its build {run_record.seconds:.2f} "
                         f"s, reaction {reactions[-1]:.2f} s)")
        stop.set()
        thread.join(30)
        for _ in range(repeats):  # the baseline: the same downstream build, called directly
            start = time.perf_counter()
            baseline = Builder(mesh).build_one(mesh.product("bench.daily"))
            direct.append(time.perf_counter() - start)
            assert baseline.release is not None, baseline.error
    finally:
        stop.set()
        shutil.rmtree(folder, ignore_errors=True)
    reaction = statistics.median(reactions)
    build = statistics.median(builds)
    base = statistics.median(direct)
    return [Row(
        "runtime: upstream release → downstream readable", reaction + build, base,
        base / (reaction + build), f"reaction < {TARGET_S:g} s + build",
        at_most(max(reactions), TARGET_S),
        f"median reaction {reaction:.2f} s (worst {max(reactions):.2f} s) + downstream build "
        f"{build:.2f} s in its own process; baseline = the same build called directly",
        details={"reactions_s": reactions, "builds_s": builds, "direct_s": direct})]
