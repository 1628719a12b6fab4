"""Per-file column bounds, read from Parquet footers, for skipping files a query cannot match.

Data files never change once released, so a file's bounds are read once and kept, keyed by
path, size and modification time like the integrity check.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow.parquet as pq

Bound = str | int
Bounds = dict[str, tuple[Bound, Bound]]

_cache: dict[tuple[str, int, int], Bounds] = {}
_lock = threading.Lock()


def column_bounds(path: Path) -> Bounds:
    """Lowest and highest value of each string or integer column of a Parquet file.

    A column is left out when any row group lacks statistics for it, so a missing entry
    means "unknown", never "empty". Truncated string statistics are still true bounds.
    """
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _lock:
        cached = _cache.get(key)
    if cached is not None:
        return cached
    bounds = _read_bounds(path)
    with _lock:
        _cache[key] = bounds
    return bounds


def _read_bounds(path: Path) -> Bounds:
    metadata = pq.ParquetFile(path).metadata
    found: dict[str, tuple[Bound, Bound]] = {}
    unknown: set[str] = set()
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        if row_group.num_rows == 0:
            continue
        for index in range(row_group.num_columns):
            chunk = row_group.column(index)
            name = chunk.path_in_schema
            if name in unknown:
                continue
            stats = chunk.statistics
            low = high = None
            if stats is not None and stats.has_min_max:
                low, high = stats.min, stats.max
            if not _comparable(low) or not _comparable(high) or type(low) is not type(high):
                unknown.add(name)
                found.pop(name, None)
                continue
            assert low is not None and high is not None
            if name in found:
                old_low, old_high = found[name]
                if type(old_low) is not type(low):
                    unknown.add(name)
                    found.pop(name)
                    continue
                low, high = min(old_low, low), max(old_high, high)
            found[name] = (low, high)
    return found


def _comparable(value: object) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool)


def may_overlap(file: Bounds, wanted: dict[str, tuple[Bound, Bound] | None]) -> bool:
    """False only when a file's bounds prove that none of its rows has every column within
    ``wanted`` (None: that column's range is unknown)."""
    for column, bounds in wanted.items():
        have = file.get(column)
        if bounds is not None and have is not None and _disjoint(bounds, have):
            return False
    return True


def _disjoint(one: tuple[Bound, Bound], other: tuple[Bound, Bound]) -> bool:
    (low, high), (other_low, other_high) = one, other
    if all(isinstance(v, str) for v in (*one, *other)):
        return str(high) < str(other_low) or str(low) > str(other_high)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in (*one, *other)):
        return int(high) < int(other_low) or int(low) > int(other_high)
    return False  # values of different kinds: nothing is proven
