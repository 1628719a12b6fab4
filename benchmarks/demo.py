"""Demo: generate the Daff Inc. demo mesh and build every product; target < 60 s in total.

``quanta.demo.mesh.create_demo(folder, events)`` writes the specs and the generated sources,
then ``MeshContext(folder).build()`` builds all products. Generation and build are timed
separately, and each product's build time comes from its run record. There is no plain
baseline: the target is absolute. Skipped (not failed) when the demo template is missing.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

from benchmarks.common import Row, Sample, Settings, at_most, median_sample, spread, stopwatch
from quanta.context import MeshContext
from quanta.demo.mesh import create_demo, template_folder
from quanta.errors import QuantaError

TARGET_S = 60.0


def template_missing() -> str | None:
    """Why the demo cannot run, or None when its template is there."""
    try:
        template_folder()
    except QuantaError as exc:
        return exc.message
    return None


def one_run(events: int) -> Sample:
    with tempfile.TemporaryDirectory(prefix="quanta-bench-demo-") as tmp:
        folder = Path(tmp) / "daff"
        with stopwatch() as generate:
            create_demo(folder, events=events)
        with stopwatch() as build:
            results = MeshContext(folder).build()
    failed = [r for r in results if not r.ok]
    if failed:
        raise RuntimeError("demo build failed: " + "; ".join(
            f"{r.product}: {r.error and r.error.render()}" for r in failed))
    products = {r.product: {"seconds": round(r.run.seconds, 4), "stages": dict(r.run.stages),
                            "rows": dict(r.run.rows)} for r in results}
    return Sample(generate[0] + build[0], {"generate": generate[0], "build": build[0],
                                            "products": products})


def run(settings: Settings) -> list[Row]:
    events = settings.events
    missing = template_missing()
    if missing:
        return [Row(f"demo {events:,} events", None, None, None, f"< {TARGET_S:.0f} s", "SKIP",
                    note="skipped: demo template missing", details={"reason": missing})]
    repeats = settings.repeats
    samples = []
    for number in range(repeats):
        settings.log(f"demo run {number + 1}/{repeats} with {events:,} events")
        samples.append(one_run(events))
    total = statistics.median(s.seconds for s in samples)
    generate = statistics.median(s.details["generate"] for s in samples)
    build = statistics.median(s.details["build"] for s in samples)
    typical = median_sample(samples)
    products: dict[str, dict[str, object]] = typical.details["products"]
    rows = [Row(
        workload=f"demo {events:,} events (generate + build)", quanta_s=total, baseline_s=None,
        ratio=None, target=f"< {TARGET_S:.0f} s", status=at_most(total, TARGET_S),
        note=f"generate {generate:.1f}s, build {build:.1f}s (median of {repeats})",
        details={"events": events, "total": spread(samples), "generate_s": round(generate, 4),
                 "build_s": round(build, 4), "products_of_median_run": products},
    )]
    for key, info in sorted(products.items(), key=lambda kv: -float(str(kv[1]["seconds"]))):
        stages = info["stages"]
        assert isinstance(stages, dict)
        top = sorted(stages.items(), key=lambda kv: -kv[1])[:3]
        rows.append(Row(
            workload=f"  demo build {key}", quanta_s=float(str(info["seconds"])),
            baseline_s=None, ratio=None, target="info", status="INFO",
            note=", ".join(f"{k} {v:.2f}" for k, v in top), details=info,
        ))
    return rows
