"""``python -m benchmarks [--quick] [--only NAME ...] [--rows N] [--events N] [--repeats N]``.

Runs each workload next to its plain baseline, prints a table of medians and ratios, and
writes the results as JSON to benchmarks/results/<UTC timestamp>.json. Missing a target is
reported, not fatal; the exit code is 1 only when a workload crashes.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from benchmarks import (
    catalog,
    demo,
    incremental,
    ingest,
    lineage,
    overhead,
    policies,
    runtime,
    serving,
    slo,
    time_travel,
)
from benchmarks.common import Row, Settings, render_table, row_dict, write_json

WORKLOADS: dict[str, Callable[[Settings], list[Row]]] = {
    "ingest": ingest.run,
    "overhead": overhead.run,
    "demo": demo.run,
    "time_travel": time_travel.run,
    "serving": serving.run,
    "policies": policies.run,
    "lineage": lineage.run,
    "catalog": catalog.run,
    "slo": slo.run,
    "runtime": runtime.run,
    "incremental": incremental.run,
}
RESULTS = Path(__file__).resolve().parent / "results"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="quanta speed benchmarks: each workload next to a plain baseline.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="small sizes: a smoke check in under a minute")
    parser.add_argument("--only", nargs="+", choices=list(WORKLOADS), metavar="NAME",
                        help=f"run only these workloads ({', '.join(WORKLOADS)})")
    parser.add_argument("--rows", type=int, default=None,
                        help="rows for ingest and time_travel (default 1,000,000; quick 50,000) "
                        "and serving and incremental (default 10,000,000; quick 1,000,000)")
    parser.add_argument("--events", type=int, default=None,
                        help="demo play events (default 1,000,000; quick 50,000)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="measured repeats per contender (default 3)")
    parser.add_argument("--no-json", action="store_true", help="do not write a results file")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    for name in ("rows", "events", "repeats"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be positive")
    return args


def environment() -> dict[str, Any]:
    packages: dict[str, str | None] = {}
    for name in ("quanta", "duckdb", "pyarrow", "deltalake", "adbc-driver-sqlite"):
        try:
            packages[name] = version(name)
        except Exception:
            packages[name] = None
    return {"python": sys.version.split()[0], "platform": platform.platform(),
            "cpus": os.cpu_count(), "packages": packages}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    quick = bool(args.quick)
    settings = Settings(
        quick=quick,
        rows=args.rows or (50_000 if quick else 1_000_000),
        events=args.events or (50_000 if quick else 1_000_000),
        repeats=args.repeats or 3,
        verbose=not args.quiet,
    )
    serving.ROWS = args.rows  # serving's own default is larger: 10M rows (quick 1M)
    incremental.ROWS = args.rows  # so is incremental's
    names = args.only or list(WORKLOADS)
    started = datetime.now(UTC)
    rows: list[Row] = []
    crashes: dict[str, str] = {}
    timings: dict[str, float] = {}
    for name in names:
        print(f"[{name}]", flush=True)
        start = time.perf_counter()
        try:
            rows += WORKLOADS[name](settings)
        except Exception:
            crashes[name] = traceback.format_exc()
            print(crashes[name], file=sys.stderr, flush=True)
            rows.append(Row(name, None, None, None, "-", "CRASH",
                            note=crashes[name].strip().splitlines()[-1][:100]))
        timings[name] = round(time.perf_counter() - start, 2)

    print()
    print(render_table(rows))
    total = sum(timings.values())
    misses = sum(r.status == "MISS" for r in rows)
    print(f"\n{len(rows)} rows, {misses} target(s) missed, {len(crashes)} crash(es); "
          f"{total:.1f}s in all" + (" (quick)" if quick else ""))

    if not args.no_json:
        stamp = started.strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS / f"{stamp}.json"
        write_json(path, {
            "started_at": started.isoformat(), "argv": sys.argv[1:],
            "settings": {"quick": quick, "rows": settings.rows, "events": settings.events,
                         "repeats": settings.repeats, "workloads": names},
            "environment": environment(), "seconds": timings,
            "rows": [row_dict(r) for r in rows], "crashes": crashes,
        })
        print(f"results: {path}")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
