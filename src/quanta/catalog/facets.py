"""Facet values of every product held in memory: filters and facet counts without SQL.

Counting facets in SQL means joining each match to its product, tags and classifications:
a few microseconds per match, so a broad search over a large catalog would spend most of its
time there. Instead the catalog keeps each product's domain, kind, owner (and owner email),
tags and classifications as integer codes in numpy arrays indexed by product id, loaded once
per catalog generation (every write bumps it). A search fetches the ids of its text matches
from the full-text index and filters and counts them here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import Connection, text

from quanta.catalog.search import FACETS, SearchQuery

_SINGLE = ("domain", "kind", "owner", "owner_email")
_MULTI = {"tag": ("catalog_tags", "tag"),
          "classification": ("catalog_classifications", "classification")}


class _Codes:
    """Values of one facet as small integers."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self.index: dict[str, int] = {}

    def code(self, value: str | None) -> int:
        if value is None:
            return -1
        found = self.index.get(value)
        if found is None:
            found = self.index[value] = len(self.values)
            self.values.append(value)
        return found


class FacetIndex:
    """Every product's facet values, by product id, as of one catalog generation."""

    def __init__(self, conn: Connection, generation: int) -> None:
        self.generation = generation
        self.codes = {name: _Codes() for name in (*_SINGLE, *_MULTI)}
        rows = conn.execute(text("SELECT id, domain, kind, owner, owner_email, key "
                                 "FROM catalog_products ORDER BY id")).all()
        self.ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        self.size = int(self.ids.max()) + 2 if len(rows) else 1
        self.single: dict[str, np.ndarray] = {}
        for position, name in enumerate(_SINGLE, start=1):
            codes = np.full(self.size, -1, dtype=np.int32)
            chosen = self.codes[name]
            codes[self.ids] = np.fromiter((chosen.code(r[position]) for r in rows),
                                          dtype=np.int32, count=len(rows))
            self.single[name] = codes
        # each product's place in key order, for listings without words
        self.key_order = np.full(self.size, -1, dtype=np.int64)
        by_key = sorted(range(len(rows)), key=lambda i: rows[i][5])
        self.key_order[self.ids[by_key]] = np.arange(len(rows))
        self.multi: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for name, (table, column) in _MULTI.items():
            pairs = conn.execute(text(f"SELECT product_id, {column} FROM {table} "
                                      "ORDER BY product_id")).all()
            self.multi[name] = self._ragged(pairs, self.codes[name])

    def _ragged(self, pairs: Sequence[Any], codes: _Codes
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(offsets by product id, owning product of each value, value codes): product i's
        values are codes[offsets[i]:offsets[i + 1]]."""
        owners = np.fromiter((p[0] for p in pairs), dtype=np.int64, count=len(pairs))
        values = np.fromiter((codes.code(p[1]) for p in pairs), dtype=np.int32,
                             count=len(pairs))
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
        for name in FACETS:
            if name in _MULTI:
                offsets, _, values = self.multi[name]
                starts, ends = offsets[ids], offsets[ids + 1]
                lengths = ends - starts
                total = int(lengths.sum())
                # positions of every value of every product asked, without a Python loop
                before = np.cumsum(lengths) - lengths
                positions = np.arange(total) + np.repeat(starts - before, lengths)
                found = values[positions]
            else:
                found = self.single[name][ids]
            tally = np.bincount(found[found >= 0])
            names = self.codes[name].values
            counts[name] = {names[c]: int(tally[c]) for c in np.flatnonzero(tally)}
        return counts


def parse_ids(joined: str | None) -> np.ndarray:
    """Product ids from a comma-separated aggregate (``group_concat``/``string_agg``)."""
    if not joined:
        return np.zeros(0, dtype=np.int64)
    return np.fromstring(joined, dtype=np.int64, sep=",")  # text mode: ~10x split()
