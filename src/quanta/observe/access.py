"""The access log: who read which product when, from the sidecar's audit file.

The audit log (``<storage>/audit/audit.ndjson``, written by ``quanta.sidecar.audit``) holds
one JSON record per line. A read's record names the product releases it read in
``snapshot``; refusals before the releases were pinned (denials, refused SQL) name none,
and neither do control-port records (``mode: control``). Lines that are not records are
skipped and counted in a warning (``quanta audit verify`` says more about them).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

AUDIT_FILE = Path("audit") / "audit.ndjson"
SHOWN_LINES = 5


@dataclass(frozen=True)
class Read:
    """One read request that reached product data, as the audit log recorded it."""

    time: datetime
    principal: str | None
    mode: str
    outcome: str
    snapshot: Mapping[str, int]
    rows: int = 0
    bytes: int = 0
    duration_ms: float | None = None
    error_code: str | None = None
    error_message: str | None = None


@dataclass
class AccessLog:
    """Reads in a period, oldest first, and what could not be read."""

    reads: list[Read] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def of(self, product: str) -> list[Read]:
        """Reads whose snapshot names ``product``."""
        return [r for r in self.reads if product in r.snapshot]


def read_access_log(storage_root: Path, since: datetime | None = None,
                    products: Collection[str] | None = None) -> AccessLog:
    """Reads recorded from ``since`` on (of ``products`` only, if given)."""
    log = AccessLog()
    file = storage_root / AUDIT_FILE
    if not file.is_file():
        return log
    damaged: list[int] = []
    with open(file, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            text = line.strip()
            if not text:
                continue
            whole = text.startswith("{") and text.endswith("}")
            # cheap pre-filter: a whole-looking line naming none of the products is skipped
            # unparsed; anything else is parsed, so damaged lines are always noticed
            if whole and products and not any(key in text for key in products):
                continue
            try:
                record = json.loads(text)
                if not isinstance(record, dict):
                    raise ValueError("not an object")
                read = _read(record)
            except (ValueError, TypeError, KeyError):
                damaged.append(number)
                continue
            if read is None or (since is not None and read.time < since):
                continue
            if products and not any(key in read.snapshot for key in products):
                continue
            log.reads.append(read)
    if damaged:
        shown = ", ".join(str(n) for n in damaged[:SHOWN_LINES])
        more = f" and {len(damaged) - SHOWN_LINES} more" if len(damaged) > SHOWN_LINES else ""
        log.warnings.append(
            f"{len(damaged)} line(s) of the audit log ({AUDIT_FILE} in the storage root) are "
            f"not audit records and were skipped (line {shown}{more}); run 'quanta audit "
            "verify'")
    return log


def _read(record: dict[str, Any]) -> Read | None:
    """The read a record describes; None for records that are no read of product data.
    Raises ValueError, TypeError or KeyError for a record that is damaged."""
    moment = datetime.fromisoformat(str(record["time"]))
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    snapshot = record.get("snapshot")
    if record.get("mode") == "control" or not snapshot:
        return None
    if not isinstance(snapshot, dict):
        raise TypeError("snapshot is not a mapping")
    error = record.get("error")
    error = error if isinstance(error, dict) else {}
    duration = record.get("duration_ms")
    return Read(
        time=moment, principal=record.get("principal"), mode=str(record.get("mode") or "?"),
        outcome=str(record.get("outcome") or "?"),
        snapshot={str(k): int(v) for k, v in snapshot.items()},
        rows=int(record.get("rows") or 0), bytes=int(record.get("bytes") or 0),
        duration_ms=float(duration) if duration is not None else None,
        error_code=error.get("code"), error_message=error.get("message"))
