"""Erasure: remove one data subject from every product that carries their polyseme.

``erase(sidecar, "listener_id", "l000042")`` finds every output port with a field whose
polyseme is ``listener_id`` and, in every release still kept, rewrites the port's files
without the subject's rows, so reads at any ``as_of`` no longer return them. Then it removes
the old files, takes the value out of stored metadata (release manifests' profiles and check
samples, run records, Delta commit statistics), and verifies by reading every Parquet file in
each port's folder and every JSON file of the product that no trace is left.

All or nothing per mesh until the first manifest changes: the new files are written (and
checked) first; any failure before the swap removes them and leaves every release as it was.
The swap itself rewrites one manifest at a time atomically; if the process dies halfway,
running the same erasure again finishes it (it is idempotent). The report names the subject
only by a keyed hash, never by the value. The rewrite of releases is shared with retention
(``quanta.control.rewrite``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from quanta.control import rewrite
from quanta.engine.duckdb import DuckDBEngine, DuckDBSession, literal, quote
from quanta.errors import QuantaError
from quanta.sidecar.core import Sidecar
from quanta.sidecar.principals import Principal
from quanta.storage import ProductStorage, Release
from quanta.storage.files import write_atomic


class ErasureError(QuantaError):
    """An erasure could not be done (nothing was changed)."""

    code = "erasure_failed"


@dataclass
class ErasedPort:
    """Rows removed from one port of one release."""

    product: str
    release: int
    port: str
    rows_removed: int
    rows_left: int
    files_before: list[str]
    files_after: list[str]


@dataclass
class ErasureReport:
    """What an erasure removed, and the proof that nothing is left."""

    id: str
    polyseme: str
    subject: str  # keyed hash of the value: the report holds no personal data
    requested_by: str
    started_at: str
    dry_run: bool
    products: list[str]
    erased: list[ErasedPort] = field(default_factory=list)
    scrubbed_files: list[str] = field(default_factory=list)
    verified_files: int = 0
    traces: list[str] = field(default_factory=list)
    finished_at: str | None = None

    @property
    def rows_removed(self) -> int:
        return sum(e.rows_removed for e in self.erased)

    @property
    def verified(self) -> bool:
        return not self.dry_run and not self.traces

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_removed": self.rows_removed, "verified": self.verified}


def carriers(sidecar: Sidecar, polyseme: str) -> dict[str, dict[str, list[str]]]:
    """product key → port → the columns carrying ``polyseme``."""
    found: dict[str, dict[str, list[str]]] = {}
    for key, product in sorted(sidecar.mesh.products.items()):
        for port in product.spec.outputs:
            columns = [f.name for f in port.fields if f.polyseme == polyseme]
            if columns:
                found.setdefault(key, {})[port.name] = columns
    return found


def erase(sidecar: Sidecar, polyseme: str, value: str, principal: Principal | None = None,
          dry_run: bool = False) -> ErasureReport:
    """Remove every row whose ``polyseme`` columns hold ``value``, in every kept release."""
    who = principal or sidecar.operator()
    targets = carriers(sidecar, polyseme)
    if not targets:
        known = sorted({f.polyseme for p in sidecar.mesh.products.values()
                        for port in p.spec.outputs for f in port.fields if f.polyseme})
        raise ErasureError(f"no product carries the polyseme '{polyseme}'",
                           hint=f"polysemes in this mesh: {', '.join(known) or 'none'}",
                           code="polyseme_unknown")
    if not value.strip():
        raise ErasureError("the value to erase is empty", code="value_missing",
                           hint="--value the subject's id, e.g. --value l000042")
    report = ErasureReport(
        id=datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3),
        polyseme=polyseme, subject=_subject(sidecar, polyseme, value),
        requested_by=who.name, started_at=datetime.now(UTC).isoformat(), dry_run=dry_run,
        products=sorted(targets),
    )
    root = sidecar.mesh.storage_root
    with DuckDBEngine().session() as session:
        for readable in sidecar.mesh.readable_roots():
            session.allow_directory(readable)
        session.lock_file_access()
        conditions = {key: {port: _condition(columns, value) for port, columns in ports.items()}
                      for key, ports in targets.items()}
        plans = rewrite.plan(session, root, conditions, dry_run=dry_run, operation="erasure",
                             error=ErasureError)
        report.erased = [ErasedPort(p.product, p.release.release, p.port, p.removed,
                                    0, [f.name for f in p.old], [f.name for f in p.new])
                         for p in plans]
        if dry_run:
            report.finished_at = datetime.now(UTC).isoformat()
            return report
        rewrite.swap(plans, lambda release: {"erasures": [*release.erasures, report.id]},
                     operation="erasure", error=ErasureError)
        for entry, plan in zip(report.erased, plans, strict=True):
            entry.rows_left = plan.rows_left
        report.scrubbed_files = _scrub_metadata(root, targets, value)
        report.verified_files, report.traces = _verify(session, root, targets, value)
    report.finished_at = datetime.now(UTC).isoformat()
    write_atomic(root / "erasures" / f"{report.id}.json",
                 json.dumps(report.to_dict(), indent=2).encode())
    sidecar.audit.append({
        "principal": who.name, "groups": sorted(who.groups), "mode": "control",
        "action": "erase", "erasure": report.id, "polyseme": polyseme,
        "subject": report.subject, "rows": report.rows_removed, "products": report.products,
        "outcome": "ok" if report.verified else "error",
    })
    if report.traces:
        raise ErasureError(
            f"erasure {report.id} left traces of the subject: {'; '.join(report.traces[:5])}",
            hint="run the same erasure again; if traces remain, report it with the erasure id")
    return report


def _subject(sidecar: Sidecar, polyseme: str, value: str) -> str:
    digest = hmac.new(sidecar._mask_key.encode(), f"{polyseme}\0{value}".encode(),
                      hashlib.sha256)
    return digest.hexdigest()[:32]


def _matches(columns: list[str], value: str) -> str:
    return " OR ".join(f"coalesce(CAST({quote(c)} AS VARCHAR) = {literal(value)}, false)"
                       for c in columns)


def _condition(columns: list[str], value: str) -> rewrite.RowCondition:
    """The rows holding ``value`` in those of ``columns`` a release's files have."""

    def matching(_: Release, present: dict[str, str]) -> str | None:
        used = [c for c in columns if c in present]
        return _matches(used, value) if used else None

    return matching


