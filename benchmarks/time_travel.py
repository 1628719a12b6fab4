"""Time travel: reading an old release costs the same as reading the latest one.

A product ``d.p`` (six play-event columns from a Parquet file) is built five times, its input
rewritten with different rows (same count) before each build. Then, side by side:

- ``ctx.read("d.p@1")`` against ``ctx.read("d.p")`` (release 5): the whole port;
- an aggregate query (``GROUP BY device``) at ``as_of=1`` against the latest release.

Ratio = old seconds / latest seconds; the target is 0.8 to 1.25. The first read of each
release in a process also hashes its files (integrity check, then cached); those first
reads are reported in the JSON details, the table shows the median of the later ones.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.common import (
    Row,
    Run,
    Sample,
    Settings,
    interleave,
    median,
    spread,
    stopwatch,
    within,
)
from benchmarks.data import play_events, plays_mesh
from quanta.context import MeshContext

LOW, HIGH = 0.8, 1.25
RELEASES = 5
AGGREGATE = ("SELECT device, count(*) AS plays, sum(ms_played) AS ms, max(played_at) AS last "
             "FROM d.p GROUP BY device ORDER BY device")


def build_releases(mesh: Path, folder: Path, rows: int, settings: Settings) -> list[float]:
    """Build ``d.p`` RELEASES times, changing its input before each build."""
    seconds = []
    for number in range(1, RELEASES + 1):
        table = play_events(rows, seed=number, offset=(number - 1) * rows)
        pq.write_table(table, folder / "plays.parquet")
        with stopwatch() as t:
            [result] = MeshContext(mesh).build()
        if not result.ok or result.release is None or result.release.release != number:
            raise RuntimeError(f"build {number} failed: {result.error and result.error.render()}")
        seconds.append(round(t[0], 4))
        settings.log(f"built release {number} in {t[0]:.2f}s")
    return seconds


def reading(ctx: MeshContext, address: str, first_id: str, rows: int) -> Run:
    def run() -> Sample:
        with stopwatch() as t:
            result = ctx.read(address)
        lowest = pc.min(result.table.column("play_id")).as_py()
        if lowest != first_id or result.table.num_rows != rows:
            raise RuntimeError(f"{address} read the wrong release: {result.snapshot}")
        return Sample(t[0], {"rows": result.table.num_rows})

    return run


def querying(ctx: MeshContext, as_of: int | None, release: int) -> Run:
    def run() -> Sample:
        with stopwatch() as t:
            result = ctx.query(AGGREGATE, as_of=as_of)
        if result.snapshot != {"d.p": release}:
            raise RuntimeError(f"query as of {as_of} read {result.snapshot}")
        return Sample(t[0])

    return run


def _first_id(release: int, rows: int) -> str:
    return f"p{(release - 1) * rows + 1:09d}"


def _row(name: str, runs: dict[str, Run], settings: Settings, extra: dict[str, object]) -> Row:
    first = {label: run().seconds for label, run in runs.items()}  # includes file hashing
    samples = interleave(runs, settings.repeats + 2)
    old, latest = median(samples["old"]), median(samples["latest"])
    ratio = old / latest
    settings.log(f"{name}: release 1 {old:.3f}s, latest {latest:.3f}s, ratio {ratio:.2f}")
    return Row(
        workload=name, quanta_s=old, baseline_s=latest, ratio=ratio,
        target=f"{LOW}..{HIGH}", status=within(ratio, LOW, HIGH),
        note="quanta = release 1, baseline = latest",
        details={"old": spread(samples["old"]), "latest": spread(samples["latest"]),
                 "first_read_s": {k: round(v, 4) for k, v in first.items()}, **extra},
    )


def run(settings: Settings) -> list[Row]:
    rows = settings.rows
    with tempfile.TemporaryDirectory(prefix="quanta-bench-time-travel-") as tmp:
        mesh = Path(tmp) / "mesh"
        folder = plays_mesh(mesh, "{name: raw, type: file, path: plays.parquet}",
                            domain="d", product="p")
        builds = build_releases(mesh, folder, rows, settings)
        ctx = MeshContext(mesh)
        extra: dict[str, object] = {"rows": rows, "releases": RELEASES, "build_s": builds}
        try:
            return [
                _row(f"time travel read {rows:,} rows @1 vs latest", {
                    "old": reading(ctx, "d.p@1", _first_id(1, rows), rows),
                    "latest": reading(ctx, "d.p", _first_id(RELEASES, rows), rows),
                }, settings, extra),
                _row("time travel aggregate as_of=1 vs latest", {
                    "old": querying(ctx, 1, 1),
                    "latest": querying(ctx, None, RELEASES),
                }, settings, extra),
            ]
        finally:
            ctx.close()  # flush the audit log before the folder goes
