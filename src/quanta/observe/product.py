"""One product's SLOs and usage, measured now in one pass over what the mesh recorded: what a
discovery document shows of how a product keeps its promises and who uses it.

``slo_report`` and ``usage_report`` each read the audit log; a product's page needs both,
so ``observe_product`` reads the log once, from the earlier of the two periods' starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from quanta.observe.access import read_access_log
from quanta.observe.history import product_history
from quanta.observe.slo import (
    DEFAULT_OBJECTIVE,
    DEFAULT_WINDOW,
    ProductSlos,
    check_window,
    evaluate,
)
from quanta.observe.usage import DEFAULT_DAYS, ProductUsage, usage_of, usage_start
from quanta.spec.mesh import Mesh

SHOWN_BREACHES = 5  # per SLO, the newest; the SLO API lists them all


@dataclass
class ProductObservation:
    """A product's SLOs over ``window`` and its usage over ``days`` days, as of
    ``generated_at``."""

    product: str
    slos: ProductSlos
    usage: ProductUsage
    generated_at: datetime
    window: timedelta
    objective: float
    days: int
    warnings: list[str] = field(default_factory=list)

    def slo_status(self) -> dict[str, Any]:
        """The verdicts only: the product's overall SLO status, each SLO's, and when waiting
        alone would breach one (see ``ProductSlos.breach_due``). Small and free of figures
        that drift, so an index can keep it."""
        due = self.slos.breach_due(self.generated_at)
        return {"status": self.slos.status,
                "slos": {s.slo: s.status for s in self.slos.slos},
                "breach_due": due.isoformat() if due else None,
                "evaluated_at": self.generated_at.isoformat(),
                "window_seconds": self.window.total_seconds(), "objective": self.objective}

    def attainment(self) -> dict[str, Any]:
        """Each SLO measured: objective, target, measured value, attainment, error budget
        left, status and its newest breaches with their causes."""
        slos = []
        for result in self.slos.slos:
            entry = result.to_dict()
            entry["breach_count"] = len(result.breaches)
            entry["breaches"] = entry["breaches"][-SHOWN_BREACHES:]
            slos.append(entry)
        return {"status": self.slos.status, "evaluated_at": self.generated_at.isoformat(),
                "since": (self.generated_at - self.window).isoformat(),
                "window_seconds": self.window.total_seconds(), "objective": self.objective,
                "slos": slos, "reads": self.slos.reads}

    def usage_summary(self) -> dict[str, Any]:
        """Reads, distinct consumers, queries per day and denials over the period, and each
        day; the principals are left out (anyone may read a discovery document)."""
        used = self.usage
        return {"days": self.days, "since": (used.days[0].day.isoformat() if used.days
                                             else None),
                "reads": used.reads, "consumers": used.consumers,
                "queries_per_day": round(used.queries_per_day, 3), "denials": used.denials,
                "refused": used.refused, "outcomes": used.outcomes,
                "last_read": used.last_read.isoformat() if used.last_read else None,
                "per_day": [d.to_dict() for d in used.days]}


def observe_product(mesh: Mesh, key: str, *, window: timedelta = DEFAULT_WINDOW,
                    objective: float = DEFAULT_OBJECTIVE, days: int = DEFAULT_DAYS,
                    now: datetime | None = None) -> ProductObservation:
    """Evaluate ``key``'s SLOs over ``window`` and count its usage over the last ``days``
    days (today included), reading the audit log once."""
    check_window(window)
    now = now or datetime.now(UTC)
    product = mesh.product(key)
    since = now - window
    first, usage_since = usage_start(now, max(days, 1))
    access = read_access_log(mesh.storage_root, min(since, usage_since), [product.key])
    history = product_history(mesh.storage_root, product.spec)
    slos = evaluate(product, history, access.since(since), since=since, now=now,
                    objective=objective)
    usage = usage_of(product.key, access.since(usage_since), first, max(days, 1))
    return ProductObservation(product.key, slos, usage, now, window, objective, max(days, 1),
                              [*access.warnings, *history.warnings])
