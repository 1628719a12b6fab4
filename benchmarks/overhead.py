"""No-op build overhead: what building a trivial product costs beyond the data work.

The product is tests/fixtures/tiny's shop.orders (a 3-row CSV, three quality checks).

- warm: in this process, modules imported, a fresh MeshContext per build; target < 0.5 s.
  The baseline column is plain DuckDB copying the same CSV to Parquet (for scale only).
- cold (information only): the ``quanta build shop.orders`` console script as a subprocess;
  its baseline is a fresh ``python -c`` that imports duckdb and copies the CSV to Parquet.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb

from benchmarks.common import (
    Row,
    Run,
    Sample,
    Settings,
    at_most,
    interleave,
    median,
    median_sample,
    spread,
    stopwatch,
)
from quanta.context import MeshContext

TARGET_S = 0.5
FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "tiny"


def tiny_mesh(root: Path) -> Path:
    """A mesh holding only shop.orders of the tiny fixture."""
    (root / "domains" / "shop").mkdir(parents=True)
    shutil.copy(FIXTURE / "mesh.yaml", root / "mesh.yaml")
    shutil.copytree(FIXTURE / "domains" / "shop" / "orders", root / "domains" / "shop" / "orders")
    return root


def warm_build(mesh: Path) -> Run:
    def run() -> Sample:
        with stopwatch() as t:
            [result] = MeshContext(mesh).build()
        if not result.ok:
            raise RuntimeError(f"build failed: {result.error and result.error.render()}")
        return Sample(t[0], {"stages": dict(result.run.stages)})

    return run


def copy_sql(csv: Path, out: Path) -> str:
    return f"COPY (SELECT * FROM read_csv('{csv}')) TO '{out}' (FORMAT parquet)"


def warm_baseline(csv: Path, out: Path) -> Run:
    def run() -> Sample:
        with stopwatch() as t:
            con = duckdb.connect(":memory:")
            con.execute(copy_sql(csv, out))
            con.close()
        return Sample(t[0])

    return run


def quanta_script() -> Path:
    """The ``quanta`` console script next to this interpreter."""
    return Path(sys.executable).parent / "quanta"


def subprocess_run(command: list[str]) -> Run:
    def run() -> Sample:
        with stopwatch() as t:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{command[0]} exited {done.returncode}: {done.stderr.strip()}")
        return Sample(t[0])

    return run


def run(settings: Settings) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="quanta-bench-overhead-") as tmp:
        mesh = tiny_mesh(Path(tmp) / "mesh")
        csv = mesh / "domains" / "shop" / "orders" / "orders.csv"
        out = Path(tmp) / "orders.parquet"
        warm_repeats = settings.repeats * 3
        samples = interleave({"quanta": warm_build(mesh), "baseline": warm_baseline(csv, out)},
                             warm_repeats, warmup=True)
        q, b = median(samples["quanta"]), median(samples["baseline"])
        typical = median_sample(samples["quanta"])
        settings.log(f"warm build {q:.3f}s (baseline {b:.3f}s), stages {typical.details}")
        stages: dict[str, float] = typical.details["stages"]
        unstaged = q - sum(stages.values())
        warm = Row(
            workload="no-op build, warm (3-row csv)", quanta_s=q, baseline_s=b, ratio=b / q,
            target=f"< {TARGET_S} s", status=at_most(q, TARGET_S),
            note=f"median of {warm_repeats}; outside stages {unstaged:.3f}s",
            details={"quanta": spread(samples["quanta"]), "baseline": spread(samples["baseline"]),
                     "stages_of_median_run": stages, "outside_stages_s": round(unstaged, 4)},
        )

        script = quanta_script()
        if not script.is_file():
            return [warm, Row("no-op build, cold `quanta build`", None, None, None, "info",
                              "SKIP", note=f"{script} not found")]
        cold_runs = {
            "quanta": subprocess_run([str(script), "build", "shop.orders", "--mesh", str(mesh)]),
            "baseline": subprocess_run([sys.executable, "-c",
                                        "import duckdb; duckdb.connect().execute("
                                        f"{copy_sql(csv, out)!r})"]),
        }
        cold_samples = interleave(cold_runs, settings.repeats)
        cq, cb = median(cold_samples["quanta"]), median(cold_samples["baseline"])
        settings.log(f"cold cli {cq:.3f}s (python + duckdb {cb:.3f}s)")
        cold = Row(
            workload="no-op build, cold `quanta build`", quanta_s=cq, baseline_s=cb, ratio=cb / cq,
            target="info", status="INFO",
            note="subprocess; baseline: python -c 'import duckdb; COPY'",
            details={"quanta": spread(cold_samples["quanta"]),
                     "baseline": spread(cold_samples["baseline"])},
        )
    return [warm, cold]
