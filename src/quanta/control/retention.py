"""Retention as code: rows older than a product's declared ``retention`` leave every release.

A product declaring ``retention: 400d`` keeps no row whose port's ``event_time`` is before the
cutoff (400 days before now, UTC). Builds can leave such rows out of a new release (the
runner's ``enforce_retention``); ``apply_retention`` removes them from the releases already
kept, so reads at any ``as_of`` no longer return them. Ports without an ``event_time`` are
left alone, and so are rows whose event time is null. A date counts as its first instant
(00:00 UTC).

``apply_retention`` uses the rewrite of erasure (``quanta.control.rewrite``): new files
without the expired rows are written first, and any failure before the manifests are swapped
removes them and changes nothing; running it again removes nothing more (it is idempotent).
A report is kept under ``<storage>/retention/<id>.json`` and every run but a dry one is
audited.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from quanta.control import rewrite
from quanta.engine.duckdb import DuckDBEngine, quote
from quanta.errors import QuantaError
from quanta.sidecar.core import Sidecar
from quanta.sidecar.principals import Principal
from quanta.spec.durations import parse_duration
from quanta.spec.mesh import Mesh
from quanta.storage import Release
from quanta.storage.files import write_atomic


class RetentionError(QuantaError):
    """Retention could not be applied (nothing was changed)."""

    code = "retention_failed"


@dataclass
class ProductRetention:
    """What retention means for one product in one run."""

    product: str
    retention: str
    cutoff: str  # ISO 8601, UTC
    ports: dict[str, str]  # port → its event_time column
    untimed: list[str] = field(default_factory=list)  # ports without event_time: left alone


@dataclass
class TrimmedPort:
    """Rows older than the cutoff removed from one port of one release."""

    product: str
    release: int
    port: str
    event_time: str
    cutoff: str
    rows_removed: int
    rows_left: int
    files_before: list[str]
    files_after: list[str]


@dataclass
class RetentionReport:
    """What a retention run removed, per product, release and port."""

    id: str
    requested_by: str
    started_at: str
    dry_run: bool
    products: list[ProductRetention]
    trimmed: list[TrimmedPort] = field(default_factory=list)
    finished_at: str | None = None

    @property
    def rows_removed(self) -> int:
        return sum(t.rows_removed for t in self.trimmed)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_removed": self.rows_removed}


def older_than(column: str, column_type: str, cutoff: datetime) -> str | None:
    """SQL condition: ``column`` (of DuckDB type ``column_type``) is before ``cutoff``; None
    when the type is neither a date nor a timestamp. For sessions in UTC, as quanta's are."""
    kind = column_type.upper()
    moment = f"TIMESTAMPTZ '{cutoff.astimezone(UTC).isoformat()}'"
    if kind in ("DATE", "TIMESTAMP", "TIMESTAMPTZ", "TIMESTAMP WITH TIME ZONE"):
        return f"{quote(column)} < {moment}"
    if kind.startswith("TIMESTAMP_"):  # _S, _MS, _NS: DuckDB wants an explicit cast
        return f"CAST({quote(column)} AS TIMESTAMP) < {moment}"
    return None


