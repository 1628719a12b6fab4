"""Incremental builds: adding 1% new rows to a 10M-row product, against a full rebuild.

A one-product mesh ``bench.plays`` copies play events from a SQLite table (the ingest
product's shape, with not_null and unique checks) and declares
``incremental: {strategy: append, input: raw, watermark: played_at}``. The source table has
an index on ``played_at``, as an operational table read by a watermark would.

Side by side, round by round:

- **full**: ``Builder.build(full=True)``, the ``quanta build --full`` of the product: every
  source row read, transformed, checked, profiled and written again (on top of the previous
  release, so it also carries unchanged rows' ``_recorded_at`` over);
- **incremental**: first (untimed) 1% new rows are appended to the source, later than every
  row before; then an ordinary build, which reads only those rows and adds a data file.

Ratio = full seconds / incremental seconds; the target is at least 20 at 10M rows (smaller
runs report the ratio as INFO: fixed costs weigh more there). An INFO
row times the same with ``strategy: merge`` (by ``play_id``), which also has to prove that
no kept file holds a new key. Each timed build is checked: the incremental one read exactly
the new rows, and every release holds every source row.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from adbc_driver_sqlite import dbapi

from benchmarks.common import (
    Row,
    Run,
    Sample,
    Settings,
    at_least,
    interleave,
    median,
    median_sample,
    spread,
    stopwatch,
)
from benchmarks.data import DEVICES, _ids, play_events, plays_mesh, write_sqlite
from quanta.build.runner import Builder
from quanta.spec.mesh import load_mesh

ROWS: int | None = None  # --rows; the default is 10M rows (quick 1M)
FULL_ROWS, QUICK_ROWS = 10_000_000, 1_000_000
TARGET = 20.0
SHARE = 0.01
KEY = "bench.plays"


class Source:
    """The SQLite play log; ``append`` adds rows later than all before, with higher ids."""

    def __init__(self, path: Path, rows: int) -> None:
        self.path = path
        self.rows = rows
        table = play_events(rows)
        self.last = pc.max(table.column("played_at")).as_py()
        write_sqlite(path, table)
        with sqlite3.connect(path) as con:
            con.execute("CREATE INDEX plays_played_at ON plays (played_at)")

    def append(self, count: int) -> None:
        rng = np.random.default_rng(self.rows)
        start = np.datetime64(self.last) + np.timedelta64(1, "s")
        moments = np.sort(start + rng.integers(0, 3_600, count).astype("timedelta64[s]"))
        table = pa.table({
            "play_id": _ids("p", np.arange(self.rows + 1, self.rows + count + 1), 9),
            "listener_id": _ids("l", rng.integers(1, 100_000, count), 6),
            "track_id": _ids("t", rng.integers(1, 50_000, count), 6),
            "played_at": pc.strftime(pa.array(moments.astype("datetime64[s]")),
                                     format="%Y-%m-%d %H:%M:%S"),
            "ms_played": rng.integers(1_000, 400_000, count, dtype=np.int64),
            "device": pa.array(DEVICES).take(pa.array(rng.integers(0, len(DEVICES), count))),
        })
        with dbapi.connect(str(self.path), autocommit=True) as con, con.cursor() as cur:
            cur.adbc_ingest("plays", table, mode="append")
        self.rows += count
        self.last = pc.max(table.column("played_at")).as_py()


def incremental_mesh(root: Path, source: Path, strategy: str) -> Path:
    """A mesh whose one product reads ``source`` incrementally with ``strategy``."""
    folder = plays_mesh(root, f"{{name: raw, type: sqlite, path: '{source}', table: plays}}")
    spec = folder / "dataproduct.yaml"
    spec.write_text(spec.read_text().replace(
        "transform:\n",
        f"incremental: {{strategy: {strategy}, input: raw, watermark: played_at}}\n"
        "transform:\n", 1))
    return root


def build(mesh: Path, source: Source, full: bool, new: int | None = None) -> Run:
    """A timed build of the mesh's product, checked: every source row released, and an
    incremental build read exactly ``new`` rows (appended first, untimed)."""

    def run() -> Sample:
        if new:
            source.append(new)
        builder = Builder(load_mesh(mesh))
        with stopwatch() as t:
            [result] = builder.build([KEY], full=full)
        if not result.ok or result.release is None:
            raise RuntimeError(f"build failed: {result.error and result.error.render()}")
        read = result.run.inputs["raw"]
        if result.release.rows != source.rows or (not full and read.rows != new):
            raise RuntimeError(f"released {result.release.rows:,} of {source.rows:,} rows, "
                               f"read {read.rows}")
        return Sample(t[0], {"stages": dict(result.run.stages), "read": read.rows,
                             "rows": result.release.rows})

    return run


def _stages(sample: Sample) -> str:
    stages: dict[str, float] = sample.details["stages"]
    top = sorted(stages.items(), key=lambda kv: -kv[1])[:4]
    return ", ".join(f"{k} {v:.2f}" for k, v in top)


def run(settings: Settings) -> list[Row]:
    rows = ROWS or (QUICK_ROWS if settings.quick else FULL_ROWS)
    new = max(1, int(rows * SHARE))
    with tempfile.TemporaryDirectory(prefix="quanta-bench-incremental-") as tmp:
        root = Path(tmp)
        settings.log(f"generating {rows:,} play events in SQLite (indexed by played_at)")
        source = Source(root / "plays.db", rows)
        append = incremental_mesh(root / "append", source.path, "append")
        settings.log("first build (untimed)")
        build(append, source, full=True)()
        samples = interleave({"full": build(append, source, full=True),
                              "incremental": build(append, source, full=False, new=new)},
                             settings.repeats)
        full, incremental = median(samples["full"]), median(samples["incremental"])
        typical = median_sample(samples["incremental"])
        settings.log(f"full {full:.2f}s, incremental {incremental:.3f}s "
                     f"({full / incremental:.1f}x); stages {typical.details['stages']}")
        result = [Row(
            workload=f"incremental append {new:,} new rows to {rows:,}", quanta_s=incremental,
            baseline_s=full, ratio=full / incremental, target=f">= {TARGET:g} at 10M",
            # the target is set for 10M rows: below that, fixed costs weigh more
            status=at_least(full / incremental, TARGET) if rows >= FULL_ROWS else "INFO",
            note=f"baseline: quanta build --full; incremental stages: {_stages(typical)}",
            details={"rows": rows, "new_rows": new, "full": spread(samples["full"]),
                     "incremental": spread(samples["incremental"]),
                     "full_stages_of_median_run":
                         median_sample(samples["full"]).details["stages"],
                     "incremental_stages_of_median_run": typical.details["stages"]},
        )]
        shutil.rmtree(append / ".quanta")  # room on disk for the merge product
        merge = incremental_mesh(root / "merge", source.path, "merge")
        build(merge, source, full=True)()
        merged = [build(merge, source, full=False, new=new)() for _ in range(settings.repeats)]
        seconds = median(merged)
        result.append(Row(
            workload="  the same with strategy: merge (by play_id)", quanta_s=seconds,
            baseline_s=full, ratio=full / seconds, target="info", status="INFO",
            note=f"stages: {_stages(median_sample(merged))}",
            details={"merge": spread(merged),
                     "stages_of_median_run": median_sample(merged).details["stages"]}))
    return result
