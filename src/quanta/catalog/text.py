"""Full-text indexes behind one interface: SQLite FTS5 (bm25) and PostgreSQL tsvector
(ts_rank). Callers never look at the dialect; they ask the index for its SQL pieces.

Five columns are searched: product and port names, tags, owner, descriptions, fields (names,
descriptions, polysemes). Ranking has three tiers: products whose name, tags or owner hold
every word come first; then those whose descriptions hold the words the names lack; then the
rest (some word only in a field). Within a tier, bm25 (SQLite) or ts_rank (PostgreSQL) on
the tier's columns orders them, names weighing most and fields least. Besides being what
people expect of a catalog (a product named after the words beats one that mentions them in
a field), the tiers keep broad searches fast: a page usually fills from a small early tier,
so the score of every match need not be computed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, ClassVar, Protocol

from sqlalchemy import Connection, text

from quanta.catalog.schema import TS_CONFIG
from quanta.catalog.search import fts5_match, tsquery

COLUMNS = ("name", "tags", "owner", "description", "fields")
TIERS = (("name", "tags", "owner"), ("name", "tags", "owner", "description"))
"""The columns every word must be in, tier by tier; the last tier is every other match."""


@dataclass(frozen=True)
class Condition:
    """A SQL condition over the index (and products ``p``), with its bound values."""

    sql: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Match:
    """The conditions of a text search: every match; the matches within each tier's columns
    (cumulative, one per entry of ``TIERS``); and each tier's own matches (one more, the
    last being every match not within the previous tiers' columns)."""

    every: Condition
    within: list[Condition]
    tiers: list[Condition]


class TextIndex(Protocol):
    """What the store needs of a full-text index."""

    name: str
    stemming: bool
    prefix_search: bool

    def write(self, conn: Connection, rows: list[tuple[int, dict[str, str]]]) -> None:
        """Index (or index again) products ``(id, {column: text})``."""

    def delete(self, conn: Connection, ids: list[int] | None) -> None:
        """Forget products by id (all of them when ``ids`` is None)."""

    def match(self, terms: list[str]) -> Match:
        """The conditions that find products holding every term (the last also as a
        prefix), by tier."""

    def joined(self, column: str, words: bool) -> str:
        """The SQL aggregate of a column as one text: integers separated by commas, or
        (``words``) texts separated by the unit separator (``facets.SEPARATOR``)."""

    def ids_sql(self, condition: Condition) -> str:
        """A query of one value: the ids of the products matching, comma-separated."""

    def count_sql(self, condition: Condition) -> str:
        """A query of one value: how many products match."""

    def ranked_sql(self, condition: Condition, restricted: bool) -> str:
        """A query of ``(id, score)``, best first, of ``:limit`` matches after ``:offset``;
        when ``restricted``, of the products in ``:ids`` only."""

    def restriction(self, ids: list[int]) -> Any:
        """The bound value of ``:ids``."""


class Fts5Index:
    """SQLite FTS5 table ``catalog_search`` (porter stemming, unicode61), ranked by bm25."""

    name = "sqlite-fts5"
    stemming = True
    prefix_search = True
    SCORE = "-bm25(catalog_search, 10.0, 5.0, 4.0, 2.0, 1.0)"

    def write(self, conn: Connection, rows: list[tuple[int, dict[str, str]]]) -> None:
        if not rows:
            return
        self.delete(conn, [pid for pid, _ in rows])
        conn.execute(
            text(f"INSERT INTO catalog_search (rowid, {', '.join(COLUMNS)}) "
                 f"VALUES (:id, {', '.join(':' + c for c in COLUMNS)})"),
            [{"id": pid, **columns} for pid, columns in rows],
        )

    def delete(self, conn: Connection, ids: list[int] | None) -> None:
        if ids is None:
            conn.execute(text("DELETE FROM catalog_search"))
            return
        conn.execute(text("DELETE FROM catalog_search WHERE rowid = :id"),
                     [{"id": pid} for pid in ids])

    def match(self, terms: list[str]) -> Match:
        words = f"({fts5_match(terms)})"
        within = [f"{{{' '.join(columns)}}} : {words}" for columns in TIERS]
        own = [within[0], *(f"{w} NOT ({before})" for before, w in pairwise(within)),
               f"{words} NOT ({within[-1]})"]
        condition = "catalog_search MATCH :match"
        return Match(every=Condition(condition, {"match": words}),
                     within=[Condition(condition, {"match": w}) for w in within],
                     tiers=[Condition(condition, {"match": o}) for o in own])

    def joined(self, column: str, words: bool) -> str:
        return f"group_concat({column}, char(31))" if words else f"group_concat({column})"

    def ids_sql(self, condition: Condition) -> str:
        return f"SELECT group_concat(rowid) FROM catalog_search WHERE {condition.sql}"

    def count_sql(self, condition: Condition) -> str:
        return f"SELECT count(*) FROM catalog_search WHERE {condition.sql}"

    def ranked_sql(self, condition: Condition, restricted: bool) -> str:
        # '+rowid': a filter on the matches; a plain rowid IN would make FTS5 run the whole
        # search again for each id
        only = " AND +rowid IN (SELECT value FROM json_each(:ids))" if restricted else ""
        return (f"SELECT rowid, {self.SCORE} AS score FROM catalog_search "
                f"WHERE {condition.sql}{only} ORDER BY score DESC, rowid "
                "LIMIT :limit OFFSET :offset")

    def restriction(self, ids: list[int]) -> Any:
        return json.dumps(ids)


