"""Ingest: build a source-aligned product from a big SQLite table and from a big CSV file.

quanta: ``MeshContext(mesh).build()`` of a one-product mesh whose transform is a plain SELECT
of six play-event columns, with not_null and unique checks (storage wiped before each run,
so every run is a first build).

Baselines (plain DuckDB copying the same rows to Parquet):

- CSV: a fresh DuckDB connection running
  ``COPY (SELECT * FROM read_csv('file')) TO 'out.parquet' (FORMAT parquet)``;
- SQLite: DuckDB cannot read SQLite here (no extension downloads), so the table is read into
  Arrow with adbc_driver_sqlite (``fetch_arrow_table``) and DuckDB COPYs that Arrow table.

Ratio = baseline seconds / quanta seconds; the target is at least 0.8.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
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


def quanta_build(mesh: Path) -> Run:
    """A run building the mesh's only product from scratch; keeps the run's stage times."""

    def run() -> Sample:
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


def _compare(name: str, quanta: Run, baseline: Run, settings: Settings, rows: int,
             note: Callable[[Sample], str]) -> Row:
    samples = interleave({"quanta": quanta, "baseline": baseline}, settings.repeats)
    q, b = median(samples["quanta"]), median(samples["baseline"])
    ratio = b / q
    typical = median_sample(samples["quanta"])
    settings.log(f"{name}: quanta {q:.2f}s, baseline {b:.2f}s, stages {typical.details['stages']}")
    return Row(
        workload=name, quanta_s=q, baseline_s=b, ratio=ratio, target=f">= {TARGET}",
        status=at_least(ratio, TARGET), note=note(typical),
        details={
            "rows": rows, "quanta": spread(samples["quanta"]),
            "baseline": spread(samples["baseline"]),
            "quanta_rows_per_s": round(rows / q), "baseline_rows_per_s": round(rows / b),
            "stages_of_median_run": typical.details["stages"],
            "unstaged_s": typical.details["unstaged"],
            "stages_median": {
                stage: round(median([Sample(s.details["stages"].get(stage, 0.0))
                                     for s in samples["quanta"]]), 4)
                for stage in STAGES
            },
            "baseline_parts_of_median_run": median_sample(samples["baseline"]).details,
        },
    )


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

        sqlite_mesh = root / "sqlite_mesh"
        folder = plays_mesh(sqlite_mesh, "{name: raw, type: sqlite, path: plays.db, table: plays}")
        write_sqlite(folder / "plays.db", table)

        csv_mesh = root / "csv_mesh"
        folder = plays_mesh(csv_mesh, "{name: raw, type: file, path: plays.csv}")
        write_csv(folder / "plays.csv", table)
        del table

        results = [
            _compare(f"ingest sqlite {rows:,} rows", quanta_build(sqlite_mesh),
                     sqlite_baseline(sqlite_mesh / "domains/bench/plays/plays.db",
                                     root / "sqlite.parquet"),
                     settings, rows, _stage_note),
            _compare(f"ingest csv {rows:,} rows", quanta_build(csv_mesh),
                     csv_baseline(csv_mesh / "domains/bench/plays/plays.csv",
                                  root / "csv.parquet"),
                     settings, rows, _stage_note),
        ]
    return results
