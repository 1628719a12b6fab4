"""The governance report: standards compliance, policies, access and fitness of a whole mesh.

The report reads what the mesh declares (specs, standards), what it has released, and who may
read it (grants and access requests). Grants and requests belong to the sidecar and the control
port, which sit above this plane, so the caller hands them in as ``ReportSources``
(``MeshContext.governance_report`` does). Unless a report is produced dry, its fitness numbers
are appended to ``<storage>/governance/fitness.ndjson``, and each report shows every number's
change since the previous snapshot.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol

from quanta.errors import Location, QuantaError
from quanta.governance.builtin import BUILTIN_STANDARDS, _missing_text
from quanta.governance.findings import Finding, count
from quanta.governance.policies import load_policies
from quanta.governance.standards import review_standards, run_standard
from quanta.spec.mesh import Mesh
from quanta.storage import ProductStorage
from quanta.storage.locks import file_lock

EXPIRY_WINDOW = timedelta(days=30)
PII_STANDARD = next(s for s in BUILTIN_STANDARDS if s.code == "pii-protected")
FitnessUnit = Literal["share", "seconds"]

# name -> (unit, what it measures); the order is the report's order
FITNESS: dict[str, tuple[FitnessUnit, str]] = {
    "standards_met": ("share", "products meeting their standards (no error finding)"),
    "slos_declared": ("share", "products promising freshness or interval_of_change"),
    "fields_documented": ("share", "output fields with a description"),
    "pii_protected": ("share", "PII fields with a polyseme or a mask policy"),
    "access_approval_time": ("seconds", "mean time from access request to decision"),
    "releases_passing": ("share", "products whose latest release passed every blocking check"),
}


class GrantRecord(Protocol):
    """What the report reads of a grant (``quanta.sidecar.grants.AccessGrant`` has it)."""

    @property
    def id(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def product(self) -> str: ...
    @property
    def port(self) -> str | None: ...
    @property
    def purpose(self) -> str | None: ...
    @property
    def expires_at(self) -> str | None: ...


class RequestRecord(Protocol):
    """What the report reads of an access request (``quanta.control.AccessRequest`` has it)."""

    @property
    def id(self) -> str: ...
    @property
    def requester(self) -> str: ...
    @property
    def product(self) -> str: ...
    @property
    def port(self) -> str | None: ...
    @property
    def purpose(self) -> str | None: ...
    @property
    def state(self) -> str: ...
    @property
    def requested_at(self) -> str: ...
    @property
    def decided_at(self) -> str | None: ...


@dataclass(frozen=True)
class ReportSources:
    """The access data of a mesh, from the planes above governance."""

    grants: Sequence[GrantRecord] = ()
    requests: Sequence[RequestRecord] = ()
    describe: Callable[[Any], str] = str  # a policy (local or global) in plain words


@dataclass(frozen=True)
class ProductCompliance:
    """One product against the mesh's standards: it complies with no error finding."""

    product: str
    domain: str
    findings: tuple[Finding, ...]

    @property
    def complies(self) -> bool:
        return self.errors == 0

    @property
    def errors(self) -> int:
        return count(self.findings, "error")

    @property
    def warnings(self) -> int:
        return count(self.findings, "warn")


@dataclass(frozen=True)
class DomainCompliance:
    """The products of one domain against the mesh's standards."""

    domain: str
    products: int
    complying: int
    errors: int
    warnings: int


@dataclass(frozen=True)
class GrantDue:
    """A grant that has expired, or expires within the report's window."""

    id: str
    subject: str
    product: str
    port: str | None
    purpose: str | None
    expires_at: datetime
    left: timedelta  # negative once expired


@dataclass(frozen=True)
class PendingRequest:
    """An access request waiting for its owners' decision."""

    id: str
    requester: str
    product: str
    port: str | None
    purpose: str | None
    requested_at: datetime
    age: timedelta


@dataclass(frozen=True)
class ReleaseStatus:
    """A product's latest release and the blocking (``error``) checks it failed."""

    product: str
    release: int | None
    failed_checks: tuple[str, ...] = ()

    @property
    def passing(self) -> bool:
        return self.release is not None and not self.failed_checks