def _holds(text: str, value: str) -> bool:
    """True when a stored string is the value, or a message naming it as a whole word (not a
    digest or file name that happens to contain the same characters)."""
    if text == value:
        return True
    if " " not in text or value not in text:
        return False
    return re.search(rf"(?<![\w-]){re.escape(value)}(?![\w-])", text) is not None


def _scrub(node: Any, value: str) -> Any:
    """``node`` with every string holding ``value`` replaced; JSON held in strings (Delta
    statistics) is scrubbed inside and written back as JSON."""
    if isinstance(node, str):
        if node.startswith("{") and value in node:
            try:
                inner = json.loads(node)
            except ValueError:
                inner = None
            if isinstance(inner, dict):
                return json.dumps(_scrub(inner, value), separators=(",", ":"))
        return "<erased>" if _holds(node, value) else node
    if isinstance(node, list):
        return [_scrub(item, value) for item in node]
    if isinstance(node, dict):
        if "numRecords" in node and _traces(node, value):
            # Delta file statistics: bounds without the value would be wrong, so drop them
            node = {k: v for k, v in node.items() if k not in ("minValues", "maxValues")}
        return {k: _scrub(v, value) for k, v in node.items()}
    return node


def _traces(node: Any, value: str) -> bool:
    if isinstance(node, str):
        if node.startswith("{") and value in node:
            try:
                return _traces(json.loads(node), value)
            except ValueError:
                pass
        return _holds(node, value)
    if isinstance(node, list):
        return any(_traces(item, value) for item in node)
    if isinstance(node, dict):
        return any(_traces(v, value) for v in node.values())
    return False


def _json_documents(file: Path) -> list[Any]:
    """A JSON file's documents: one, or one per line (Delta commits)."""
    text = file.read_text(encoding="utf-8")
    if file.parent.name == "_delta_log":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return [json.loads(text)]


def _scrub_metadata(root: Path, targets: dict[str, dict[str, list[str]]], value: str
                    ) -> list[str]:
    """Take the value out of manifests (profiles, check samples), run records and Delta
    commit statistics; returns the files changed."""
    changed: list[str] = []
    files: list[Path] = []
    for key in targets:
        folder = ProductStorage(root, key).folder
        files += sorted((folder / "releases").glob("*.json"))
        files += sorted(folder.glob("ports/*/_delta_log/*.json"))
    files += sorted((root / "runs").glob("*.json"))
    for file in files:
        if value.encode() not in file.read_bytes():
            continue
        documents = _json_documents(file)
        if not any(_traces(d, value) for d in documents):
            continue
        scrubbed = [_scrub(d, value) for d in documents]
        if file.parent.name == "_delta_log":
            text = "".join(json.dumps(d, separators=(",", ":")) + "\n" for d in scrubbed)
        else:
            text = json.dumps(scrubbed[0], indent=2)
        write_atomic(file, text.encode())
        changed.append(str(file.relative_to(root)))
    return changed


def _verify(session: DuckDBSession, root: Path, targets: dict[str, dict[str, list[str]]],
            value: str) -> tuple[int, list[str]]:
    """Read every Parquet file in each port's folder (released or not) and every JSON file
    of each product: the value must be nowhere."""
    checked = 0
    traces: list[str] = []
    for key, ports in targets.items():
        storage = ProductStorage(root, key)
        for port, columns in ports.items():
            for file in sorted(storage.port_path(port).glob("*.parquet")):
                checked += 1
                source = f"read_parquet({literal(str(file))})"
                present = set(session.table(f"DESCRIBE SELECT * FROM {source}")
                              .column("column_name").to_pylist())
                used = [c for c in columns if c in present]
                if used and session.scalar(
                        f"SELECT count(*) FROM {source} WHERE {_matches(used, value)}"):
                    traces.append(f"{key} {port}: rows in {file.name}")
        for file in sorted(storage.folder.rglob("*.json")):
            checked += 1
            if value.encode() in file.read_bytes() and any(
                    _traces(d, value) for d in _json_documents(file)):
                traces.append(f"{key}: {file.relative_to(storage.folder)}")
    return checked, traces
