"""What storage records of a product: its releases (rows, quality, newest event) and its build
runs (durations, outcomes). Damaged records are skipped and named in ``warnings``, never
raised: observing a mesh must work on the mesh as it is."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from quanta.errors import QuantaError
from quanta.spec.models import ProductSpec
from quanta.storage import CheckResult, ProductStorage, Release, RunLog, RunRecord

# Run records are written once (rewritten only by erasure), so each file is parsed once per
# (size, mtime): a /metrics scrape every few seconds must not re-read thousands of files.
_parsed_runs: dict[str, tuple[tuple[int, int], RunRecord | str]] = {}


@dataclass(frozen=True)
class ReleaseFacts:
    """One release as observability needs it: when, how many rows, how good, how late."""

    release: int
    committed_at: datetime
    rows: dict[str, int]
    metrics: dict[str, float]
    checks: tuple[CheckResult, ...]
    newest_event: datetime | None

    @property
    def event_lag(self) -> timedelta | None:
        """Commit time minus the newest event time in the release (timeliness)."""
        return None if self.newest_event is None else self.committed_at - self.newest_event

    def failed_checks(self, dimension: str | None = None) -> list[CheckResult]:
        """Checks that did not pass (of one quality dimension, if given)."""
        return [c for c in self.checks if not c.passed
                and (dimension is None or c.dimension == dimension)]

    def to_dict(self) -> dict[str, Any]:
        lag = self.event_lag
        return {"release": self.release, "committed_at": self.committed_at.isoformat(),
                "rows": self.rows, "metrics": self.metrics,
                "failed_checks": [c.name for c in self.failed_checks()],
                "newest_event": self.newest_event.isoformat() if self.newest_event else None,
                "event_lag_seconds": None if lag is None else lag.total_seconds()}


@dataclass
class History:
    """A product's releases and runs, oldest first, and what could not be read."""

    product: str
    releases: list[ReleaseFacts] = field(default_factory=list)
    runs: list[RunRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def current_at(self, moment: datetime) -> ReleaseFacts | None:
        """The release being served at ``moment`` (None before the first)."""
        current = None
        for release in self.releases:
            if release.committed_at <= moment:
                current = release
        return current

    def served_since(self, since: datetime) -> list[ReleaseFacts]:
        """Releases served at some time from ``since`` on: the one current then, and every
        release committed after it."""
        first = self.current_at(since)
        later = [r for r in self.releases if r.committed_at > since]
        return ([first] if first else []) + later

    def failed_runs(self, start: datetime, end: datetime) -> list[RunRecord]:
        """Build attempts that failed between ``start`` and ``end``."""
        return [r for r in self.runs
                if r.outcome == "failed" and start <= r.started_at <= end]


def product_history(storage_root: Path, spec: ProductSpec) -> History:
    """Releases and runs of the product ``spec`` declares."""
    history = History(spec.key)
    storage = ProductStorage(storage_root, spec.key)
    for number in storage.release_numbers():
        try:
            release = storage.release(number)
        except QuantaError as exc:  # named without the storage path: the API shows it too
            history.warnings.append(f"{spec.key} release {number} skipped: its manifest is "
                                    f"unreadable ({exc.code}); 'quanta versions' may say more")
            continue
        history.releases.append(release_facts(release, spec))
    history.releases.sort(key=lambda r: r.committed_at)
    runs, problems = read_runs(storage_root, [spec.key])
    history.runs = runs.get(spec.key, [])
    history.warnings += problems
    return history


def release_facts(release: Release, spec: ProductSpec) -> ReleaseFacts:
    """The observable facts of ``release``; the event time is each port's declared
    ``event_time`` and its newest value the release profile's ``max``."""
    newest: datetime | None = None
    for port in spec.outputs:
        if not port.event_time:
            continue
        moment = event_moment(release.profile.get(port.name, {}).get(port.event_time, {})
                              .get("max"))
        if moment is not None and (newest is None or moment > newest):
            newest = moment
    return ReleaseFacts(
        release=release.release, committed_at=release.committed_at,
        rows={name: port.rows for name, port in release.ports.items()},
        metrics=dict(release.metrics), checks=tuple(release.checks), newest_event=newest)


def event_moment(value: object) -> datetime | None:
    """An event time as the profile stores it, as a UTC instant. Timestamps without a zone
    are UTC (as the build stores them); a date counts as its end, the moment all of that
    day's events can be known."""
    if not isinstance(value, str):
        return None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value) + timedelta(days=1),
                                    datetime.min.time(), UTC)
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def read_runs(storage_root: Path, products: Iterable[str] | None = None
              ) -> tuple[dict[str, list[RunRecord]], list[str]]:
    """Run records by product (of ``products`` only, if given), oldest first, and a warning
    for each record that could not be read."""
    folder = RunLog(storage_root).folder
    wanted = set(products) if products is not None else None
    found: dict[str, list[RunRecord]] = {}
    problems: list[str] = []
    if not folder.is_dir():
        return found, problems
    for file in sorted(folder.glob("*.json")):
        # run ids are '<time>-<product>-<random>': skip other products' files unread
        named = file.stem.partition("-")[2].rpartition("-")[0]
        if wanted is not None and named and named not in wanted:
            continue
        parsed = _run(file)
        if isinstance(parsed, str):
            problems.append(f"run record {file.name} skipped: {parsed}")
        elif wanted is None or parsed.product in wanted:
            found.setdefault(parsed.product, []).append(parsed)
    for runs in found.values():
        runs.sort(key=lambda r: r.started_at)
    return found, problems


def _run(file: Path) -> RunRecord | str:
    try:
        stat = file.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        cached = _parsed_runs.get(str(file))
        if cached and cached[0] == stamp:
            return cached[1]
        parsed: RunRecord | str
        try:
            parsed = RunRecord.model_validate_json(file.read_bytes())
        except ValidationError as exc:
            parsed = f"not a run record ({exc.error_count()} problem(s), first: " \
                     f"{exc.errors()[0]['msg']})"
        _parsed_runs[str(file)] = (stamp, parsed)
        return parsed
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
