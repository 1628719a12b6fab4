"""Rewriting committed releases without some of their rows: the machinery of erasure and
retention, the two operations allowed to change what a committed release holds.

``plan`` writes, for every port of every kept release whose files hold rows matching a
condition, new files without those rows (DuckDB ``COPY``), and changes nothing else. ``swap``
then points each release at its new files, one atomic manifest write per release
(``ProductStorage.amend``; the latest release's files also become a new Delta version), and
only then deletes the old files. A failure while planning deletes the new files, so nothing
has changed; a crash during the swap is finished by planning and swapping again, since a
release already rewritten has no matching rows left.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quanta.engine.duckdb import DuckDBSession, literal
from quanta.errors import QuantaError, StorageError
from quanta.storage import ProductStorage, Release
from quanta.storage.products import FILE_BYTES, ROW_GROUP_ROWS

RowCondition = Callable[[Release, dict[str, str]], str | None]
"""The rows to remove from one port: given the release and the columns of its files (name →
DuckDB type), a SQL condition over those columns, or None when this release has nothing to
remove. It may raise a QuantaError to stop the whole rewrite before anything changed. Rows
for which the condition is null are kept."""

Amendment = Callable[[Release], dict[str, Any]]
"""The manifest fields to change besides the ports (e.g. the erasure ids), given the
release as it was."""


@dataclass
class PortRewrite:
    """One port of one release written again without the matching rows (not yet swapped)."""

    storage: ProductStorage
    release: Release
    port: str
    old: list[Path]
    new: list[Path]
    removed: int

    @property
    def product(self) -> str:
        return self.storage.key

    @property
    def rows_left(self) -> int:
        return self.release.ports[self.port].rows - self.removed


def plan(session: DuckDBSession, root: Path, targets: Mapping[str, Mapping[str, RowCondition]],
         *, dry_run: bool = False, operation: str = "rewrite",
         error: type[QuantaError] = QuantaError) -> list[PortRewrite]:
    """Write every kept release's files of the ``targets`` (product key → port → condition)
    without the matching rows; with ``dry_run`` only count them. Nothing is swapped yet; on
    any failure the new files are deleted and ``error`` says that nothing changed."""
    rewrites: list[PortRewrite] = []
    try:
        for key, ports in targets.items():
            storage = ProductStorage(root, key)
            for release in storage.releases():
                for port, condition in ports.items():
                    rewrite = _plan_port(session, storage, release, port, condition, dry_run)
                    if rewrite is not None:
                        rewrites.append(rewrite)
    except BaseException as exc:
        discard(rewrites)
        if isinstance(exc, QuantaError):
            raise
        if isinstance(exc, Exception):
            raise error(f"{operation} stopped before changing anything: {exc}",
                        hint="fix the cause (disk space, permissions) and run it again"
                        ) from None
        raise
    return rewrites


def swap(rewrites: list[PortRewrite], amend: Amendment, *, operation: str = "rewrite",
         error: type[QuantaError] = QuantaError) -> None:
    """Point each release at its new files (one atomic manifest write each, with the fields
    ``amend`` gives), then delete the old files."""
    by_release: dict[tuple[str, int], list[PortRewrite]] = {}
    for rewrite in rewrites:
        by_release.setdefault((rewrite.product, rewrite.release.release), []).append(rewrite)
    for group in by_release.values():
        storage = group[0].storage
        release = storage.release(group[0].release.release)
        latest = storage.latest()
        is_latest = latest is not None and latest.release == release.release
        ports = dict(release.ports)
        for rewrite in group:
            try:
                ports[rewrite.port] = storage.replace_files(release, rewrite.port, rewrite.new,
                                                            is_latest)
            except (OSError, StorageError) as exc:
                raise error(f"could not rewrite {storage.key} release {release.release}: {exc}",
                            hint=f"run the same {operation} again to finish it") from None
        storage.amend(release.model_copy(update={**amend(release), "ports": ports}))
    for rewrite in rewrites:
        for file in rewrite.old:
            file.unlink(missing_ok=True)


def discard(rewrites: list[PortRewrite]) -> None:
    """Delete the new files of rewrites that will not be swapped."""
    for rewrite in rewrites:
        for file in rewrite.new:
            file.unlink(missing_ok=True)


def _plan_port(session: DuckDBSession, storage: ProductStorage, release: Release, port: str,
               condition: RowCondition, dry_run: bool) -> PortRewrite | None:
    if port not in release.ports:
        return None
    storage.verify(release, [port])
    old = storage.data_files(release, port)
    if not old:
        return None
    source = f"read_parquet([{', '.join(literal(str(f)) for f in old)}])"
    columns = dict(session.rows(
        f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {source})"))
    where = condition(release, columns)
    if where is None:
        return None
    matching = f"coalesce(({where}), false)"
    removed = int(session.scalar(f"SELECT count(*) FROM {source} WHERE {matching}"))
    if removed == 0:
        return None
    new: list[Path] = []
    if not dry_run:
        new = session.write_parquet(f"SELECT * FROM {source} WHERE NOT {matching}",
                                    storage.port_path(port), ROW_GROUP_ROWS, FILE_BYTES)
    return PortRewrite(storage, release, port, old, new, removed)
