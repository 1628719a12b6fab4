"""Per-product storage: one Delta table per output port, release manifests, run records.

Layout under the mesh's storage root::

    products/<domain>/<product>/ports/<port>/      Delta table
    products/<domain>/<product>/releases/NNNNNN.json   one manifest per release
    products/<domain>/<product>/releases/expired/NNNNNN.json   tombstones (quanta vacuum)
    runs/<run_id>.json                               one record per build attempt

A release exists once its manifest exists; the manifest is written last and atomically, so
a build that dies halfway leaves the previous release as the latest one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from datetime import datetime
from pathlib import Path
from typing import NoReturn

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable, Schema
from deltalake.exceptions import DeltaError
from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions
from pydantic import ValidationError

from quanta.errors import NotFoundError, StorageError
from quanta.storage.files import create_atomic, sha256_file, write_atomic
from quanta.storage.history import (
    EXPIRED_FOLDER,
    ExpiredRelease,
    expired_error,
    expired_numbers,
    read_tombstone,
    read_tombstones,
    write_tombstone,
)
from quanta.storage.lifecycle import Lifecycle, read_lifecycle, write_lifecycle
from quanta.storage.manifest import DataFile, PortRelease, Release, RunRecord

_RELEASE_FILE = re.compile(r"^(\d{6,})\.json$")
_verified: dict[tuple[str, int, int], str] = {}
# Manifests are immutable once committed and listings change only when a release is added;
# both are cached by modification time so a read does not parse JSON again.
_manifests: dict[str, tuple[tuple[int, int], Release]] = {}
_listings: dict[str, tuple[int, list[int]]] = {}
# Data files are written in key order (see the build's writer) in small row groups, so a
# lookup by key reads one row group of one file; files stay near the usual Delta size.
ROW_GROUP_ROWS = 16_384
FILE_BYTES = 128 * 1024 * 1024


def schema_hash(schema: pa.Schema) -> str:
    """A short stable digest of column names, types and nullability."""
    shape = [(f.name, str(f.type), f.nullable) for f in schema]
    return hashlib.sha256(json.dumps(shape).encode()).hexdigest()[:16]


class ProductStorage:
    """Read and write one product's ports, releases and their integrity facts."""

    def __init__(self, storage_root: Path, product_key: str) -> None:
        domain, _, name = product_key.partition(".")
        self.key = product_key
        self.folder = storage_root / "products" / domain / name
        self.release_folder = self.folder / "releases"

    # --- reading ---------------------------------------------------------------------------

    def release_numbers(self) -> list[int]:
        """Numbers of every committed release still available (not expired), oldest first."""
        try:
            stamp = self.release_folder.stat().st_mtime_ns
        except FileNotFoundError:
            return []
        key = str(self.release_folder)
        cached = _listings.get(key)
        if not (cached and cached[0] == stamp):
            numbers = []
            for entry in self.release_folder.iterdir():
                match = _RELEASE_FILE.match(entry.name)
                if match:
                    numbers.append(int(match.group(1)))
            cached = _listings[key] = (stamp, sorted(numbers))
        # a tombstone is written before its manifest goes: it decides
        expired = expired_numbers(self.expired_folder)
        return [n for n in cached[1] if n not in expired]

    def releases(self) -> list[Release]:
        """Every release still available, oldest first."""
        return [self.release(n) for n in self.release_numbers()]

    def latest(self) -> Release | None:
        """The newest committed release, or None before the first build."""
        numbers = self.release_numbers()
        return self.release(numbers[-1]) if numbers else None

    def release(self, number: int) -> Release:
        """Release ``number``; ReleaseExpiredError when it expired, NotFoundError naming the
        ones available when there was none."""
        file = self._release_file(number)
        if number in expired_numbers(self.expired_folder):
            self._raise_expired(number)
        try:
            stat = file.stat()
            cached = _manifests.get(str(file))
            if cached and cached[0] == (stat.st_mtime_ns, stat.st_size):
                return cached[1]
            release = Release.model_validate_json(file.read_bytes())
            _manifests[str(file)] = ((stat.st_mtime_ns, stat.st_size), release)
            return release
        except FileNotFoundError:
            if number in expired_numbers(self.expired_folder):  # expired meanwhile
                self._raise_expired(number)
            numbers = self.release_numbers()
            known = (f"releases {numbers[0]}..{numbers[-1]}" if numbers else
                     "no releases yet")
            raise NotFoundError(
                f"{self.key} has no release {number}",
                hint=f"{self.key} has {known}; see 'quanta versions'",
                code="release_not_found",
            ) from None
        except (ValidationError, OSError) as exc:
            raise StorageError(
                f"release manifest {file} is unreadable: {exc}",
                hint="the release may have been tampered with; rebuild the product",
            ) from None

    def release_as_of(self, moment: datetime) -> Release | None:
        """The release that was current at ``moment`` (None if there was none yet);
        ReleaseExpiredError when that release has expired."""
        current = after = None
        for release in self.releases():
            if release.committed_at <= moment:
                current = release
            elif after is None:
                after = release
        # an expired release between the two live ones may have been current then
        low = current.release if current else 0
        high = after.release if after else None
        for number in sorted(expired_numbers(self.expired_folder), reverse=True):
            if number <= low or (high is not None and number >= high):
                continue
            gone = read_tombstone(self.expired_folder, number)
            if gone is not None and gone.committed_at <= moment:
                raise expired_error(self.key, gone, self.oldest(), asked=moment.isoformat())
        return current

    # --- release history: expired releases ------------------------------------------------

    @property
    def expired_folder(self) -> Path:
        return self.release_folder / EXPIRED_FOLDER

    def oldest(self) -> Release | None:
        """The oldest release still available."""
        numbers = self.release_numbers()
        return self.release(numbers[0]) if numbers else None

    def expired_numbers(self) -> list[int]:
        """Numbers of the releases that expired, oldest first."""
        return sorted(expired_numbers(self.expired_folder))

    def expired_releases(self) -> list[ExpiredRelease]:
        """Tombstones of the releases that expired, oldest first."""
        return read_tombstones(self.expired_folder)

    def expire(self, tombstone: ExpiredRelease) -> None:
        """Expire a release: its tombstone first, then its manifest goes (a rerun after a
        crash between the two finishes the job). Its data files are left to the caller."""
        write_tombstone(self.expired_folder, tombstone)
        self._release_file(tombstone.release).unlink(missing_ok=True)
        _manifests.pop(str(self._release_file(tombstone.release)), None)

    def mark_reclaimed(self, tombstone: ExpiredRelease) -> None:
        """Record that the files of an expired release no kept release needs are gone."""
        write_tombstone(self.expired_folder, tombstone, replace=True)

    def _raise_expired(self, number: int) -> NoReturn:
        tombstone = read_tombstone(self.expired_folder, number)
        if tombstone is None:
            raise NotFoundError(f"{self.key} has no release {number}", code="release_not_found")
        raise expired_error(self.key, tombstone, self.oldest())

    def port_path(self, port: str) -> Path:
        return self.folder / "ports" / port

    def delta_files(self, port: str) -> set[str]:
        """Names of the data files the port's current Delta version lists (empty when it has
        no readable Delta log): files a Delta reader still needs, released or not."""
        try:
            return {Path(uri).name for uri in DeltaTable(str(self.port_path(port))).file_uris()}
        except (DeltaError, OSError):
            return set()

    def data_files(self, release: Release, port: str) -> list[Path]:
        """Absolute paths of the Parquet files of ``port`` at ``release``."""
        return [self.port_path(port) / f.path for f in self._port(release, port).files]

    def arrow_schema(self, release: Release, port: str) -> pa.Schema:
        """The Arrow schema of ``port`` at ``release`` (from the Delta log)."""
        version = self._port(release, port).delta_version
        table = DeltaTable(str(self.port_path(port)), version=version)
        return pa.schema(table.schema().to_arrow())

    def verify(self, release: Release, ports: list[str] | None = None) -> None:
        """Check every data file against its recorded size and SHA-256; raise if any differs."""
        for name in ports or list(release.ports):
            for item in self._port(release, name).files:
                path = self.port_path(name) / item.path
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    raise StorageError(
                        f"data file of {self.key} port '{name}' release {release.release} is "
                        f"missing: {item.path}", hint="rebuild the product to make a new release",
                        code="integrity_failed",
                    ) from None
                cache_key = (str(path), stat.st_size, stat.st_mtime_ns)
                digest = _verified.get(cache_key)
                if digest is None:
                    digest = sha256_file(path) if stat.st_size == item.size else "size-differs"
                    _verified[cache_key] = digest
                if digest != item.sha256:
                    raise StorageError(
                        f"data file of {self.key} port '{name}' release {release.release} does "
                        f"not match its recorded SHA-256: {item.path}",
                        hint="the file was changed or corrupted after release; rebuild the "
                        "product or restore the file", code="integrity_failed",
                    )

    # --- writing ---------------------------------------------------------------------------

    def commit_port(self, port: str, files: list[Path], schema: pa.Schema,
                    declared: pa.Schema | None = None) -> PortRelease:
        """Make ``files`` (Parquet, written into the port's folder) the port's next Delta
        version, replacing the previous one's; unreleased until the release is committed.

        ``schema`` is every stored column (nullability as declared); ``declared`` is the
        port's own part of it when derived columns are stored too, and is what the schema
        hash covers.
        """
        path = self._checked_files(port, files, schema)
        try:
            actions, data_files, rows = _add_files(files)
            if (path / "_delta_log").is_dir():
                replacing: list[AddAction | RemoveAction] = [*actions]
                DeltaTable(str(path)).create_write_transaction(
                    replacing, mode="overwrite", schema=Schema.from_arrow(schema))
            else:
                create_table_with_add_actions(str(path), Schema.from_arrow(schema), actions)
            version = DeltaTable(str(path)).version()
        except (DeltaError, OSError) as exc:
            raise StorageError(
                f"writing port '{port}' of {self.key} failed: {exc}",
                hint="check free disk space and permissions of the storage root",
            ) from None
        return PortRelease(delta_version=version, schema_hash=schema_hash(declared or schema),
                           rows=rows, files=data_files)

    def _checked_files(self, port: str, files: list[Path], schema: pa.Schema) -> Path:
        """The port's folder, after checking that ``files`` lie in it with ``schema``'s
        columns."""
        path = self.port_path(port)
        for file in files:
            if file.parent != path:
                raise StorageError(f"{file} is not in the folder of port '{port}' of {self.key}")
            _check_columns(file, schema)
        return path

    def commit_port_files(self, port: str, keep: list[DataFile], files: list[Path],
                          schema: pa.Schema, declared: pa.Schema | None = None) -> PortRelease:
        """Make the port's next Delta version hold exactly ``keep`` (data files of its
        previous release, unchanged) and the new ``files``: an incremental build's write,
        which adds and removes files instead of rewriting all of them.

        Files a failed build added are removed again, files it removed are added back, so
        the Delta table always matches the release manifest.
        """
        path = self._checked_files(port, files, schema)
        try:
            table = DeltaTable(str(path))
            head = {Path(uri).name for uri in table.file_uris()}
            wanted = {item.path for item in keep} | {file.name for file in files}
            back = [path / item.path for item in keep if item.path not in head]
            actions, data_files, rows = _add_files(files)
            returning, _, _ = _add_files(back)
            now = int(time.time() * 1000)
            changes: list[AddAction | RemoveAction] = [
                *actions, *returning,
                *(RemoveAction(name, True, now) for name in sorted(head - wanted))]
            if changes:
                table.create_write_transaction(changes, mode="append",
                                               schema=Schema.from_arrow(schema))
            version = DeltaTable(str(path)).version()
            rows += sum(pq.ParquetFile(path / item.path).metadata.num_rows for item in keep)
        except (DeltaError, OSError) as exc:
            raise StorageError(
                f"writing port '{port}' of {self.key} failed: {exc}",
                hint="check free disk space and permissions of the storage root",
            ) from None
        return PortRelease(delta_version=version, schema_hash=schema_hash(declared or schema),
                           rows=rows, files=[*keep, *data_files])

    def commit(self, release: Release) -> Release:
        """Make ``release`` visible to readers; fails if that number was taken meanwhile."""
        data = release.model_dump_json(indent=2).encode()
        if not create_atomic(self._release_file(release.release), data):
            raise StorageError(
                f"release {release.release} of {self.key} was committed by another build",
                hint="two builds of one product ran at once; build again",
                code="release_conflict",
            )
        return release

    def replace_files(self, release: Release, port: str, files: list[Path],
                      latest: bool) -> PortRelease:
        """The port of ``release`` with its data in ``files`` instead (written into the port's
        folder, same columns); for the latest release, also a new Delta version holding them.
        Used by erasure and retention, the only operations that change a committed release."""
        written = self._port(release, port)
        _, data_files, rows = _add_files(files)
        version = written.delta_version
        if latest and files:
            delta = pa.schema(DeltaTable(str(self.port_path(port)), version=version).schema()
                              .to_arrow())
            stored = pq.read_schema(files[0])
            schema = pa.schema([f.with_nullable(delta.field(f.name).nullable)
                                if f.name in delta.names else f for f in stored])
            version = self.commit_port(port, files, schema).delta_version
        return written.model_copy(update={"files": data_files, "rows": rows,
                                          "delta_version": version})

    def amend(self, release: Release) -> Release:
        """Replace a committed release's manifest atomically (erasure and retention only: the
        data it points to changes, its number and history do not)."""
        self._release_file(release.release).stat()  # it must exist
        write_atomic(self._release_file(release.release),
                     release.model_dump_json(indent=2).encode())
        return release

    def place(self, real: Path | None) -> None:
        """Keep the product's data in ``real`` (its region's storage folder) through a link
        at the usual place; ``None``: in the storage root itself. Data is never moved: a
        product whose data already lives elsewhere gets a clear error instead."""
        folder = self.folder
        if real is None:
            if folder.is_symlink():
                raise StorageError(
                    f"the data of {self.key} lives in {folder.resolve()}, a region's storage "
                    "folder, but its spec names no region",
                    hint="set 'region' back in dataproduct.yaml, or move the data and remove "
                    f"the link {folder}", code="region_mismatch")
            return
        real = real.resolve()
        if folder.is_symlink():
            if folder.resolve() != real:
                raise StorageError(
                    f"the data of {self.key} lives in {folder.resolve()}, not in {real}",
                    hint="move the data to the region's folder and relink, or keep the region",
                    code="region_mismatch")
            return
        if folder.exists():
            raise StorageError(
                f"{self.key} already has data in {folder}; a region's data must start in the "
                "region's folder", hint=f"move {folder} to {real} and build again (quanta links "
                "it), or remove the region", code="region_mismatch")
        real.mkdir(parents=True, exist_ok=True)
        folder.parent.mkdir(parents=True, exist_ok=True)
        # relative, so the mesh folder can move with its region folders
        folder.symlink_to(os.path.relpath(real, folder.parent), target_is_directory=True)

    @property
    def lifecycle_file(self) -> Path:
        return self.folder / "lifecycle.json"

    def lifecycle(self) -> Lifecycle:
        """The product's life cycle state (active unless deprecated or retired)."""
        try:
            return read_lifecycle(self.lifecycle_file)
        except (ValidationError, ValueError) as exc:
            raise StorageError(f"the life cycle record of {self.key} is damaged: {exc}",
                               hint=f"restore {self.lifecycle_file} or remove it (active)",
                               code="lifecycle_damaged") from None

    def set_lifecycle(self, state: Lifecycle) -> None:
        write_lifecycle(self.lifecycle_file, state)

    def _release_file(self, number: int) -> Path:
        return self.release_folder / f"{number:06d}.json"

    def _port(self, release: Release, port: str) -> PortRelease:
        try:
            return release.ports[port]
        except KeyError:
            raise NotFoundError(
                f"{self.key} release {release.release} has no port '{port}'",
                hint=f"ports: {', '.join(release.ports)}", code="port_not_found",
            ) from None