class TsVectorIndex:
    """PostgreSQL ``search tsvector`` column with a GIN index, ranked by ts_rank; names are
    weight A, tags and owner B, descriptions C, fields D."""

    name = "postgresql-tsvector"
    stemming = True
    prefix_search = True
    WEIGHTS: ClassVar[dict[str, str]] = {
        "name": "A", "tags": "B", "owner": "B", "description": "C", "fields": "D"}

    def write(self, conn: Connection, rows: list[tuple[int, dict[str, str]]]) -> None:
        if not rows:
            return
        vector = " || ".join(f"setweight(to_tsvector('{TS_CONFIG}', :{c}), '{w}')"
                             for c, w in self.WEIGHTS.items())
        conn.execute(text(f"UPDATE catalog_products SET search = {vector} WHERE id = :id"),
                     [{"id": pid, **columns} for pid, columns in rows])

    def delete(self, conn: Connection, ids: list[int] | None) -> None:
        """The vector lives in the product's row, so it goes with it."""

    def match(self, terms: list[str]) -> Match:
        every = f"p.search @@ to_tsquery('{TS_CONFIG}', :match)"
        words = tsquery(terms)
        weights = ["".join(sorted({self.WEIGHTS[c] for c in columns})) for columns in TIERS]
        queries = [tsquery(terms, weights=w) for w in weights]
        within = [f"p.search @@ to_tsquery('{TS_CONFIG}', :within{n})"
                  for n in range(len(TIERS))]
        values = {f"within{n}": q for n, q in enumerate(queries)}
        own = [within[0], *(f"{w} AND NOT {before}" for before, w in pairwise(within)),
               f"{every} AND NOT {within[-1]}"]
        ranks = [*queries, words]
        return Match(
            every=Condition(every, {"match": words, "rank": words}),
            within=[Condition(w, values | {"rank": q}) for w, q in zip(within, queries,
                                                                       strict=True)],
            tiers=[Condition(o, values | {"match": words, "rank": r})
                   for o, r in zip(own, ranks, strict=True)],
        )

    def joined(self, column: str, words: bool) -> str:
        return f"string_agg(({column})::text, {'chr(31)' if words else repr(',')})"

    def ids_sql(self, condition: Condition) -> str:
        return (f"SELECT {self.joined('p.id', False)} FROM catalog_products p "
                f"WHERE {condition.sql}")

    def count_sql(self, condition: Condition) -> str:
        return f"SELECT count(*) FROM catalog_products p WHERE {condition.sql}"

    def ranked_sql(self, condition: Condition, restricted: bool) -> str:
        only = " AND p.id = ANY(:ids)" if restricted else ""
        return (f"SELECT p.id, ts_rank(p.search, to_tsquery('{TS_CONFIG}', :rank)) AS score "
                f"FROM catalog_products p WHERE {condition.sql}{only} "
                "ORDER BY score DESC, p.id LIMIT :limit OFFSET :offset")

    def restriction(self, ids: list[int]) -> Any:
        return ids


def text_index(dialect: str) -> TextIndex:
    """The full-text index of a database dialect."""
    return TsVectorIndex() if dialect == "postgresql" else Fts5Index()
