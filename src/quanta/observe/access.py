"""The access log: who read which product when, from the sidecar's audit file.

The audit log (``<storage>/audit/audit.ndjson``, written by ``quanta.sidecar.audit``) holds
one JSON record per line. A read's record names the product releases it read in
``snapshot``; a request refused before the releases were pinned (a denial, a retired
product) names none, but names in ``products`` what it tried to read (records written before
the sidecar recorded that name nothing). Control-port records (``mode: control``) are no
reads. Lines that are not records are skipped and counted in a warning (``quanta audit
verify`` says more about them).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

AUDIT_FILE = Path("audit") / "audit.ndjson"
SHOWN_LINES = 5


class Read(NamedTuple):
    """One read request, as the audit log recorded it: one that reached product data names
    the releases it read (``snapshot``); one refused before that names only the products it
    tried to read (``products``). A named tuple: reports make one per audit record, and it
    is built several times faster than a frozen dataclass."""

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
    products: tuple[str, ...] = ()

    def names(self, product: str) -> bool:
        """Whether the request read, or tried to read, ``product``."""
        return product in self.snapshot or product in self.products


@dataclass
class AccessLog:
    """Reads in a period, oldest first, and what could not be read."""

    reads: list[Read] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    _by_product: dict[str, list[Read]] | None = field(default=None, init=False, repr=False)
    _refused: dict[str, list[Read]] | None = field(default=None, init=False, repr=False)
    _ok: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _not_ok: dict[str, list[Read]] = field(default_factory=dict, init=False, repr=False)

    def of(self, product: str) -> list[Read]:
        """Reads whose snapshot names ``product`` (they reached its data)."""
        if self._by_product is None:
            self._index()
        assert self._by_product is not None
        return self._by_product.get(product, [])

    def outcomes(self, product: str) -> tuple[int, list[Read]]:
        """The reads of ``product`` that reached its data: how many were ``ok``, and the
        others (errors, limits, cancellations), oldest first."""
        if self._by_product is None:
            self._index()
        return self._ok.get(product, 0), self._not_ok.get(product, [])

    def refused(self, product: str) -> list[Read]:
        """Requests refused before reaching data (denials above all) that tried to read
        ``product``."""
        if self._refused is None:
            self._index()
        assert self._refused is not None
        return self._refused.get(product, [])

    def _index(self) -> None:
        # once per log: asking each of many products for its reads must not scan every read
        # again (a mesh-wide SLO report would be products x reads); counting ok reads here,
        # in time order, spares availability a pass over each product's reads, which lie
        # scattered in memory
        by_product: dict[str, list[Read]] = {}
        refused: dict[str, list[Read]] = {}
        ok, not_ok = self._ok, self._not_ok
        for read in self.reads:
            if read.snapshot:
                good = read.outcome == "ok"
                for key in read.snapshot:
                    by_product.setdefault(key, []).append(read)
                    if good:
                        ok[key] = ok.get(key, 0) + 1
                    else:
                        not_ok.setdefault(key, []).append(read)
            else:
                for key in read.products:
                    refused.setdefault(key, []).append(read)
        self._by_product, self._refused = by_product, refused

    def since(self, moment: datetime) -> AccessLog:
        """The reads from ``moment`` on (the warnings are kept)."""
        return AccessLog([r for r in self.reads if r.time >= moment], list(self.warnings))


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
            if products and not any(read.names(key) for key in products):
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
    snapshot = record.get("snapshot") or {}
    tried = record.get("products") or []
    if record.get("mode") == "control" or not (snapshot or tried):
        return None
    if not isinstance(snapshot, dict):
        raise TypeError("snapshot is not a mapping")
    if not isinstance(tried, list):
        raise TypeError("products is not a list")
    error = record.get("error")
    error = error if isinstance(error, dict) else {}
    duration = record.get("duration_ms")
    return Read(
        time=moment, principal=record.get("principal"), mode=str(record.get("mode") or "?"),
        outcome=str(record.get("outcome") or "?"),
        snapshot={str(k): int(v) for k, v in snapshot.items()},
        rows=int(record.get("rows") or 0), bytes=int(record.get("bytes") or 0),
        duration_ms=float(duration) if duration is not None else None,
        error_code=error.get("code"), error_message=error.get("message"),
        products=tuple(str(k) for k in tried))
