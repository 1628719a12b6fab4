"""Facet values of every product held in memory: filters and facet counts without SQL.

Counting facets in SQL means joining each match to its product, tags and classifications:
a few microseconds per match, so a broad search over a large catalog would spend most of its
time there. Instead the catalog keeps each product's domain, kind, owner (and owner email),
tags and classifications as integer codes in numpy arrays indexed by product id, loaded once
per catalog generation (every write bumps it). A search fetches the ids of its text matches
from the full-text index and filters and counts them here.

The SLO status comes from each discovery document's ``slo_status``: the verdict when the
document was written, and when waiting alone breaches an SLO (``breach_due``: freshness and
interval of change worsen while no release comes). A product past that moment counts as
``breached`` at search time, so one that stopped releasing leaves ``met`` without being
registered again. Reading it means parsing each stored document's JSON (about 0.9 s at
100,000 products on SQLite), so the statuses read are kept per database in the process and a
reload reads only the documents registered since (``registered_at``), less a margin for
writers that committed late.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import Connection, Engine, text

from quanta.catalog.search import FACETS, SearchQuery

_SINGLE = ("domain", "kind", "owner", "owner_email")
_MULTI = {"tag": ("catalog_tags", "tag"),
          "classification": ("catalog_classifications", "classification")}
# a field of a document's slo_status in each dialect's JSON functions (SQLite keeps the last
# documents parsed, so the second field costs no second parse)
_SLO_FIELD = {"postgresql": "(d.document::jsonb #>> '{{slo_status,{0}}}')",
              "sqlite": "json_extract(d.document, '$.slo_status.{0}')"}
# a writer stamps registered_at before it commits, so a registration may become visible
# after a read that did not see it, with a stamp from before that read: each reload reads
# what was registered since the previous read began, less this margin (longer than a
# registration's transaction, plus the writers' clocks' lag behind the reader's)
SLO_MARGIN = timedelta(minutes=10)
STAMP = "%Y-%m-%dT%H:%M:%S.%fZ"  # registered_at, as entry.committed_stamp writes it


class _Codes:
    """Values of one facet as small integers: ``values[code]``."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}

    @property
    def values(self) -> list[str]:
        return list(self.index)

    def encode(self, values: list[str]) -> np.ndarray:
        """Codes of ``values``; an empty value (an owner without email) is -1."""
        index = self.index
        codes = np.fromiter((index.setdefault(v, len(index)) for v in values),
                            dtype=np.int32, count=len(values))
        if "" in index:
            codes[codes == index[""]] = -1
        return codes


