"""What a product's inputs are now, compared cheaply with what its latest release read.

The runtime uses this so that a trigger never rebuilds a product from the same inputs twice:
files and SQLite databases by their fingerprint (names, sizes, modification times), product
inputs by the release they resolve to (for a product served by another unit, the release
that unit serves now). A PostgreSQL table cannot be probed cheaply, so it is
unknown (None): only an interval trigger or a manual one rebuilds from it.
"""

from __future__ import annotations

from pathlib import Path

from quanta.address import Address
from quanta.errors import QuantaError
from quanta.inputs.base import RemoteInputs
from quanta.inputs.databases import sqlite_mark
from quanta.inputs.files import fingerprint, resolve_files
from quanta.spec.models import FileInput, ProductInput, ProductSpec, SqliteInput
from quanta.storage import InputRead, ProductStorage, Release

Identity = dict[str, str | None]


def current_inputs(spec: ProductSpec, product_folder: Path, storage_root: Path,
                   remote: RemoteInputs | None = None) -> Identity:
    """Each input's identity now (None when it cannot be told or cannot be read); product
    inputs ``remote`` serves are asked of the unit serving them."""
    return {item.name: _probe(item, product_folder, storage_root, remote)
            for item in spec.inputs}


def recorded_inputs(release: Release) -> Identity:
    """Each input's identity as the release recorded it."""
    return {name: _recorded(read) for name, read in release.inputs.items()}


def changed_inputs(now: Identity, before: Identity, names: list[str] | None = None
                   ) -> list[str]:
    """Inputs (of ``names``, default all) that differ or cannot be told to be the same."""
    return [name for name, value in now.items()
            if (names is None or name in names)
            and (value is None or before.get(name) != value)]


def _probe(item: object, product_folder: Path, storage_root: Path,
           remote: RemoteInputs | None = None) -> str | None:
    try:
        if isinstance(item, FileInput):
            files = resolve_files(product_folder, item.path)
            return fingerprint(files) if files else None
        if isinstance(item, SqliteInput):
            path = (product_folder / item.path).resolve()
            return sqlite_mark(path) if path.is_file() else None
        if isinstance(item, ProductInput):
            address = Address.parse(item.product)
            pinned = item.release or address.version
            if pinned:
                return f"release:{pinned}"
            if remote is not None and remote.serves(address.product_key):
                served = remote.release(item)
                return f"release:{served}" if served is not None else None
            numbers = ProductStorage(storage_root, address.product_key).release_numbers()
            return f"release:{numbers[-1]}" if numbers else None
    except (OSError, QuantaError):
        return None
    return None


def _recorded(read: InputRead) -> str | None:
    if read.type == "product":
        return f"release:{read.release}" if read.release is not None else None
    return read.fingerprint
