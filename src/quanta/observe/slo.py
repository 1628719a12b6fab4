"""Service level objectives of products, evaluated from what the mesh recorded.

Each SLO a product declares (``slos:`` in dataproduct.yaml) is measured over a window
(default 30 days) on the unit that fits it, and held to a target share of that unit:

| SLO | unit | good when | target |
| --- | --- | --- | --- |
| freshness | time | the newest release is at most that old | objective |
| interval_of_change | intervals between releases | at most that long | objective |
| timeliness | releases served | commit time minus newest event time at most that | objective |
| completeness | releases served | its completeness metric at least that | objective |
| check_pass_rate | releases served | its share of passing checks at least that | objective |
| availability | reads of the product | not failed on the platform's side | declared |

The error budget is the bad share the target allows (1 - target); ``budget_left`` is the
part of it not yet spent (negative: overspent). Breaches list each bad stretch with its cause.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any, Literal

from quanta.errors import QuantaError
from quanta.observe.access import AccessLog, Read, read_access_log
from quanta.observe.history import History, ReleaseFacts, product_history
from quanta.spec.durations import parse_duration
from quanta.spec.mesh import Mesh, Product
from quanta.storage import RunRecord

DEFAULT_WINDOW = timedelta(days=30)
DEFAULT_OBJECTIVE = 0.99
AT_RISK_BELOW = 0.25  # budget left under a quarter: at risk
SLO_ORDER = ("freshness", "interval_of_change", "timeliness", "completeness",
             "check_pass_rate", "availability")
DURATION_SLOS = ("freshness", "interval_of_change", "timeliness")
# errors of the reader's own making: SQL naming a column, function or type that does not fit
CALLER_ERRORS = ("Binder Error", "Parser Error", "Catalog Error", "Conversion Error")
ERROR_WORDS = {"query_failed": "engine errors", "integrity_failed": "integrity failures (a data "
               "file differs from its release)", "stream_failed": "failures while streaming",
               "consent_unavailable": "consent source unavailable"}
EPSILON = 1e-9

Status = Literal["met", "at_risk", "breached", "unmeasured"]
Overall = Literal["met", "at_risk", "breached", "unmeasured", "none"]


@dataclass(frozen=True)
class Breach:
    """One bad stretch of an SLO and its cause."""

    cause: str
    start: datetime | None = None
    end: datetime | None = None
    release: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"cause": self.cause, "start": _iso(self.start), "end": _iso(self.end),
                "release": self.release}


@dataclass(frozen=True)
class SloResult:
    """One SLO of one product over the window: measured, attained, budget left."""

    product: str
    slo: str
    declared: str
    target: float
    unit: Literal["time", "intervals", "releases", "reads"]
    status: Status
    measured: float | None = None
    good: float = 0.0
    total: float = 0.0
    attainment: float | None = None
    budget_left: float | None = None
    note: str = ""
    breaches: tuple[Breach, ...] = ()

    @property
    def is_duration(self) -> bool:
        """Whether ``declared`` and ``measured`` are durations (seconds) or shares."""
        return self.slo in DURATION_SLOS

    def to_dict(self) -> dict[str, Any]:
        return {
            "slo": self.slo, "objective": self.declared, "target": self.target,
            "unit": self.unit, "measured": self.measured,
            "measured_unit": "seconds" if self.is_duration else "share",
            "good": self.good, "total": self.total, "attainment": self.attainment,
            "budget_left": self.budget_left, "status": self.status, "note": self.note,
            "breaches": [b.to_dict() for b in self.breaches],
        }


@dataclass
class ProductSlos:
    """Every SLO of one product, and the facts they were measured on."""

    product: str
    slos: list[SloResult]
    releases: list[ReleaseFacts]
    runs: list[RunRecord]
    reads: int
    warnings: list[str] = field(default_factory=list)

    @property
    def status(self) -> Overall:
        """The worst status of the product's measured SLOs; ``unmeasured`` when none could
        be measured yet, ``none`` when it declares no SLO."""
        if not self.slos:
            return "none"
        found = {s.status for s in self.slos}
        if "breached" in found:
            return "breached"
        if "at_risk" in found:
            return "at_risk"
        return "met" if "met" in found else "unmeasured"

    def breach_due(self, now: datetime) -> datetime | None:
        """When waiting alone will breach an SLO not breached yet: the moment freshness or
        interval of change (the SLOs that worsen with time while no release comes) falls
        below its target if nothing else changes; None when waiting breaches nothing.

        A prediction from the figures measured at ``now``, ignoring the window sliding on
        (which moves it by under 1% of the window), so that an index can tell, without
        evaluating again, that a product which stopped releasing is breaching its SLOs.
        """
        due: list[datetime] = []
        for result in self.slos:
            if result.status == "breached":
                continue
            if result.slo == "freshness" and result.measured is not None:
                due.append(now + _freshness_left(result))
            elif (result.slo == "interval_of_change" and self.releases
                  # the open interval counts once too long: is one more bad one too many?
                  and result.good / (result.total + 1) + EPSILON < result.target):
                latest = self.releases[-1].committed_at
                due.append(max(now, latest + parse_duration(result.declared)))
        return min(due, default=None)

    def to_dict(self) -> dict[str, Any]:
        outcomes: dict[str, int] = {}
        for run in self.runs:
            outcomes[run.outcome] = outcomes.get(run.outcome, 0) + 1
        seconds = [r.seconds for r in self.runs]
        return {
            "product": self.product, "slos": [s.to_dict() for s in self.slos],
            "releases": [r.to_dict() for r in self.releases],
            "runs": {"count": len(self.runs), "outcomes": outcomes,
                     "mean_seconds": round(sum(seconds) / len(seconds), 3) if seconds else None,
                     "max_seconds": round(max(seconds), 3) if seconds else None},
            "reads": self.reads, "warnings": self.warnings,
        }


@dataclass
class SloReport:
    """SLOs of some products of a mesh over one window."""

    generated_at: datetime
    window: timedelta
    objective: float
    products: list[ProductSlos]
    warnings: list[str] = field(default_factory=list)

    @property
    def since(self) -> datetime:
        return self.generated_at - self.window

    def breached(self) -> list[SloResult]:
        """Every SLO whose attainment is below its target."""
        return [s for p in self.products for s in p.slos if s.status == "breached"]

    def to_dict(self) -> dict[str, Any]:
        return {"generated_at": self.generated_at.isoformat(), "since": self.since.isoformat(),
                "window_seconds": self.window.total_seconds(), "objective": self.objective,
                "products": [p.to_dict() for p in self.products], "warnings": self.warnings}


def slo_report(mesh: Mesh, keys: list[str] | None = None, *, window: timedelta = DEFAULT_WINDOW,
               objective: float = DEFAULT_OBJECTIVE, now: datetime | None = None) -> SloReport:
    """Evaluate the SLOs of ``keys`` (default: every product) over ``window`` up to ``now``."""
    check_window(window)
    if not 0 < objective < 1:
        raise QuantaError(f"objective {objective:g} is not a share between 0 and 1",
                          hint="e.g. 0.99 (99%) or 0.995", code="objective_invalid")
    now = now or datetime.now(UTC)
    since = now - window
    products = [mesh.product(k) for k in keys] if keys else [
        mesh.products[k] for k in sorted(mesh.products)]
    wanted = [p.key for p in products]
    access = read_access_log(mesh.storage_root, since, wanted if keys else None)
    report = SloReport(now, window, objective, [], list(access.warnings))
    for product in products:
        history = product_history(mesh.storage_root, product.spec)
        found = evaluate(product, history, access, since=since, now=now, objective=objective)
        report.products.append(found)
        report.warnings += history.warnings
    return report


def check_window(window: timedelta) -> None:
    """Refuse an empty or negative window."""
    if window <= timedelta(0):
        raise QuantaError("the window must be longer than zero", hint="e.g. --window 30d",
                          code="window_invalid")


def parse_window(text: str) -> timedelta:
    """A window written like a spec duration (``30d``), or a QuantaError with a hint."""
    try:
        window = parse_duration(text)
    except ValueError as exc:
        raise QuantaError(f"window {text!r}: {exc}", hint="e.g. 30d, 7d or 12h",
                          code="window_invalid") from None
    check_window(window)
    return window


def evaluate(product: Product, history: History, access: AccessLog, *, since: datetime,
             now: datetime, objective: float = DEFAULT_OBJECTIVE) -> ProductSlos:
    """Every SLO ``product`` declares, from its ``history`` and reads in ``access``."""
    slos = product.spec.slos
    key = product.key
    ok, others = access.outcomes(key)
    served = history.served_since(since)
    results: list[SloResult] = []
    for name in SLO_ORDER:
        declared = getattr(slos, name)
        if declared is None:
            continue
        if name in ("freshness", "interval_of_change"):
            measure = _freshness if name == "freshness" else _interval
            results.append(measure(product, history, parse_duration(declared), declared,
                                   since, now, objective))
        elif name == "timeliness":
            results.append(_timeliness(product, history, served, parse_duration(declared),
                                       declared, objective))
        elif name == "availability":
            results.append(_availability(key, ok, others, float(declared)))
        else:
            results.append(_quality(product, history, served, name, float(declared),
                                    objective))
    runs = [r for r in history.runs if r.started_at >= since]
    return ProductSlos(key, results, served, runs, ok + len(others), list(history.warnings))


# --- the measures ------------------------------------------------------------------------------


def _freshness(product: Product, history: History, limit: timedelta, declared: str,
               since: datetime, now: datetime, objective: float) -> SloResult:
    """Share of the window in which the newest release was at most ``limit`` old."""
    releases = history.releases
    if not releases:
        return _unmeasured(product.key, "freshness", declared, objective, "time",
                           f"no release yet: build it (quanta build {product.key})")
    start = max(since, releases[0].committed_at)
    stale = 0.0
    breaches = []
    for index, release in enumerate(releases):
        following = releases[index + 1].committed_at if index + 1 < len(releases) else None
        end = following or now
        stale_from = max(release.committed_at + limit, start)
        if end <= stale_from:
            continue
        stale += (end - stale_from).total_seconds()
        gap = in_words(end - release.committed_at)
        cause = (f"no release between {_at(release.committed_at)} and {_at(following)} "
                 f"({gap}; freshness {declared})" if following else
                 f"no release since {_at(release.committed_at)} ({gap}; freshness {declared})")
        breaches.append(Breach(cause + _failed_meanwhile(history, release.committed_at, end),
                               stale_from, end, release.release))
    total = max((now - start).total_seconds(), EPSILON)
    note = f"of {in_words(now - start)}" + (
        f" since release {releases[0].release}" if start > since else "")
    return _judged(product.key, "freshness", declared, objective, "time", total - stale, total,
                   (now - releases[-1].committed_at).total_seconds(), note, breaches)


def _interval(product: Product, history: History, limit: timedelta, declared: str,
              since: datetime, now: datetime, objective: float) -> SloResult:
    """Share of intervals between releases (ending in the window) at most ``limit`` long;
    the interval since the newest release counts once it is already too long."""
    releases = history.releases
    gaps: list[tuple[ReleaseFacts, ReleaseFacts | None, timedelta]] = [
        (a, b, b.committed_at - a.committed_at) for a, b in pairwise(releases)
        if b.committed_at > since]
    if releases and now - releases[-1].committed_at > limit:
        gaps.append((releases[-1], None, now - releases[-1].committed_at))
    if not gaps:
        reason = (f"no release yet: build it (quanta build {product.key})" if not releases else
                  "1 release so far; an interval needs 2"
                  if len(releases) == 1 else "no release in the window")
        return _unmeasured(product.key, "interval_of_change", declared, objective,
                           "intervals", reason)
    breaches = []
    for before, after, gap in gaps:
        if gap <= limit:
            continue
        end = after.committed_at if after else now
        cause = (f"release {after.release} came {in_words(gap)} after release {before.release} "
                 f"(interval of change {declared})" if after else
                 f"no release for {in_words(gap)} since release {before.release} "
                 f"(interval of change {declared})")
        breaches.append(Breach(cause + _failed_meanwhile(history, before.committed_at, end),
                               before.committed_at, end, after.release if after else None))
    good = sum(1 for _, _, gap in gaps if gap <= limit)
    return _judged(product.key, "interval_of_change", declared, objective, "intervals", good,
                   len(gaps), gaps[-1][2].total_seconds(), f"of {_count(len(gaps), 'interval')}",
                   breaches)


def _timeliness(product: Product, history: History, served: list[ReleaseFacts],
                limit: timedelta, declared: str, objective: float) -> SloResult:
    """Share of releases served whose newest event was at most ``limit`` old at commit."""
    if not any(port.event_time for port in product.spec.outputs):
        return _unmeasured(product.key, "timeliness", declared, objective, "releases",
                           "no port declares an event_time")
    lags = [(r, r.committed_at - r.newest_event) for r in served if r.newest_event is not None]
    if not lags:
        reason = ("no release holds event times yet" if history.releases else
                  f"no release yet: build it (quanta build {product.key})")
        return _unmeasured(product.key, "timeliness", declared, objective, "releases", reason)
    breaches = []
    for release, lag in lags:
        if lag > limit:
            assert release.newest_event is not None
            breaches.append(Breach(
                f"release {release.release}: its newest event ({_at(release.newest_event)}) was "
                f"{in_words(lag)} old when released (timeliness {declared})",
                release.newest_event, release.committed_at, release.release))
    good = len(lags) - len(breaches)
    return _judged(product.key, "timeliness", declared, objective, "releases", good,
                   len(lags), lags[-1][1].total_seconds(), f"of {_count(len(lags), 'release')}",
                   breaches)


def _quality(product: Product, history: History, served: list[ReleaseFacts], name: str,
             threshold: float, objective: float) -> SloResult:
    """Share of releases served whose quality metric ``name`` reached ``threshold``."""
    declared = f"{threshold:g}"
    served = [r for r in served if name in r.metrics]
    if not served:
        reason = (f"no release yet: build it (quanta build {product.key})"
                  if not history.releases else
                  "no check measures completeness: add a not_null or row_count check"
                  if name == "completeness" else "the product declares no quality checks")
        return _unmeasured(product.key, name, declared, objective, "releases", reason)
    breaches = []
    for release in served:
        value = release.metrics[name]
        if value + EPSILON >= threshold:
            continue
        if name == "completeness":
            failed = "; ".join(f"{c.name}: {c.failing_rows:,} of {c.total_rows:,} rows"
                               for c in release.failed_checks("completeness"))
            cause = (f"release {release.release}: completeness {percent(value)} < "
                     f"{percent(threshold)}"
                     + (f" ({failed})" if failed else ""))
        else:
            names = [c.name for c in release.failed_checks()]
            cause = (f"check{'s' if len(names) > 1 else ''} {', '.join(names)} failed in "
                     f"release {release.release} (pass rate {percent(value)} < "
                     f"{percent(threshold)})")
        breaches.append(Breach(cause, release.committed_at, None, release.release))
    good = len(served) - len(breaches)
    return _judged(product.key, name, declared, objective, "releases", good, len(served),
                   served[-1].metrics[name], f"of {_count(len(served), 'release')}", breaches)


def _availability(key: str, ok: int, others: list[Read], target: float) -> SloResult:
    """Share of reads of the product (``ok`` good ones and ``others``) that did not fail on
    the platform's side: denials, refusals, limits, cancellations and SQL errors of the
    reader's own making do not count."""
    declared = f"{target:g}"
    failed: dict[str, list[Read]] = {}
    for read in others:
        if read.outcome == "error" and not _callers_error(read):
            failed.setdefault(read.error_code or "error", []).append(read)
    counted = ok + sum(len(g) for g in failed.values())
    if not counted:
        return _unmeasured(key, "availability", declared, target, "reads",
                           "no reads in the window yet")
    breaches = []
    for code, group in sorted(failed.items(), key=lambda item: -len(item[1])):
        last = group[-1]
        words = ERROR_WORDS.get(code, "errors")
        breaches.append(Breach(
            f"{_count(len(group), 'read')} failed with {words} ({code}), the last at "
            f"{_at(last.time)}: {last.error_message or 'no message'}",
            group[0].time, last.time))
    return _judged(key, "availability", declared, target, "reads", ok, counted,
                   ok / counted, f"of {_count(counted, 'read')}", breaches)


