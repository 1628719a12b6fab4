"""Release history: which releases a product keeps, and tombstones of those that expired.

A product's history rule (``history: {keep: 10, max_age: 90d}`` in its spec, else the mesh's
default) says which old releases may go; ``quanta vacuum`` expires them. An expired release
leaves a tombstone, ``releases/expired/NNNNNN.json``: its number, interface version, commit
time, when and by which vacuum it expired, and the names of its data files (no data value,
so erasure never has to look in it). The tombstone is written before the manifest is removed,
so a reader sees a release as live or as expired, never as missing; a read of it is answered
with ``ReleaseExpiredError`` naming the oldest release still available.

This module is the infrastructure plane's part: tombstones, the rule as plain values and the
pure choice of what expires. Which releases consumers pin, and vacuuming, live in
``quanta.control.history``.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path

from pydantic import Field, ValidationError

from quanta.errors import NotFoundError, StorageError
from quanta.storage.files import create_atomic, write_atomic
from quanta.storage.manifest import DataFile, Record, Release

EXPIRED_FOLDER = "expired"
_TOMBSTONE = re.compile(r"^(\d{6,})\.json$")
# Folder listings are cached by modification time; a listing younger than this is read again,
# because a file system's clock may not move between two changes made in quick succession.
_SETTLE_NS = 2_000_000_000
_numbers: dict[str, tuple[int, frozenset[int]]] = {}


class ReleaseExpiredError(NotFoundError):
    """A read of a release that expired under the product's history rule (HTTP 404, code
    ``release_expired``); the message names the oldest release still available."""

    code = "release_expired"


class ExpiredRelease(Record):
    """The tombstone of an expired release: what it was, when it went, which files it held."""

    product: str
    release: int
    interface_version: str
    committed_at: datetime
    expired_at: datetime
    vacuum: str
    rule: str
    files: dict[str, list[DataFile]] = Field(default_factory=dict)
    reclaimed_at: datetime | None = None

    @property
    def bytes(self) -> int:
        return sum(f.size for files in self.files.values() for f in files)


@dataclass(frozen=True)
class HistoryRule:
    """How many old releases a product keeps: the ``keep`` newest and those superseded less
    than ``max_age`` ago (with both, a release goes only when neither keeps it); neither set:
    every release is kept."""

    keep: int | None = None
    max_age: timedelta | None = None
    text: str = "every release is kept"

    @property
    def keeps_all(self) -> bool:
        return self.keep is None and self.max_age is None


@dataclass
class HistoryPlan:
    """Which live releases stay (with why) and which expire, newest first."""

    kept: dict[int, str] = field(default_factory=dict)
    expired: list[int] = field(default_factory=list)


def plan(releases: list[Release], tombstones: list[ExpiredRelease], rule: HistoryRule,
         pins: dict[int, list[str]], now: datetime) -> HistoryPlan:
    """Which of ``releases`` (live, oldest first) expire under ``rule`` at ``now``.

    Always kept: the latest release, releases in ``pins`` (number → consumers pinning it),
    and the newest release of each major interface version (``as_of vN`` reads it). A
    release's age counts from when it was superseded (the next release's commit), so an
    ``as_of`` timestamp within ``max_age`` of now always finds its release.
    """
    result = HistoryPlan()
    if not releases:
        return result
    commits = {t.release: t.committed_at for t in tombstones}
    commits |= {r.release: r.committed_at for r in releases}
    order = sorted(commits)
    superseded = {n: commits[after] for n, after in pairwise(order)}
    newest_of_major = {_major(r.interface_version): r.release for r in releases}
    latest = releases[-1].release
    cutoff = now - rule.max_age if rule.max_age is not None else None
    for rank, release in enumerate(reversed(releases)):
        number, major = release.release, _major(release.interface_version)
        reasons = []
        if number == latest:
            reasons.append("the latest")
        if pins.get(number):
            reasons.append(f"pinned by {', '.join(sorted(pins[number]))}")
        if number != latest and newest_of_major.get(major) == number:
            reasons.append(f"the newest of v{major}")
        if rule.keeps_all:
            reasons.append(rule.text)
        if rule.keep is not None and rank < rule.keep:
            reasons.append(f"one of the {rule.keep} newest")
        if cutoff is not None and number in superseded and superseded[number] > cutoff:
            reasons.append("superseded within max_age")
        if reasons:
            result.kept[number] = "; ".join(reasons)
        else:
            result.expired.append(number)
    return result


def _major(version: str) -> int:
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


# --- tombstones on disk ------------------------------------------------------------------------


def expired_numbers(folder: Path) -> frozenset[int]:
    """Numbers of the releases with a tombstone in ``folder`` (``releases/expired``)."""
    try:
        stamp = folder.stat().st_mtime_ns
    except FileNotFoundError:
        return frozenset()
    key = str(folder)
    cached = _numbers.get(key)
    if cached and cached[0] == stamp:
        return cached[1]
    found = frozenset(int(m.group(1)) for entry in folder.iterdir()
                      if (m := _TOMBSTONE.match(entry.name)))
    if time.time_ns() - stamp > _SETTLE_NS:
        _numbers[key] = (stamp, found)
    return found


def tombstone_file(folder: Path, number: int) -> Path:
    return folder / f"{number:06d}.json"


def read_tombstone(folder: Path, number: int) -> ExpiredRelease | None:
    """The tombstone of release ``number``, or None when it did not expire."""
    file = tombstone_file(folder, number)
    try:
        return ExpiredRelease.model_validate_json(file.read_bytes())
    except FileNotFoundError:
        return None
    except (ValidationError, OSError) as exc:
        raise StorageError(f"the tombstone {file} is unreadable: {exc}",
                           hint="restore it from a backup; the release's data may be gone",
                           code="tombstone_damaged") from None


def read_tombstones(folder: Path) -> list[ExpiredRelease]:
    """Every tombstone in ``folder``, oldest release first."""
    found = (read_tombstone(folder, n) for n in sorted(expired_numbers(folder)))
    return [t for t in found if t is not None]


def write_tombstone(folder: Path, tombstone: ExpiredRelease, replace: bool = False) -> None:
    """Record a release as expired (atomic; an existing tombstone stays unless ``replace``)."""
    data = tombstone.model_dump_json(indent=2).encode()
    file = tombstone_file(folder, tombstone.release)
    if replace:
        write_atomic(file, data)
    else:
        create_atomic(file, data)
    _numbers.pop(str(folder), None)


def expired_error(key: str, tombstone: ExpiredRelease, oldest: Release | None,
                  asked: str | None = None) -> ReleaseExpiredError:
    """The error a read of an expired release gets: when it expired and what is left."""
    when = tombstone.expired_at.strftime("%Y-%m-%d")
    what = f"{key} release {tombstone.release}"
    if asked:
        what = f"{key} at {asked} is release {tombstone.release}, which"
    left = (f"the oldest available is release {oldest.release} (committed "
            f"{oldest.committed_at:%Y-%m-%d %H:%M:%S} UTC)" if oldest else "no release is left")
    return ReleaseExpiredError(
        f"{what} expired on {when} under its release history rule ({tombstone.rule}); {left}",
        hint=(f"read release {oldest.release} or a later one; 'quanta versions {key}' lists "
              "them" if oldest else f"build it: quanta build {key}"))