class FacetIndex:
    """Every product's facet values, by product id, as of one catalog generation.

    Each column comes over as one joined text (two numbers of the same row stay in the same
    place of their texts), so loading 100,000 products builds no row object.
    """

    def __init__(self, conn: Connection, joined: Callable[[str, bool], str], generation: int
                 ) -> None:
        self.generation = generation
        self.codes = {name: _Codes() for name in (*_SINGLE, *_MULTI)}
        columns = [joined("id", False), *(joined(f"coalesce({c}, '')", True)
                                          for c in (*_SINGLE, "key"))]
        ids_text, *texts = conn.execute(text(
            f"SELECT {', '.join(columns)} FROM catalog_products")).one()
        ids = parse_ids(ids_text)
        self.ids = np.sort(ids)
        self.size = int(self.ids.max()) + 2 if len(self.ids) else 1
        split = [_split(v, len(ids)) for v in texts]
        self.single = {name: self._by_id(ids, self.codes[name].encode(values))
                       for name, values in zip(_SINGLE, split, strict=False)}
        # each product's place in key order, for listings without words
        keys = split[-1]
        self.key_order = self._by_id(ids, np.argsort(np.argsort(np.array(keys, dtype=str),
                                                                kind="stable")))
        self.multi: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for name, (table, column) in _MULTI.items():
            owners_text, values_text = conn.execute(text(
                f"SELECT {joined('product_id', False)}, {joined(column, True)} FROM {table}"
            )).one()
            owners = parse_ids(owners_text)
            values = self.codes[name].encode(_split(values_text, len(owners)))
            self.multi[name] = self._ragged(owners, values)
        self._load_slo_status(conn, joined)

    def _load_slo_status(self, conn: Connection, joined: Callable[[str, bool], str]) -> None:
        """Each product's SLO status code and the moment waiting breaches it (epoch
        seconds, infinity when never); documents without a status count for no value."""
        with _statuses_lock:
            held = _statuses.setdefault(conn.engine, _SloStatuses())
        with held.lock:
            _read_statuses(conn, joined, held)
            held.fit(self.size)
            held.codes.index.setdefault("breached", len(held.codes.index))
            # copies: the next reload changes what is held, never this generation's arrays
            self.codes["slo_status"] = held.codes
            self.single["slo_status"] = held.status[:self.size].copy()
            self.breach_due = held.due[:self.size].copy()

    def _column(self, name: str, ids: np.ndarray) -> np.ndarray:
        """The codes of a single-valued facet for ``ids``; for the SLO status, as of now."""
        found = self.single[name][ids]
        if name == "slo_status":
            overdue = (self.breach_due[ids] <= time.time()) & (found >= 0)
            found = np.where(overdue, self.codes[name].index["breached"], found)
        return found

    def _by_id(self, ids: np.ndarray, values: np.ndarray) -> np.ndarray:
        found = np.full(self.size, -1, dtype=np.int64 if values.dtype == np.int64
                        else np.int32)
        found[ids] = values
        return found

    def _ragged(self, owners: np.ndarray, values: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(offsets by product id, owning product of each value, value codes): product i's
        values are codes[offsets[i]:offsets[i + 1]]."""
        order = np.argsort(owners, kind="stable")
        owners, values = owners[order], values[order]
        counts = np.bincount(owners, minlength=self.size)[:self.size]
        offsets = np.zeros(self.size + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        return offsets, owners, values

    def known(self, ids: np.ndarray) -> np.ndarray:
        """``ids`` that are products of this generation."""
        ids = ids[(ids >= 0) & (ids < self.size)]
        return ids[self.single["domain"][ids] >= 0]

    def select(self, ids: np.ndarray | None, query: SearchQuery) -> np.ndarray:
        """The products among ``ids`` (every product when None) that pass the query's
        filters."""
        ids = self.ids if ids is None else self.known(ids)
        for name in ("domain", "kind"):
            value = getattr(query, name)
            if value:
                ids = ids[self.single[name][ids] == self.codes[name].index.get(value, -2)]
        if query.owner:
            team = self.codes["owner"].index.get(query.owner, -2)
            email = self.codes["owner_email"].index.get(query.owner, -2)
            ids = ids[(self.single["owner"][ids] == team)
                      | (self.single["owner_email"][ids] == email)]
        for tag in query.tags:
            ids = ids[self._having("tag", tag)[ids]]
        if query.classification:
            ids = ids[self._having("classification", query.classification)[ids]]
        if query.slo_status:
            wanted = self.codes["slo_status"].index.get(query.slo_status, -2)
            ids = ids[self._column("slo_status", ids) == wanted]
        return ids

    def by_key(self, ids: np.ndarray) -> np.ndarray:
        """``ids`` in the order of their products' keys."""
        return ids[np.argsort(self.key_order[ids], kind="stable")]

    def _having(self, name: str, value: str) -> np.ndarray:
        """A mask by product id: the products holding ``value`` (a tag, a classification)."""
        _, owners, values = self.multi[name]
        mask = np.zeros(self.size, dtype=bool)
        code = self.codes[name].index.get(value)
        if code is not None:
            mask[owners[values == code]] = True
        return mask

    def count(self, ids: np.ndarray) -> dict[str, dict[str, int]]:
        """Counts per facet value over the products ``ids``."""
        counts: dict[str, dict[str, int]] = {}
        member: np.ndarray | None = None
        for name in FACETS:
            if name not in _MULTI:
                found = self._column(name, ids)
            elif len(ids) * 8 > self.size:
                # many products: one pass over every value, keeping those of the products
                if member is None:
                    member = np.zeros(self.size, dtype=bool)
                    member[ids] = True
                _, owners, values = self.multi[name]
                found = values[member[owners]]
            else:
                # few: gather each product's values, without a Python loop
                offsets, _, values = self.multi[name]
                starts, ends = offsets[ids], offsets[ids + 1]
                lengths = ends - starts
                before = np.cumsum(lengths) - lengths
                positions = np.arange(int(lengths.sum())) + np.repeat(starts - before, lengths)
                found = values[positions]
            tally = np.bincount(found[found >= 0])
            names = self.codes[name].values
            counts[name] = {names[c]: int(tally[c]) for c in np.flatnonzero(tally)}
        return counts


@dataclass
class _SloStatuses:
    """The SLO status code and breach due (epoch seconds; infinity: none) of each product of
    one database as last read, by product id, and when the last read began."""

    codes: _Codes = field(default_factory=_Codes)
    status: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    due: np.ndarray = field(default_factory=lambda: np.zeros(0))
    read_at: datetime | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fit(self, size: int) -> None:
        """Room for product ids below ``size``."""
        if len(self.status) < size:
            grown = max(size, 2 * len(self.status))
            self.status = np.concatenate(
                [self.status, np.full(grown - len(self.status), -1, dtype=np.int32)])
            self.due = np.concatenate([self.due, np.full(grown - len(self.due), np.inf)])


_statuses: weakref.WeakKeyDictionary[Engine, _SloStatuses] = weakref.WeakKeyDictionary()
_statuses_lock = threading.Lock()


def _read_statuses(conn: Connection, joined: Callable[[str, bool], str],
                   held: _SloStatuses) -> None:
    """Bring ``held`` up to date: read the SLO status of the products registered since its
    last read began (less ``SLO_MARGIN``), all of them the first time."""
    dialect = conn.dialect.name if conn.dialect.name in _SLO_FIELD else "sqlite"
    status, due = (joined(f"coalesce({_SLO_FIELD[dialect].format(name)}, '')", True)
                   for name in ("status", "breach_due"))
    started = datetime.now(UTC)
    since = "" if held.read_at is None else (held.read_at - SLO_MARGIN).strftime(STAMP)
    owners_text, statuses, dues = conn.execute(text(
        f"SELECT {joined('p.id', False)}, {status}, {due} "
        "FROM catalog_products p JOIN catalog_documents d ON d.product_id = p.id "
        "WHERE p.registered_at >= :since"), {"since": since}).one()
    owners = parse_ids(owners_text)
    if len(owners):
        held.fit(int(owners.max()) + 1)
        held.status[owners] = held.codes.encode(_split(statuses, len(owners)))
        held.due[owners] = [_epoch(m) if m else np.inf
                            for m in _split(dues, len(owners))]
    held.read_at = started


SEPARATOR = "\x1f"  # the ASCII unit separator: no name or tag holds it


def _epoch(moment: str) -> float:
    try:
        return datetime.fromisoformat(moment).timestamp()
    except ValueError:
        return np.inf  # a damaged moment predicts nothing


def _split(joined: str | None, count: int) -> list[str]:
    return joined.split(SEPARATOR) if joined is not None and count else []


def parse_ids(joined: str | None) -> np.ndarray:
    """Product ids from a comma-separated aggregate (``group_concat``/``string_agg``)."""
    if not joined:
        return np.zeros(0, dtype=np.int64)
    return np.fromstring(joined, dtype=np.int64, sep=",")  # text mode: ~10x split()
