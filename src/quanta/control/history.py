"""Release history as code: which old releases each product keeps, and ``quanta vacuum``.

A product's rule is its spec's ``history`` (else mesh.yaml's ``storage.history``, else keep
every release): keep the ``keep`` newest, and those superseded less than ``max_age`` ago. The
latest release, every release a product input of the mesh pins (``release: N`` or an
address ``@N``) and the newest release of each major interface version (``as_of vN``) are
never expired.

``vacuum`` works product by product under the product's build lock (a build and a vacuum of
one product never overlap), in an order that a crash cannot break:

1. each expiring release gets its tombstone (``releases/expired/NNNNNN.json``, atomic), and
   only then loses its manifest: from the tombstone on, reads of it are answered with
   ``ReleaseExpiredError``;
2. the data files its tombstone lists that no live release references are deleted;
3. the tombstone records ``reclaimed_at``.

A vacuum killed anywhere is finished by the next one (tombstones without ``reclaimed_at``
are reclaimed again; deleting a file that is gone is a no-op), so it is idempotent. Delta
logs are left alone: readers read a release's own file list, and delta-rs' vacuum would
delete files of older Delta versions that kept releases still read.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from quanta.address import Address
from quanta.control.grants import owns
from quanta.errors import AddressError
from quanta.sidecar.access import AuthorizationError
from quanta.sidecar.core import Sidecar
from quanta.sidecar.principals import Principal
from quanta.spec.durations import parse_duration
from quanta.spec.mesh import Mesh
from quanta.spec.models import ProductInput
from quanta.storage import ProductStorage, Release
from quanta.storage.files import write_atomic
from quanta.storage.history import ExpiredRelease, HistoryPlan, HistoryRule, plan
from quanta.storage.locks import BuildLock


@dataclass
class ProductVacuum:
    """What a vacuum did (or, dry, would do) to one product's release history."""

    product: str
    rule: str
    kept: dict[int, str] = field(default_factory=dict)  # release → why it stays
    expired: list[int] = field(default_factory=list)  # expired by this run
    oldest_available: int | None = None
    files_deleted: int = 0
    bytes_reclaimed: int = 0
    skipped: str | None = None  # why nothing was done (a build holds the lock)
    orphans: int = 0  # files left by killed builds, deleted (counted in files_deleted)


@dataclass
class VacuumReport:
    """One vacuum run over some products."""

    id: str
    requested_by: str
    started_at: str
    dry_run: bool
    products: list[ProductVacuum] = field(default_factory=list)
    finished_at: str | None = None

    @property
    def files_deleted(self) -> int:
        return sum(p.files_deleted for p in self.products)

    @property
    def bytes_reclaimed(self) -> int:
        return sum(p.bytes_reclaimed for p in self.products)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "files_deleted": self.files_deleted,
                "bytes_reclaimed": self.bytes_reclaimed}


def history_rule(mesh: Mesh, key: str) -> HistoryRule:
    """The release history rule of product ``key`` (its own, else the mesh's default)."""
    declared = mesh.spec.release_history(mesh.product(key).spec)
    age = parse_duration(declared.max_age) if declared.max_age is not None else None
    return HistoryRule(declared.keep, age, declared.describe())


def pinned_releases(mesh: Mesh, key: str) -> dict[int, list[str]]:
    """Releases of ``key`` that product inputs of the mesh pin → the products pinning them."""
    pins: dict[int, list[str]] = {}
    for consumer in mesh.products.values():
        for item in consumer.spec.inputs:
            if not isinstance(item, ProductInput):
                continue
            try:
                address = Address.parse(item.product)
            except AddressError:
                continue  # reported by the spec loader
            number = item.release or address.version
            if address.product_key == key and number is not None:
                pins.setdefault(number, []).append(consumer.key)
    return pins


def plan_history(mesh: Mesh, key: str, now: datetime | None = None) -> HistoryPlan:
    """Which live releases of ``key`` stay (and why) and which would expire now."""
    storage = ProductStorage(mesh.storage_root, key)
    return plan(storage.releases(), storage.expired_releases(), history_rule(mesh, key),
                pinned_releases(mesh, key), now or datetime.now(UTC))


def vacuum(sidecar: Sidecar, products: list[str] | None = None,
           principal: Principal | None = None, dry_run: bool = False,
           now: datetime | None = None) -> VacuumReport:
    """Expire the releases each product's history rule lets go (the products named, else
    every product) and delete the data files no live release references; with ``dry_run``,
    say what would go and change nothing."""
    who = principal or sidecar.operator()
    mesh = sidecar.mesh
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    keys = ([mesh.product(Address.parse(p)).key for p in dict.fromkeys(products)] if products
            else sorted(mesh.products))
    refused = [k for k in keys if not owns(sidecar, who, k)]
    if refused:
        raise AuthorizationError(
            f"{who} may not vacuum {', '.join(refused)}",
            hint="the owners do (the group named like owner.team) and the mesh operator")
    started = datetime.now(UTC)
    report = VacuumReport(id=started.strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(3),
                          requested_by=who.name, started_at=started.isoformat(),
                          dry_run=dry_run)
    for key in keys:
        report.products.append(_vacuum_product(mesh, key, report.id, moment, dry_run))
    report.finished_at = datetime.now(UTC).isoformat()
    if dry_run:
        return report
    root = mesh.storage_root
    write_atomic(root / "vacuum" / f"{report.id}.json",
                 json.dumps(report.to_dict(), indent=2).encode())
    sidecar.audit.append({
        "principal": who.name, "groups": sorted(who.groups), "mode": "control",
        "action": "history.vacuum", "vacuum": report.id, "products": keys,
        "expired": {p.product: p.expired for p in report.products if p.expired},
        "files": report.files_deleted, "bytes": report.bytes_reclaimed,
        "skipped": {p.product: p.skipped for p in report.products if p.skipped},
        "outcome": "ok",
    })
    return report


