"""Durable file writes: a reader sees the old file or the whole new one, never a part."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from quanta.errors import StorageError


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temp(target: Path, data: bytes) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise StorageError(f"cannot write {target}: {exc.strerror or exc}",
                           hint="check free disk space and permissions") from None
    return temp


def write_atomic(target: Path, data: bytes) -> None:
    """Replace ``target`` with ``data`` atomically (temp file, fsync, rename, fsync folder)."""
    temp = _write_temp(target, data)
    os.replace(temp, target)
    _fsync_dir(target.parent)


def create_atomic(target: Path, data: bytes) -> bool:
    """Create ``target`` atomically unless it exists; False when another writer won."""
    temp = _write_temp(target, data)
    try:
        os.link(temp, target)
    except FileExistsError:
        return False
    finally:
        temp.unlink(missing_ok=True)
    _fsync_dir(target.parent)
    return True


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
