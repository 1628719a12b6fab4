"""Facet values of every product held in memory: filters and facet counts without SQL.

Counting facets in SQL means joining each match to its product, tags and classifications:
a few microseconds per match, so a broad search over a large catalog would spend most of its
time there. Instead the catalog keeps each product's domain, kind, owner (and owner email),
tags and classifications as integer codes in numpy arrays indexed by product id, loaded once
per catalog generation (every write bumps it). A search fetches the ids of its text matches
from the full-text index and filters and counts them here.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sqlalchemy import Connection, text

from quanta.catalog.search import FACETS, SearchQuery

_SINGLE = ("domain", "kind", "owner", "owner_email")
_MULTI = {"tag": ("catalog_tags", "tag"),
          "classification": ("catalog_classifications", "classification")}


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
                found = self.single[name][ids]
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


SEPARATOR = "\x1f"  # the ASCII unit separator: no name or tag holds it


def _split(joined: str | None, count: int) -> list[str]:
    return joined.split(SEPARATOR) if joined is not None and count else []


def parse_ids(joined: str | None) -> np.ndarray:
    """Product ids from a comma-separated aggregate (``group_concat``/``string_agg``)."""
    if not joined:
        return np.zeros(0, dtype=np.int64)
    return np.fromstring(joined, dtype=np.int64, sep=",")  # text mode: ~10x split()
