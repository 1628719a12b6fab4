"""Where a build's time goes, statement by statement: ``python -m benchmarks.profile_build``.

Builds the ingest workload's product (from SQLite or CSV) and prints every DuckDB statement
and storage call that took more than a few milliseconds, grouped under the build stage it
ran in. Wraps quanta's engine session and storage functions for the one run; nothing in
src/ changes. ``--cprofile`` prints the hottest Python functions instead.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import io
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.data import play_events, plays_mesh, write_csv, write_sqlite
from quanta.context import MeshContext

Event = tuple[float, str, str]
_SESSION_METHODS = ("load_table", "load_query", "execute", "scalar", "rows", "table", "reader")
_MODULE_FUNCTIONS = {
    "quanta.storage.products": ("write_deltalake", "sha256_file", "_add_actions"),
    "quanta.inputs.databases": ("_sqlite_arrow", "_sqlite_tables"),
}


def _timed(events: list[Event], label: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            text = next((a for a in args if isinstance(a, str)), "")
            events.append((time.perf_counter() - start, label, " ".join(text.split())))

    return wrapper


@contextmanager
def traced(events: list[Event]) -> Iterator[None]:
    """Record the time of every engine statement and storage call made meanwhile."""
    import importlib

    from quanta.engine.duckdb import DuckDBSession

    saved: list[tuple[object, str, object]] = []
    targets: list[tuple[object, str]] = [(DuckDBSession, m) for m in _SESSION_METHODS]
    for module_name, names in _MODULE_FUNCTIONS.items():
        module = importlib.import_module(module_name)
        targets += [(module, name) for name in names]
    for owner, name in targets:
        original = getattr(owner, name, None)
        if callable(original):
            saved.append((owner, name, original))
            setattr(owner, name, _timed(events, name, original))
    builder = importlib.import_module("quanta.build.runner").Builder
    stage = getattr(builder, "_stage", None)
    if callable(stage):
        saved.append((builder, "_stage", stage))

        @contextmanager
        def marked(self: Any, key: str, name: str, stages: dict[str, float]) -> Iterator[None]:
            events.append((-1.0, "stage", name))
            with stage(self, key, name, stages):
                yield

        builder._stage = marked
    try:
        yield
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)


def make_mesh(root: Path, source: str, rows: int) -> Path:
    table = play_events(rows)
    if source == "sqlite":
        folder = plays_mesh(root, "{name: raw, type: sqlite, path: plays.db, table: plays}")
        write_sqlite(folder / "plays.db", table)
    else:
        folder = plays_mesh(root, "{name: raw, type: file, path: plays.csv}")
        write_csv(folder / "plays.csv", table)
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_build")
    parser.add_argument("--source", choices=("sqlite", "csv"), default="csv")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rebuild", action="store_true",
                        help="profile a rebuild on top of a previous release")
    parser.add_argument("--min-ms", type=float, default=5.0, help="hide faster calls")
    parser.add_argument("--cprofile", action="store_true", help="show hot Python functions")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="quanta-profile-") as tmp:
        mesh = make_mesh(Path(tmp), args.source, args.rows)
        MeshContext(mesh).build()  # warm-up (imports, caches); also the previous release
        if not args.rebuild:
            shutil.rmtree(mesh / ".quanta")
        events: list[Event] = []
        profiler = cProfile.Profile() if args.cprofile else None
        start = time.perf_counter()
        with traced(events):
            if profiler:
                profiler.enable()
            [result] = MeshContext(mesh).build()
            if profiler:
                profiler.disable()
        total = time.perf_counter() - start
    if not result.ok:
        print(f"build failed: {result.error and result.error.render()}", file=sys.stderr)
        return 1
    print(f"{args.source}, {args.rows:,} rows, {'rebuild' if args.rebuild else 'first build'}: "
          f"{total:.3f}s")
    print("stages: " + ", ".join(f"{k} {v:.3f}" for k, v in result.run.stages.items()))
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        print(out.getvalue())
        return 0
    print(f"\ncalls over {args.min_ms:g} ms by stage (a nested call is listed before its caller):")
    for seconds, label, text in events:
        if label == "stage":
            print(f"[{text}] {result.run.stages.get(text, 0.0):.3f}s")
        elif seconds * 1000 >= args.min_ms:
            print(f"{seconds:8.3f}s  {label:<15} {text[:110]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
