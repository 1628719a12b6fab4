"""Ingest: build a source-aligned product from a big SQLite table and from a big CSV file.

quanta: ``MeshContext(mesh).build()`` of a one-product mesh whose transform is a plain SELECT
of six play-event columns, with not_null and unique checks (storage wiped before each run,
so every run is a first build).

Baselines (plain DuckDB copying the same rows to Parquet):

- CSV: a fresh DuckDB connection running
  ``COPY (SELECT * FROM read_csv('file')) TO 'out.parquet' (FORMAT parquet)``;
- SQLite: DuckDB cannot read SQLite here (no extension downloads), so the table is read into
  Arrow with adbc_driver_sqlite (``fetch_arrow_table``) and DuckDB COPYs that Arrow table.

Ratio = baseline seconds / quanta seconds; the target is at least 0.8. An INFO row per
source also times rebuilds (same input, previous release kept), which carry each unchanged
row's ``_recorded_at`` over from the previous release.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa
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
from benchmarks.data import play_events, plays_mesh, write_csv, write_sqlite
from quanta.context import MeshContext

TARGET = 0.8
STAGES = ("inputs", "transform", "schema", "checks", "profile", "write", "release")


def quanta_build(mesh: Path, fresh: bool = True) -> Run:
    """A run building the mesh's only product; keeps the run's stage times.

    ``fresh`` wipes the mesh's storage first, so the build is a first build; otherwise it
    is a rebuild on top of the previous release.
    """

    def run() -> Sample:
        if fresh:
            shutil.rmtree(mesh / ".quanta", ignore_errors=True)
        with stopwatch() as t:
            [result] = MeshContext(mesh).build()
        if not result.ok:
            raise RuntimeError(f"build failed: {result.error and result.error.render()}")
        stages = dict(result.run.stages)
        return Sample(t[0], {"stages": stages, "rows": dict(result.run.rows),
                             "unstaged": round(t[0] - sum(stages.values()), 4)})

    return run


def csv_baseline(csv: Path, out: Path) -> Run:
    def run() -> Sample:
        out.unlink(missing_ok=True)
        with stopwatch() as t:
            con = duckdb.connect(":memory:")
            con.execute(f"COPY (SELECT * FROM read_csv('{csv}')) TO '{out}' (FORMAT parquet)")
            con.close()
        return Sample(t[0])

    return run


def read_sqlite(db: Path) -> pa.Table:
    with dbapi.connect(f"file:{db}?mode=ro") as con, con.cursor() as cur:
        cur.execute("SELECT * FROM plays")
        return cur.fetch_arrow_table()


def sqlite_baseline(db: Path, out: Path) -> Run:
    def run() -> Sample:
        out.unlink(missing_ok=True)
        with stopwatch() as total:
            with stopwatch() as read:
                data = read_sqlite(db)
            con = duckdb.connect(":memory:")
            con.register("data", data)
            con.execute(f"COPY (SELECT * FROM data) TO '{out}' (FORMAT parquet)")
            con.close()
        return Sample(total[0], {"read": round(read[0], 4),
                                 "copy": round(total[0] - read[0], 4)})

    return run


def _compare(name: str, mesh: Path, rebuild_mesh: Path, baseline: Run, settings: Settings,
             rows: int) -> list[Row]:
    """First builds and rebuilds of ``mesh``'s product, side by side with ``baseline``."""
    quanta_build(rebuild_mesh, fresh=True)()  # so every timed rebuild has a previous release
    samples = interleave({"quanta": quanta_build(mesh), "baseline": baseline,
                          "rebuild": quanta_build(rebuild_mesh, fresh=False)}, settings.repeats)
    q, b, r = (median(samples[k]) for k in ("quanta", "baseline", "rebuild"))
    typical = median_sample(samples["quanta"])
    settings.log(f"{name}: quanta {q:.2f}s, rebuild {r:.2f}s, baseline {b:.2f}s, "
                 f"stages {typical.details['stages']}")
    first = Row(
        workload=name, quanta_s=q, baseline_s=b, ratio=b / q, target=f">= {TARGET}",
        status=at_least(b / q, TARGET), note=_stage_note(typical),
        details={
            "rows": rows, "quanta": spread(samples["quanta"]),
            "baseline": spread(samples["baseline"]),
            "quanta_rows_per_s": round(rows / q), "baseline_rows_per_s": round(rows / b),
            "stages_of_median_run": typical.details["stages"],
            "unstaged_s": typical.details["unstaged"],
            "stages_median": _stage_medians(samples["quanta"]),
            "baseline_parts_of_median_run": median_sample(samples["baseline"]).details,
        },
    )
    again = median_sample(samples["rebuild"])
    rebuild = Row(
        workload=f"  {name.split(' ')[1]} rebuild (same input)", quanta_s=r, baseline_s=b,
        ratio=b / r, target="info", status="INFO", note=_stage_note(again),
        details={"rows": rows, "quanta": spread(samples["rebuild"]),
                 "stages_of_median_run": again.details["stages"],
                 "stages_median": _stage_medians(samples["rebuild"])},
    )
    return [first, rebuild]


def _stage_medians(samples: list[Sample]) -> dict[str, float]:
    return {stage: round(median([Sample(s.details["stages"].get(stage, 0.0)) for s in samples]), 4)
            for stage in STAGES}


def _stage_note(sample: Sample) -> str:
    stages: dict[str, float] = sample.details["stages"]
    top = sorted(stages.items(), key=lambda kv: -kv[1])[:4]
    return "stages: " + ", ".join(f"{k} {v:.2f}" for k, v in top)


def run(settings: Settings) -> list[Row]:
    rows = settings.rows
    with tempfile.TemporaryDirectory(prefix="quanta-bench-ingest-") as tmp:
        root = Path(tmp)
        settings.log(f"generating {rows:,} play events")
        table = play_events(rows)
        db = root / "sources" / "plays.db"
        csv = root / "sources" / "plays.csv"
        db.parent.mkdir()
        write_sqlite(db, table)
        write_csv(csv, table)
        del table
        results: list[Row] = []
        for kind, input_yaml, baseline in (
            ("sqlite", f"{{name: raw, type: sqlite, path: '{db}', table: plays}}",
             sqlite_baseline(db, root / "sqlite.parquet")),
            ("csv", f"{{name: raw, type: file, path: '{csv}'}}",
             csv_baseline(csv, root / "csv.parquet")),
        ):
            mesh, rebuild_mesh = root / f"{kind}_mesh", root / f"{kind}_rebuild_mesh"
            plays_mesh(mesh, input_yaml)
            plays_mesh(rebuild_mesh, input_yaml)
            results += _compare(f"ingest {kind} {rows:,} rows", mesh, rebuild_mesh, baseline,
                                settings, rows)
    return results