@dataclass(frozen=True)
class Fitness:
    """One fitness function of the mesh: a share (0..1) or a duration in seconds."""

    name: str
    unit: FitnessUnit
    description: str
    value: float | None  # None when nothing is measured yet (e.g. no PII fields)
    detail: str
    previous: float | None = None

    @property
    def change(self) -> float | None:
        if self.value is None or self.previous is None:
            return None
        return round(self.value - self.previous, 6)


@dataclass(frozen=True)
class FitnessSnapshot:
    """The fitness numbers of one report, as kept in ``fitness.ndjson``."""

    time: datetime
    values: dict[str, float | None]

    def to_line(self) -> bytes:
        return (json.dumps({"time": self.time.isoformat(), "fitness": self.values},
                           separators=(",", ":")) + "\n").encode()


class FitnessHistory:
    """Fitness snapshots of one mesh, one JSON line each, appended under a file lock."""

    def __init__(self, storage_root: Path) -> None:
        self.file = storage_root / "governance" / "fitness.ndjson"

    def read(self) -> tuple[list[FitnessSnapshot], list[str]]:
        """Snapshots oldest first, and a warning per line that is not one (it is skipped)."""
        try:
            raw = self.file.read_bytes()
        except FileNotFoundError:
            return [], []
        snapshots, warnings = [], []
        for number, line in enumerate(raw.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                snapshots.append(_snapshot(line))
            except (ValueError, TypeError, KeyError) as exc:
                warnings.append(f"{self.file.name} line {number} is not a fitness snapshot "
                                f"({exc}); skipped")
        return snapshots, warnings

    def append(self, snapshot: FitnessSnapshot) -> None:
        """Add one line, atomically with respect to other reports of this mesh."""
        line = snapshot.to_line()
        with file_lock(self.file):
            fd = os.open(self.file, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line  # a torn last line stays one (skipped) line
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)


def _snapshot(line: bytes) -> FitnessSnapshot:
    data = json.loads(line.decode("utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("fitness"), dict):
        raise ValueError("no 'fitness' object")
    values: dict[str, float | None] = {}
    for name, value in data["fitness"].items():
        if value is not None and (isinstance(value, bool)
                                  or not isinstance(value, int | float)):
            raise ValueError(f"{name} is not a number")
        values[str(name)] = None if value is None else float(value)
    return FitnessSnapshot(_utc(datetime.fromisoformat(str(data["time"]))), values)


@dataclass(frozen=True)
class GovernanceReport:
    """Compliance, policies, access and fitness of a whole mesh at ``generated_at``."""

    mesh: str
    generated_at: datetime
    products: tuple[ProductCompliance, ...]
    domains: tuple[DomainCompliance, ...]
    policies: dict[str, tuple[str, ...]]  # product -> its policies in words
    grants_expiring: tuple[GrantDue, ...]
    grants_expired: tuple[GrantDue, ...]
    pending_requests: tuple[PendingRequest, ...]
    slos_missing: tuple[str, ...]
    pii_unprotected: tuple[Finding, ...]
    releases: tuple[ReleaseStatus, ...]
    fitness: tuple[Fitness, ...]
    history_file: Path
    snapshots: int  # on record after this report
    previous_at: datetime | None
    recorded: bool
    warnings: tuple[str, ...] = ()
    problems: tuple[str, ...] = field(default=())

    def to_dict(self, principals: bool = True) -> dict[str, Any]:
        """A JSON-ready document; ``principals=False`` leaves out who (not which group) is
        granted or asking, for readers who may not see names of people."""

        def who(name: str) -> str | None:
            return name if principals or name == "*" or name.startswith("group:") else None

        def grant(g: GrantDue) -> dict[str, Any]:
            return {"id": g.id, "subject": who(g.subject), "product": g.product, "port": g.port,
                    "purpose": g.purpose, "expires_at": g.expires_at.isoformat(),
                    "seconds_left": round(g.left.total_seconds())}

        return {
            "mesh": self.mesh,
            "generated_at": self.generated_at.isoformat(),
            "compliance": {
                "products": [{"product": p.product, "domain": p.domain, "complies": p.complies,
                              "errors": p.errors, "warnings": p.warnings,
                              "findings": [f.to_dict() for f in p.findings]}
                             for p in self.products],
                "domains": [vars(d) for d in self.domains],
            },
            "policies": [{"product": k, "policies": list(v)} for k, v in self.policies.items()],
            "grants": {"window_days": EXPIRY_WINDOW.days,
                       "expiring": [grant(g) for g in self.grants_expiring],
                       "expired": [grant(g) for g in self.grants_expired]},
            "access_requests": {"pending": [
                {"id": r.id, "requester": who(r.requester), "product": r.product,
                 "port": r.port, "purpose": r.purpose, "requested_at": r.requested_at.isoformat(),
                 "age_seconds": round(r.age.total_seconds())}
                for r in self.pending_requests]},
            "slos_missing": list(self.slos_missing),
            "pii_unprotected": [f.to_dict() for f in self.pii_unprotected],
            "releases": [{"product": r.product, "release": r.release, "passing": r.passing,
                          "failed_checks": list(r.failed_checks)} for r in self.releases],
            "fitness": [{"name": f.name, "unit": f.unit, "description": f.description,
                         "value": f.value, "detail": f.detail, "previous": f.previous,
                         "change": f.change} for f in self.fitness],
            "history": {"snapshots": self.snapshots, "recorded": self.recorded,
                        "previous_at": self.previous_at.isoformat() if self.previous_at
                        else None},
            "warnings": list(self.warnings),
            "problems": list(self.problems),
        }


def governance_report(mesh: Mesh, sources: ReportSources, *, now: datetime | None = None,
                      record: bool = True) -> GovernanceReport:
    """The governance report of ``mesh``; with ``record``, append its fitness snapshot."""
    now = _utc(now or datetime.now(UTC))
    warnings: list[str] = []
    review = review_standards(mesh)
    problems = [p.render() for p in [*mesh.problems, *review.problems]]
    keys = sorted(mesh.products)
    products = tuple(
        ProductCompliance(key, mesh.products[key].spec.domain,
                          tuple(f for f in review.findings if f.product == key))
        for key in keys)
    releases = tuple(_release_status(mesh, key, warnings) for key in keys)
    pii = tuple(f for key in keys for f in run_standard(PII_STANDARD, mesh.products[key], mesh))
    grants = [g for g in (_due(item, now, warnings) for item in sources.grants) if g]
    expiring = tuple(sorted((g for g in grants if g.left > timedelta(0)),
                            key=lambda g: g.expires_at))
    expired = tuple(sorted((g for g in grants if g.left <= timedelta(0)),
                           key=lambda g: g.expires_at))
    pending = tuple(p for p in (_pending(item, now, warnings) for item in sources.requests
                                if item.state == "pending") if p)
    slos_missing = tuple(key for key in keys if mesh.products[key].spec.slos.freshness is None
                         and mesh.products[key].spec.slos.interval_of_change is None)

    values, details = _fitness(mesh, products, slos_missing, pii, releases,
                               _decision_times(sources.requests, warnings))
    history = FitnessHistory(mesh.storage_root)
    snapshots, unreadable = history.read()
    warnings += unreadable
    previous = snapshots[-1] if snapshots else None
    fitness = tuple(
        Fitness(name, unit, text, values[name], details[name],
                previous.values.get(name) if previous else None)
        for name, (unit, text) in FITNESS.items())
    if record:
        history.append(FitnessSnapshot(now, values))
    federal = _global_policies(mesh, sources, problems)
    return GovernanceReport(
        mesh=mesh.spec.name, generated_at=now, products=products,
        domains=_domains(products),
        policies={**federal,
                  **{key: tuple(sources.describe(p) for p in mesh.products[key].spec.policies)
                     for key in keys}},
        grants_expiring=tuple(g for g in expiring if g.left <= EXPIRY_WINDOW),
        grants_expired=expired, pending_requests=pending, slos_missing=slos_missing,
        pii_unprotected=pii, releases=releases, fitness=fitness, history_file=history.file,
        snapshots=len(snapshots) + record, previous_at=previous.time if previous else None,
        recorded=record, warnings=tuple(warnings), problems=tuple(problems),
    )


def _fitness(mesh: Mesh, products: Sequence[ProductCompliance], slos_missing: Sequence[str],
             pii: Sequence[Finding], releases: Sequence[ReleaseStatus],
             decisions: Sequence[timedelta]) -> tuple[dict[str, float | None], dict[str, str]]:
    fields = [f for product in mesh.products.values() for port in product.spec.outputs
              for f in port.fields]
    pii_fields = sum(1 for f in fields if f.classification == "pii")
    documented = sum(1 for f in fields if not _missing_text(f.description))
    parts = {
        "standards_met": (sum(p.complies for p in products), len(products), "products"),
        "slos_declared": (len(products) - len(slos_missing), len(products), "products"),
        "fields_documented": (documented, len(fields), "fields"),
        "pii_protected": (pii_fields - len(pii), pii_fields, "PII fields"),
        "releases_passing": (sum(r.passing for r in releases), len(releases), "products"),
    }
    values: dict[str, float | None] = {
        name: round(part / whole, 4) if whole else None
        for name, (part, whole, _) in parts.items()}
    details = {name: f"{part} of {whole} {what}" for name, (part, whole, what) in parts.items()}
    values["access_approval_time"] = (
        round(sum(d.total_seconds() for d in decisions) / len(decisions), 3)
        if decisions else None)
    details["access_approval_time"] = f"{len(decisions)} decided request(s)"
    return {name: values[name] for name in FITNESS}, {name: details[name] for name in FITNESS}


def _domains(products: Sequence[ProductCompliance]) -> tuple[DomainCompliance, ...]:
    found = []
    for domain in sorted({p.domain for p in products}):
        inside = [p for p in products if p.domain == domain]
        found.append(DomainCompliance(
            domain, len(inside), sum(p.complies for p in inside),
            sum(p.errors for p in inside), sum(p.warnings for p in inside)))
    return tuple(found)


def _release_status(mesh: Mesh, key: str, warnings: list[str]) -> ReleaseStatus:
    try:
        latest = ProductStorage(mesh.storage_root, key).latest()
    except QuantaError as exc:
        warnings.append(f"{key}: latest release unreadable: {exc.message}")
        return ReleaseStatus(key, None)
    if latest is None:
        return ReleaseStatus(key, None)
    failed = tuple(c.name for c in latest.checks if c.severity == "error" and not c.passed)
    return ReleaseStatus(key, latest.release, failed)


def _due(grant: GrantRecord, now: datetime, warnings: list[str]) -> GrantDue | None:
    if grant.expires_at is None:
        return None
    expires = _parse(grant.expires_at, f"grant {grant.id}", warnings)
    if expires is None:
        return None
    return GrantDue(grant.id, grant.subject, grant.product, grant.port, grant.purpose, expires,
                    expires - now)


def _pending(item: RequestRecord, now: datetime, warnings: list[str]) -> PendingRequest | None:
    asked = _parse(item.requested_at, f"access request {item.id}", warnings)
    if asked is None:
        return None
    return PendingRequest(item.id, item.requester, item.product, item.port, item.purpose, asked,
                          now - asked)


def _decision_times(requests: Sequence[RequestRecord], warnings: list[str]) -> list[timedelta]:
    times = []
    for item in requests:
        if item.state == "pending" or item.decided_at is None:
            continue
        asked = _parse(item.requested_at, f"access request {item.id}", warnings)
        decided = _parse(item.decided_at, f"access request {item.id}", warnings)
        if asked is not None and decided is not None:
            times.append(decided - asked)
    return times


def _parse(text: str, what: str, warnings: list[str]) -> datetime | None:
    try:
        return _utc(datetime.fromisoformat(text))
    except (TypeError, ValueError):
        warnings.append(f"{what}: {text!r} is not a time; left out of the report")
        return None


def _utc(moment: datetime) -> datetime:
    """Aware in UTC (times written without a zone are taken as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


GLOBAL_POLICIES = "(global)"


def _global_policies(mesh: Mesh, sources: ReportSources, problems: list[str]
                     ) -> dict[str, tuple[str, ...]]:
    """The federation's policies in words, under ``(global)``; empty when there are none."""
    found = load_policies(mesh)
    problems += [p.render() for p in found.problems]
    words = [f"{item.name}: {sources.describe(item.policy)}{_scope(item.policy)}"
             for item in found.placed]
    words += [f"{function.name} (Python{_origin(function.origin)})"
              for function in found.python]
    return {GLOBAL_POLICIES: tuple(words)} if words else {}


def _scope(policy: object) -> str:
    parts = [f"{name} {', '.join(values)}" for name in ("domains", "products", "kinds")
             if (values := getattr(policy, name, None))]
    return f" [{'; '.join(parts)}]" if parts else ""


def _origin(origin: Location | None) -> str:
    if origin is None:
        return ""
    return f", {Path(origin.file).name}:{origin.line}" if origin.line else \
        f", {Path(origin.file).name}"
