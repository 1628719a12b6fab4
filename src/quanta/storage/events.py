"""The mesh's event log: what each product's runner reacts to instead of a central scheduler.

One append-only NDJSON file in the storage root (``events/events.ndjson``). A build appends a
``release`` event after it commits a release; ``quanta trigger`` appends a ``trigger`` event.
Every event has a sequence number, so each product's runner keeps its own cursor and can
replay what it has not handled yet after a crash. Appends hold a file lock, are flushed and
fsynced; a line torn by a crash mid-append is ignored by readers and cut by the next writer.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from quanta.errors import StorageError
from quanta.storage.locks import file_lock
from quanta.storage.manifest import Record

EventKind = Literal["release", "trigger"]


class MeshEvent(Record):
    """One fact a product's runner may react to."""

    seq: int
    at: datetime
    kind: EventKind
    product: str
    release: int | None = None
    inputs: dict[str, int] = Field(
        default_factory=dict, description="release: input product → release it was built from")
    by: str | None = Field(None, description="trigger: who asked for the build")


class EventLog:
    """Append to and read the mesh's event log."""

    def __init__(self, storage_root: Path) -> None:
        self.file = storage_root / "events" / "events.ndjson"
        self._events: list[MeshEvent] = []
        self._offset = 0  # bytes of the file already parsed into _events

    def append(self, kind: EventKind, product: str, *, release: int | None = None,
               inputs: dict[str, int] | None = None, by: str | None = None) -> MeshEvent:
        """Append one event durably and return it with its sequence number."""
        self.file.parent.mkdir(parents=True, exist_ok=True)
        with file_lock(self.file):
            last = self._tail_seq()
            event = MeshEvent(seq=last + 1, at=datetime.now(UTC), kind=kind, product=product,
                              release=release, inputs=inputs or {}, by=by)
            line = event.model_dump_json(exclude_defaults=True).encode() + b"\n"
            try:
                with open(self.file, "ab") as handle:
                    handle.write(line)
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as exc:
                raise StorageError(f"cannot append to the event log {self.file}: "
                                   f"{exc.strerror or exc}",
                                   hint="check free disk space and permissions") from None
        return event

    def read(self, after: int = 0) -> list[MeshEvent]:
        """Every complete event with a sequence number above ``after``, oldest first.

        A runner reads the log on every poll, so what was parsed is kept and only the bytes
        appended since are read (a log that shrank, i.e. was replaced, is read again whole).
        """
        try:
            size = self.file.stat().st_size
        except FileNotFoundError:
            self._events, self._offset = [], 0
            return []
        if size < self._offset:
            self._events, self._offset = [], 0
        if size > self._offset:
            with open(self.file, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read(size - self._offset)
            end = data.rfind(b"\n") + 1  # the part after the last newline is torn
            self._events += [e for e in map(_parse, data[:end].split(b"\n")[:-1])
                             if e is not None]
            self._offset += end
        return [e for e in self._events if e.seq > after]

    def last_seq(self) -> int:
        """The sequence number of the newest event (0 when there is none)."""
        events = self.read()
        return events[-1].seq if events else 0

    def stamp(self) -> int:
        """Changes whenever an event is appended (cheap, for polling)."""
        try:
            return self.file.stat().st_size
        except FileNotFoundError:
            return 0

    def _tail_seq(self) -> int:
        """The last complete event's number; cuts a torn last line left by a crash. Reads
        only the end of the log (the whole log when its last lines are unreadable)."""
        try:
            size = self.file.stat().st_size
        except FileNotFoundError:
            return 0
        with open(self.file, "r+b") as handle:
            start = max(0, size - _TAIL_BYTES)
            handle.seek(start)
            data = handle.read()
            end = data.rfind(b"\n") + 1
            if start and not end:  # no line ends in the tail read: look at the whole log
                start = 0
                handle.seek(0)
                data = handle.read()
                end = data.rfind(b"\n") + 1
            if end < len(data):
                handle.truncate(start + end)
            lines = data[:end].split(b"\n")[:-1]
            if start:
                lines = lines[1:]  # the first one may be cut by the seek
        for line in reversed(lines):
            event = _parse(line)
            if event is not None:
                return event.seq
        if start:
            return max((e.seq for e in EventLog(self.file.parent.parent).read()), default=0)
        return 0


_TAIL_BYTES = 64 * 1024


def _parse(line: bytes) -> MeshEvent | None:
    if not line.strip():
        return None
    try:
        return MeshEvent.model_validate(json.loads(line))
    except (ValueError, ValidationError):
        return None
