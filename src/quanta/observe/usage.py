"""Usage of products: who reads them and how often, per day, from the access log; and the
requests refused before reading them (denials above all), which name the products they tried
to read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from quanta.errors import QuantaError
from quanta.observe.access import AccessLog, Read, read_access_log
from quanta.spec.mesh import Mesh

DEFAULT_DAYS = 30


@dataclass(frozen=True)
class DayUsage:
    """Reads of one product on one day (UTC), and requests for it denied that day."""

    day: date
    reads: int
    consumers: int
    denials: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"day": self.day.isoformat(), "reads": self.reads, "consumers": self.consumers,
                "denials": self.denials}


@dataclass(frozen=True)
class ProductUsage:
    """Reads of one product over the period: totals, outcomes, consumers and each day; and
    the requests refused before reading it, by outcome (``denied``, ``refused``, ``error``)."""

    product: str
    reads: int
    outcomes: dict[str, int]
    principals: dict[str, int]
    rows: int
    bytes: int
    last_read: datetime | None
    days: tuple[DayUsage, ...]
    refused: dict[str, int] = field(default_factory=dict)

    @property
    def consumers(self) -> int:
        """Distinct principals who read the product."""
        return len(self.principals)

    @property
    def denials(self) -> int:
        """Requests for the product that a policy denied."""
        return self.refused.get("denied", 0)

    @property
    def queries_per_day(self) -> float:
        """Reads per day over the period (days without reads included)."""
        return self.reads / len(self.days) if self.days else 0.0

    def to_dict(self, principals: bool = True) -> dict[str, Any]:
        document = {
            "product": self.product, "reads": self.reads, "consumers": self.consumers,
            "queries_per_day": round(self.queries_per_day, 3), "outcomes": self.outcomes,
            "denials": self.denials, "refused": self.refused, "rows": self.rows,
            "bytes": self.bytes,
            "last_read": self.last_read.isoformat() if self.last_read else None,
            "days": [d.to_dict() for d in self.days],
        }
        if principals:
            document["principals"] = self.principals
        return document


@dataclass
class UsageReport:
    """Usage of some products of a mesh over the last ``days`` days."""

    days: int
    since: datetime
    generated_at: datetime
    products: list[ProductUsage]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self, principals: bool = True) -> dict[str, Any]:
        return {"days": self.days, "since": self.since.isoformat(),
                "generated_at": self.generated_at.isoformat(),
                "products": [p.to_dict(principals) for p in self.products],
                "warnings": self.warnings}


def usage_report(mesh: Mesh, keys: list[str] | None = None, *, days: int = DEFAULT_DAYS,
                 now: datetime | None = None) -> UsageReport:
    """Reads of ``keys`` (default: every product) on the last ``days`` days, today included."""
    if days < 1:
        raise QuantaError(f"--days {days} must be 1 or more", hint="e.g. --days 30",
                          code="days_invalid")
    now = now or datetime.now(UTC)
    first, since = usage_start(now, days)
    products = [mesh.product(k).key for k in keys] if keys else sorted(mesh.products)
    access = read_access_log(mesh.storage_root, since, products if keys else None)
    report = UsageReport(days, since, now, [], list(access.warnings))
    for key in products:
        report.products.append(usage_of(key, access, first, days))
    return report


def usage_start(now: datetime, days: int) -> tuple[date, datetime]:
    """The first day of a period of ``days`` days ending today (UTC), and its start."""
    first = now.astimezone(UTC).date() - timedelta(days=days - 1)
    return first, datetime.combine(first, time.min, UTC)


def usage_of(key: str, access: AccessLog, first: date, days: int) -> ProductUsage:
    """The usage of ``key`` in ``access`` (read from the start of day ``first`` on)."""
    return product_usage(key, access.of(key), first, days, access.refused(key))


def product_usage(key: str, reads: list[Read], first: date, days: int,
                  refused: Sequence[Read] = ()) -> ProductUsage:
    """Totals and a dense day-by-day series (days without reads count zero)."""
    outcomes: dict[str, int] = {}
    principals: dict[str, int] = {}
    per_day: dict[date, list[Read]] = {}
    for read in reads:
        outcomes[read.outcome] = outcomes.get(read.outcome, 0) + 1
        if read.principal:
            principals[read.principal] = principals.get(read.principal, 0) + 1
        per_day.setdefault(read.time.astimezone(UTC).date(), []).append(read)
    stopped: dict[str, int] = {}
    denied_on: dict[date, int] = {}
    for request in refused:
        stopped[request.outcome] = stopped.get(request.outcome, 0) + 1
        if request.outcome == "denied":
            day = request.time.astimezone(UTC).date()
            denied_on[day] = denied_on.get(day, 0) + 1
    series = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        todays = per_day.get(day, [])
        series.append(DayUsage(day, len(todays), len({r.principal for r in todays
                                                       if r.principal}),
                               denied_on.get(day, 0)))
    ranked = dict(sorted(principals.items(), key=lambda item: (-item[1], item[0])))
    return ProductUsage(
        product=key, reads=len(reads), outcomes=outcomes, principals=ranked,
        rows=sum(r.rows for r in reads), bytes=sum(r.bytes for r in reads),
        last_read=max((r.time for r in reads), default=None), days=tuple(series),
        refused=dict(sorted(stopped.items())))
