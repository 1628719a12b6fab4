"""The audit log: every read request, appended to a hash-chained file.

Each line holds one record, its sequence number, the previous record's hash and its own hash
(SHA-256 over the previous hash and the record). Editing, removing or reordering any record
breaks the chain; ``head.json``, rewritten after each durable batch, catches removal of the
newest records. Appends are cheap: the file is fsynced in batches by a background thread.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from quanta.storage.files import write_atomic
from quanta.storage.locks import file_lock

GENESIS = "0" * 64
FSYNC_INTERVAL = 0.05

AuditListener = Callable[[dict[str, Any]], None]


def _hash(prev: str, record: dict[str, Any]) -> str:
    body = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256((prev + body).encode()).hexdigest()


def _last_line(file: Path, size: int) -> bytes:
    """The file's last line, however long: read backwards until its start is found."""
    chunk = 65536
    with open(file, "rb") as handle:
        while True:
            start = max(0, size - chunk)
            handle.seek(start)
            data = handle.read(size - start).rstrip(b"\n")
            if b"\n" in data or start == 0:
                return data.rsplit(b"\n", 1)[-1]
            chunk *= 4


@dataclass
class AuditReport:
    """The outcome of ``quanta audit verify``."""

    records: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class AuditLog:
    """Append-only, hash-chained, batch-fsynced log of one mesh's read requests."""

    def __init__(self, folder: Path, fsync_interval: float = FSYNC_INTERVAL) -> None:
        self.folder = folder
        self.file = folder / "audit.ndjson"
        self.head_file = folder / "head.json"
        self.interval = fsync_interval
        self._lock = threading.Lock()
        self._last: tuple[int, str, int] | None = None  # seq, hash, file size after it
        self._dirty = threading.Event()
        self._closed = False
        self._flusher: threading.Thread | None = None
        # called with each record once it is written (e.g. the server's live metrics); a
        # listener must not change the record, and one that fails never fails the read
        self.listeners: list[AuditListener] = []
        self.listener_errors = 0

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Chain ``record`` onto the log; durable within one fsync interval. Listeners see
        the written record afterwards; their exceptions are counted and logged, never raised."""
        record = {"time": datetime.now(UTC).isoformat(), **record}
        with self._lock, file_lock(self.file):
            seq, prev = self._tail()
            entry = {**record, "seq": seq + 1, "prev": prev}
            entry["hash"] = _hash(prev, entry)
            line = (json.dumps(entry, sort_keys=True, separators=(",", ":"), default=str)
                    + "\n").encode()
            fd = os.open(self.file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                size = os.fstat(fd).st_size
            finally:
                os.close(fd)
            self._last = (entry["seq"], entry["hash"], size)
        self._schedule()
        for listener in list(self.listeners):
            try:
                listener(entry)
            except Exception:
                self.listener_errors += 1
                logging.getLogger("quanta.audit").debug("audit listener failed", exc_info=True)
        return entry

    def _tail(self) -> tuple[int, str]:
        """Sequence number and hash of the newest record (re-read if another process wrote)."""
        try:
            size = self.file.stat().st_size
        except FileNotFoundError:
            self.folder.mkdir(parents=True, exist_ok=True)
            return 0, GENESIS
        if self._last and self._last[2] == size:
            return self._last[0], self._last[1]
        if size == 0:
            return 0, GENESIS
        entry = json.loads(_last_line(self.file, size))
        return int(entry["seq"]), str(entry["hash"])

    def _schedule(self) -> None:
        self._dirty.set()
        if self._flusher is None:
            self._flusher = threading.Thread(target=self._flush_loop, name="quanta-audit",
                                             daemon=True)
            self._flusher.start()
            atexit.register(self.close)

    def _flush_loop(self) -> None:
        while not self._closed:
            self._dirty.wait()
            if self._closed:
                break
            self._dirty.wait(self.interval)
            try:
                self.flush()
            except Exception:  # keep flushing later batches; say what went wrong
                logging.getLogger("quanta.audit").exception("audit log flush failed")

    def flush(self) -> None:
        """Make every appended record durable now, and record the head."""
        self._dirty.clear()
        with self._lock:
            last = self._last
        if last is None or not self.file.exists():
            return
        # under the log's lock no append is half written, in this process or another
        with file_lock(self.file):
            fd = os.open(self.file, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            seq, digest = self._tail()
        with file_lock(self.head_file):
            if self.head_file.exists() and json.loads(self.head_file.read_text())["seq"] >= seq:
                return  # another writer already recorded a newer head
            write_atomic(self.head_file, json.dumps({"seq": seq, "hash": digest}).encode())

    def close(self) -> None:
        """Flush and stop the background thread."""
        if self._flusher is not None and not self._closed:
            self.flush()
        self._closed = True
        self._dirty.set()

    def tail(self, count: int = 20) -> list[dict[str, Any]]:
        """The newest ``count`` records."""
        if not self.file.exists():
            return []
        with open(self.file, "rb") as handle:
            lines = handle.read().splitlines()[-count:]
        return [json.loads(line) for line in lines if line.strip()]

    def readers(self, product: str) -> set[str]:
        """Principals who read ``product`` successfully, according to the log."""
        found: set[str] = set()
        if not self.file.exists():
            return found
        with open(self.file, encoding="utf-8") as handle:
            for line in handle:
                if product not in line:  # cheap pre-filter before parsing
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a torn last line; 'quanta audit verify' reports it
                if (record.get("outcome") == "ok" and record.get("principal")
                        and product in (record.get("snapshot") or {})):
                    found.add(str(record["principal"]))
        return found

    def verify(self) -> AuditReport:
        """Check every record's hash and link, and the head: name what was tampered with."""
        report = AuditReport(records=0)
        if not self.file.exists():
            return report
        head = json.loads(self.head_file.read_text()) if self.head_file.exists() else None
        prev, seq = GENESIS, 0
        with open(self.file, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    entry = json.loads(line)
                    stored = entry.pop("hash")
                except (ValueError, KeyError):
                    report.problems.append(f"line {number}: not an audit record")
                    continue
                if entry.get("seq") != seq + 1:
                    report.problems.append(
                        f"line {number}: sequence {entry.get('seq')} follows {seq} "
                        "(records removed or reordered)")
                if entry.get("prev") != prev:
                    report.problems.append(f"line {number}: does not link to the record "
                                           "before it (records removed, reordered or edited)")
                if _hash(str(entry.get("prev")), entry) != stored:
                    report.problems.append(f"line {number}: content does not match its hash "
                                           "(record edited)")
                prev, seq = stored, int(entry.get("seq") or seq + 1)
                report.records += 1
                if head and seq == head["seq"] and stored != head["hash"]:
                    report.problems.append(f"line {number}: differs from the record the head "
                                           "names (log rewritten)")
        if head and head["seq"] > seq:
            report.problems.append(
                f"the log ends at record {seq} but {head['seq']} were written "
                "(newest records removed)")
        return report
