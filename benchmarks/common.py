"""Shared benchmark machinery: interleaved timing, medians, result rows and the report table.

The machine the benchmarks run on is assumed to be small and noisy, so every comparison runs
the quanta workload and its plain baseline side by side in one process, alternating which
goes first, several times; medians are compared, and the table reports ratios.
"""

from __future__ import annotations

import gc
import json
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Status = Literal["PASS", "MISS", "INFO", "SKIP", "CRASH"]


@dataclass
class Sample:
    """One timed run: its seconds and anything worth keeping about it (stages, rows)."""

    seconds: float
    details: dict[str, Any] = field(default_factory=dict)


Run = Callable[[], Sample]


@contextmanager
def stopwatch() -> Iterator[list[float]]:
    """``with stopwatch() as t: ...`` then ``t[0]`` holds the elapsed seconds."""
    elapsed: list[float] = []
    start = time.perf_counter()
    try:
        yield elapsed
    finally:
        elapsed.append(time.perf_counter() - start)


def timed(function: Callable[[], object]) -> Sample:
    """Time one call of ``function``."""
    with stopwatch() as t:
        function()
    return Sample(t[0])


def interleave(runs: dict[str, Run], repeats: int, warmup: bool = False
               ) -> dict[str, list[Sample]]:
    """Run each of ``runs`` ``repeats`` times, round by round, rotating who goes first.

    Rotating the order spreads slow phases of a noisy machine over all contenders instead
    of one. With ``warmup`` a first untimed round runs before the measured ones.
    """
    names = list(runs)
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    if warmup:
        for name in names:
            runs[name]()
    for round_no in range(repeats):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            gc.collect()
            samples[name].append(runs[name]())
    return samples


def median(samples: list[Sample]) -> float:
    return statistics.median(s.seconds for s in samples)


def median_sample(samples: list[Sample]) -> Sample:
    """The sample whose time is the (lower) median, to show its details."""
    ordered = sorted(samples, key=lambda s: s.seconds)
    return ordered[(len(ordered) - 1) // 2]


def spread(samples: list[Sample]) -> dict[str, float]:
    """Min, median and max seconds, rounded, for the JSON report."""
    times = [s.seconds for s in samples]
    return {"min": round(min(times), 4), "median": round(statistics.median(times), 4),
            "max": round(max(times), 4), "n": len(times)}


@dataclass
class Row:
    """One line of the report table."""

    workload: str
    quanta_s: float | None
    baseline_s: float | None
    ratio: float | None
    target: str
    status: Status
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def at_least(ratio: float, floor: float) -> Status:
    return "PASS" if ratio >= floor else "MISS"


def at_most(seconds: float, ceiling: float) -> Status:
    return "PASS" if seconds < ceiling else "MISS"


def within(ratio: float, low: float, high: float) -> Status:
    return "PASS" if low <= ratio <= high else "MISS"


def _cell(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def render_table(rows: list[Row]) -> str:
    """A plain-text table: workload, quanta s, baseline s, ratio, target, status, note."""
    header = ("workload", "quanta s", "baseline s", "ratio", "target", "status", "note")
    body = [(r.workload, _cell(r.quanta_s), _cell(r.baseline_s), _cell(r.ratio, 2), r.target,
             r.status, r.note) for r in rows]
    widths = [max(len(str(line[i])) for line in [header, *body]) for i in range(len(header))]
    numeric = {1, 2, 3}

    def line(cells: tuple[str, ...]) -> str:
        parts = [str(c).rjust(w) if i in numeric else str(c).ljust(w)
                 for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(b) for b in body)])


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")


def row_dict(row: Row) -> dict[str, Any]:
    return asdict(row)


@dataclass
class Settings:
    """Sizes and repeat counts for one benchmark run."""

    quick: bool
    rows: int
    events: int
    repeats: int
    verbose: bool = True

    def log(self, message: str) -> None:
        if self.verbose:
            print(f"  · {message}", flush=True)