def _vacuum_product(mesh: Mesh, key: str, run: str, now: datetime, dry_run: bool
                    ) -> ProductVacuum:
    storage = ProductStorage(mesh.storage_root, key)
    rule = history_rule(mesh, key)
    done = ProductVacuum(key, rule.text)
    lock = BuildLock(mesh.storage_root, key)
    if not dry_run and not lock.acquire("vacuum"):
        holder = lock.holder()
        done.skipped = (f"a build holds its lock (pid {holder.get('pid')}); vacuum it again "
                        "later" if holder else "a build holds its lock; vacuum it again later")
        return done
    try:
        releases = storage.releases()
        tombstones = storage.expired_releases()
        chosen = plan(releases, tombstones, rule, pinned_releases(mesh, key), now)
        done.kept = dict(sorted(chosen.kept.items(), reverse=True))
        done.expired = sorted(chosen.expired)
        live = [r for r in releases if r.release in chosen.kept]
        done.oldest_available = live[0].release if live else None
        gone = [ExpiredRelease(
            product=key, release=r.release, interface_version=r.interface_version,
            committed_at=r.committed_at, expired_at=now, vacuum=run, rule=rule.text,
            files={port: written.files for port, written in r.ports.items()})
            for r in releases if r.release in chosen.expired]
        if dry_run:
            pending = [t for t in tombstones if t.reclaimed_at is None] + gone
            done.files_deleted, done.bytes_reclaimed = _unneeded(storage, pending, live)
            orphans = _orphans(storage, releases, pending)
            done.orphans = len(orphans)
            done.files_deleted += len(orphans)
            done.bytes_reclaimed += sum(orphans.values())
            return done
        for tombstone in gone:
            storage.expire(tombstone)
        done.files_deleted, done.bytes_reclaimed = _reclaim(storage, now)
        orphans = _orphans(storage, storage.releases(),
                           [t for t in storage.expired_releases() if t.reclaimed_at is None])
        for path in orphans:
            path.unlink(missing_ok=True)
        done.orphans = len(orphans)
        done.files_deleted += len(orphans)
        done.bytes_reclaimed += sum(orphans.values())
        return done
    finally:
        lock.release()


def _orphans(storage: ProductStorage, releases: list[Release],
             tombstones: list[ExpiredRelease]) -> dict[Path, int]:
    """Data files no release, expired release or the port's current Delta version lists:
    left by a build that was killed before its release (their size by path). Called with the
    product's build lock held, so no build is writing one now."""
    needed = _needed(releases) | {(port, f.path) for t in tombstones
                                  for port, files in t.files.items() for f in files}
    found: dict[Path, int] = {}
    ports = storage.folder / "ports"
    for folder in sorted(ports.iterdir()) if ports.is_dir() else []:
        if not folder.is_dir():
            continue
        current = storage.delta_files(folder.name)
        for path in folder.glob("*.parquet"):
            if (folder.name, path.name) not in needed and path.name not in current:
                found[path] = path.stat().st_size
    return found


def _needed(live: list[Release]) -> set[tuple[str, str]]:
    """(port, file name) of every data file the ``live`` releases reference."""
    return {(port, f.path) for r in live for port, written in r.ports.items()
            for f in written.files}


def _unneeded(storage: ProductStorage, tombstones: list[ExpiredRelease], live: list[Release]
              ) -> tuple[int, int]:
    """Files (and bytes) of ``tombstones`` that exist and no ``live`` release needs."""
    needed = _needed(live)
    found: dict[tuple[str, str], int] = {}
    for tombstone in tombstones:
        for port, files in tombstone.files.items():
            for item in files:
                path = storage.port_path(port) / item.path
                if (port, item.path) not in needed and path.exists():
                    found[(port, item.path)] = path.stat().st_size
    return len(found), sum(found.values())


def _reclaim(storage: ProductStorage, now: datetime) -> tuple[int, int]:
    """Delete the files of expired releases that no live release references; finishes
    what a vacuum killed midway left (tombstones not yet reclaimed)."""
    pending = [t for t in storage.expired_releases() if t.reclaimed_at is None]
    if not pending:
        return 0, 0
    needed = _needed(storage.releases())
    deleted = reclaimed = 0
    for tombstone in pending:
        storage.expire(tombstone)  # a vacuum killed between tombstone and manifest
        for port, files in tombstone.files.items():
            for item in files:
                if (port, item.path) in needed:
                    continue
                path = storage.port_path(port) / item.path
                try:
                    size = path.stat().st_size
                    path.unlink()
                except FileNotFoundError:
                    continue
                deleted += 1
                reclaimed += size
        storage.mark_reclaimed(tombstone.model_copy(update={"reclaimed_at": now}))
    return deleted, reclaimed