def plan_retention(mesh: Mesh, products: list[str] | None = None,
                   now: datetime | None = None) -> list[ProductRetention]:
    """The products ``apply_retention`` trims (those named, else every one declaring
    retention), with their cutoffs; raises for a named product that is unknown or declares
    none."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    if products:
        chosen = [mesh.product(name) for name in dict.fromkeys(products)]
        without = [p.key for p in chosen if p.spec.retention is None]
        if without:
            declaring = sorted(k for k, p in mesh.products.items() if p.spec.retention)
            raise RetentionError(
                f"{', '.join(without)} {'declares' if len(without) == 1 else 'declare'} no "
                "retention", code="retention_missing",
                hint="add e.g. 'retention: 400d' to its dataproduct.yaml; products that "
                f"declare one: {', '.join(declaring) or 'none'}")
    else:
        chosen = [p for _, p in sorted(mesh.products.items()) if p.spec.retention]
    planned = []
    for product in sorted(chosen, key=lambda p: p.key):
        retention = str(product.spec.retention)
        cutoff = moment - parse_duration(retention)
        planned.append(ProductRetention(
            product.key, retention, cutoff.isoformat(),
            {port.name: port.event_time for port in product.spec.outputs if port.event_time},
            [port.name for port in product.spec.outputs if not port.event_time]))
    return planned


def apply_retention(sidecar: Sidecar, products: list[str] | None = None,
                    principal: Principal | None = None, dry_run: bool = False
                    ) -> RetentionReport:
    """Remove rows older than each product's retention from every kept release of the products
    named (default: every product declaring retention)."""
    who = principal or sidecar.operator()
    started = datetime.now(UTC)
    planned = plan_retention(sidecar.mesh, products, started)
    report = RetentionReport(
        id=started.strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3), requested_by=who.name,
        started_at=started.isoformat(), dry_run=dry_run, products=planned)
    cutoffs = {p.product: datetime.fromisoformat(p.cutoff) for p in planned}
    targets = {p.product: {port: _expired(p.product, port, column, cutoffs[p.product])
                           for port, column in p.ports.items()}
               for p in planned if p.ports}
    root = sidecar.mesh.storage_root
    with DuckDBEngine().session() as session:
        for readable in sidecar.mesh.readable_roots():
            session.allow_directory(readable)
        session.lock_file_access()
        rewrites = rewrite.plan(session, root, targets, dry_run=dry_run, operation="retention",
                                error=RetentionError)
        columns = {p.product: p.ports for p in planned}
        report.trimmed = [
            TrimmedPort(r.product, r.release.release, r.port, columns[r.product][r.port],
                        cutoffs[r.product].isoformat(), r.removed, r.rows_left,
                        [f.name for f in r.old], [f.name for f in r.new])
            for r in rewrites]
        if dry_run:
            report.finished_at = datetime.now(UTC).isoformat()
            return report
        rewrite.swap(rewrites, lambda release: _amendment(release, report.id, cutoffs),
                     operation="retention", error=RetentionError)
    report.finished_at = datetime.now(UTC).isoformat()
    write_atomic(root / "retention" / f"{report.id}.json",
                 json.dumps(report.to_dict(), indent=2).encode())
    sidecar.audit.append({
        "principal": who.name, "groups": sorted(who.groups), "mode": "control",
        "action": "retention", "retention": report.id, "rows": report.rows_removed,
        "products": [p.product for p in planned],
        "cutoffs": {p.product: p.cutoff for p in planned}, "outcome": "ok",
    })
    return report


def _expired(product: str, port: str, column: str, cutoff: datetime) -> rewrite.RowCondition:
    """The rows of ``port`` whose ``column`` is before ``cutoff``, in any kept release."""

    def condition(release: Release, columns: dict[str, str]) -> str | None:
        where = f"{product} release {release.release} port '{port}'"
        if column not in columns:
            raise RetentionError(
                f"{where} has no event_time column '{column}', so its rows' age is unknown",
                code="event_time_missing",
                hint="that release was built before the column existed; apply retention to "
                "the other products by naming them")
        found = older_than(column, columns[column], cutoff)
        if found is None:
            raise RetentionError(
                f"{where}: event_time column '{column}' is stored as {columns[column]}, which "
                "cannot be compared with a cutoff", code="event_time_not_comparable",
                hint="the event time must be a date or timestamp in every kept release; apply "
                "retention to the other products by naming them")
        return found

    return condition


def _amendment(release: Release, run_id: str, cutoffs: dict[str, datetime]) -> dict[str, Any]:
    cutoff = cutoffs[release.product]
    if release.retention_cutoff is not None:
        cutoff = max(cutoff, release.retention_cutoff)
    return {"retentions": [*release.retentions, run_id], "retention_cutoff": cutoff}