def _check_columns(file: Path, schema: pa.Schema) -> None:
    written = pq.read_schema(file)
    if [(f.name, f.type) for f in written] != [(f.name, f.type) for f in schema]:
        raise StorageError(
            f"{file.name} does not hold the port's columns: "
            f"{', '.join(f'{f.name} {f.type}' for f in written)}",
            hint="this is a bug in quanta; please report it with the product's spec")


def _add_files(files: list[Path]) -> tuple[list[AddAction], list[DataFile], int]:
    """Delta add actions (row and null counts as statistics) and digests of new files."""
    actions, data_files, rows = [], [], 0
    for file in files:
        metadata = pq.ParquetFile(file).metadata
        stat = file.stat()
        stats = {"numRecords": metadata.num_rows, "nullCount": _null_counts(metadata)}
        actions.append(AddAction(file.name, stat.st_size, {}, stat.st_mtime_ns // 1_000_000,
                                 True, json.dumps(stats)))
        data_files.append(DataFile(path=file.name, size=stat.st_size,
                                   sha256=sha256_file(file)))
        rows += metadata.num_rows
    return actions, data_files, rows


def _null_counts(metadata: pq.FileMetaData) -> dict[str, int]:
    counts: dict[str, int] = {}
    unknown: set[str] = set()
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        for index in range(row_group.num_columns):
            chunk = row_group.column(index)
            stats = chunk.statistics
            if stats is None or not stats.has_null_count:
                unknown.add(chunk.path_in_schema)
                continue
            counts[chunk.path_in_schema] = counts.get(chunk.path_in_schema, 0) + stats.null_count
    return {name: n for name, n in counts.items() if name not in unknown}


class RunLog:
    """Build attempts of every product in the mesh, newest last."""

    def __init__(self, storage_root: Path) -> None:
        self.folder = storage_root / "runs"

    def record(self, run: RunRecord) -> None:
        """Store one run record durably."""
        write_atomic(self.folder / f"{run.run_id}.json", run.model_dump_json(indent=2).encode())

    def runs(self, product: str | None = None, limit: int | None = None) -> list[RunRecord]:
        """Run records (optionally of one product), oldest first, at most ``limit`` newest."""
        if not self.folder.is_dir():
            return []
        files = sorted(f for f in self.folder.glob("*.json"))
        records = []
        for file in reversed(files):
            try:
                run = RunRecord.model_validate_json(file.read_bytes())
            except (ValidationError, OSError):
                continue
            if product is None or run.product == product:
                records.append(run)
                if limit is not None and len(records) >= limit:
                    break
        return list(reversed(records))
