"""Advisory file locks: several processes updating one small file, one build per product."""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path


@contextmanager
def file_lock(target: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<target>.lock`` while the block runs."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target.with_name(target.name + ".lock"), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class BuildLock:
    """At most one build of a product at a time, across processes and runners.

    An exclusive ``flock`` on ``<root>/runtime/<product>.lock``, taken without waiting. The
    kernel drops it when the holding process dies, so a crashed build never leaves the product
    locked; the file names the current holder for messages.
    """

    def __init__(self, storage_root: Path, product_key: str) -> None:
        self.file = storage_root / "runtime" / f"{product_key}.lock"
        self._fd: int | None = None

    def acquire(self, purpose: str = "build") -> bool:
        """Take the lock; False (at once) when another build holds it."""
        self.file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.file, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        holder = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "purpose": purpose,
                             "since": datetime.now(UTC).isoformat(timespec="seconds")})
        os.ftruncate(fd, 0)
        os.pwrite(fd, holder.encode(), 0)
        self._fd = fd
        return True

    def release(self) -> None:
        """Give the lock up (a no-op when not held)."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def is_held(self) -> bool:
        """Whether a build holds the lock now; probed without waiting and without writing
        the file, so the holder it names stays the real one."""
        self.file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.file, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops a lock taken here
        return False

    def holder(self) -> dict[str, object]:
        """Who holds (or last held) the lock, as recorded in the file."""
        try:
            value = json.loads(self.file.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}
        return value if isinstance(value, dict) else {}

    def __enter__(self) -> BuildLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