def _callers_error(read: Read) -> bool:
    if read.error_code == "cancelled":
        return True
    message = (read.error_message or "").removeprefix("query failed: ")
    return read.error_code == "query_failed" and message.startswith(CALLER_ERRORS)


# --- judging and words -------------------------------------------------------------------------


def _judged(key: str, slo: str, declared: str, target: float,
            unit: Literal["time", "intervals", "releases", "reads"], good: float, total: float,
            measured: float | None, note: str, breaches: list[Breach]) -> SloResult:
    attainment = min(max(good / total, 0.0), 1.0)
    bad = total - good
    if target >= 1:
        budget = None  # a 100% target leaves no budget to spend
        status: Status = "met" if bad <= EPSILON else "breached"
    else:
        budget = 1 - bad / ((1 - target) * total)
        status = ("breached" if attainment + EPSILON < target
                  else "at_risk" if budget < AT_RISK_BELOW else "met")
    return SloResult(key, slo, declared, target, unit, status, measured, round(good, 3),
                     round(total, 3), round(attainment, 6),
                     None if budget is None else round(budget, 4), note, tuple(breaches))


def _freshness_left(result: SloResult) -> timedelta:
    """How long freshness may wait for a release before its attainment falls below target:
    the newest release turns stale ``limit - age`` from now, and from then on each second
    is bad."""
    assert result.measured is not None
    limit = parse_duration(result.declared).total_seconds()
    fresh_for = max(limit - result.measured, 0.0)
    # (good + fresh_for) / (total + wait) < target, solved for wait
    wait = (result.good + fresh_for) / result.target - result.total
    return timedelta(seconds=max(wait, fresh_for))


def _unmeasured(key: str, slo: str, declared: str, target: float,
                unit: Literal["time", "intervals", "releases", "reads"], reason: str
                ) -> SloResult:
    return SloResult(key, slo, declared, target, unit, "unmeasured", note=reason)


def _failed_meanwhile(history: History, start: datetime, end: datetime) -> str:
    failed = history.failed_runs(start, end)
    if not failed:
        return ""
    code = (failed[-1].error or {}).get("code", "error")
    return f"; {_count(len(failed), 'build')} failed meanwhile (the last: {code})"


def in_words(span: timedelta | float) -> str:
    """A duration with its two largest units, e.g. '2d 3h', '15m' or '45s'."""
    seconds = round(span.total_seconds() if isinstance(span, timedelta) else span)
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    parts = []
    for size, unit in ((86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return sign + (" ".join(parts[:2]) or "0s")


def percent(share: float) -> str:
    """A share as a percentage with at most two decimals: '100%', '99.5%', '66.67%'."""
    return f"{share * 100:.2f}".rstrip("0").rstrip(".") + "%"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _at(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if moment else "now"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
