"""How a search runs: text matches from the full-text index, filters and facets from the
arrays in memory, and scores computed only for the page shown.

1. The ids of every text match (one aggregate query; cheap per match) are filtered by
   domain, kind, owner, tags and classification in memory; they give the total and the
   facet counts. Without words, every product is a match.
2. The page: the matches of the first tier (every word in the name, tags or owner) ranked,
   then those of the next tiers (see ``quanta.catalog.text``) as far as the page needs, each
   restricted to the filtered ids when there are filters. A broad word that many names hold
   fills the page from the first tier, so the other matches are never scored.
3. The products of the page are read by id.
"""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

import numpy as np
from sqlalchemy import Connection, bindparam, text

from quanta.catalog.facets import FacetIndex, parse_ids
from quanta.catalog.search import SearchHit, SearchQuery, SearchResult, top_values
from quanta.catalog.text import Condition, TextIndex

_HIT = ("SELECT p.id, p.key, p.domain, p.name, p.kind, p.description, p.owner, p.tags, "
        "p.ports, p.lifecycle, p.release FROM catalog_products p WHERE p.id IN :page")
_PAGE = text(_HIT).bindparams(bindparam("page", expanding=True))


def run(conn: Connection, index: TextIndex, facets: FacetIndex, query: SearchQuery
        ) -> SearchResult:
    """Answer ``query`` from one snapshot of the catalog."""
    if not query.terms:
        ids = facets.select(None, query)
        chosen = facets.by_key(ids)[query.offset:query.offset + query.limit]
        return _answer(conn, query, ids, [(int(pid), 0.0) for pid in chosen], facets)
    match = index.match(query.terms)
    filtered = bool(query.filters())
    every = _ids(conn, index, match.every)
    ids = facets.select(every, query) if filtered else facets.known(every)
    # with filters, each tier's ranking is restricted to the filtered matches (the tier's
    # condition keeps out the other tiers'); the tiers' sizes are needed only when the page
    # does not start at the first match, to split the offset over them: on a first page, a
    # tier that yields fewer rows than asked for simply hands over to the next
    only = ids if filtered else None
    sizes: list[int | None] = [None] * len(match.tiers)
    if query.offset and filtered:
        inside = [len(np.intersect1d(_ids(conn, index, w), ids, assume_unique=True))
                  for w in match.within] + [len(ids)]
        sizes = [inside[0], *(b - a for a, b in pairwise(inside))]
    elif query.offset:
        counts = [_count(conn, index, w) for w in match.within] + [len(ids)]
        sizes = [counts[0], *(b - a for a, b in pairwise(counts))]
    page: list[tuple[int, float]] = []
    skip = query.offset
    for tier, size in zip(match.tiers, sizes, strict=True):
        wanted = query.limit - len(page)
        if wanted <= 0:
            break
        if size is not None and skip >= size:
            skip -= size
            continue
        if size != 0:
            page += _ranked(conn, index, tier, only, wanted, skip)
        skip = 0
    return _answer(conn, query, ids, page, facets)


def _count(conn: Connection, index: TextIndex, condition: Condition) -> int:
    return int(conn.execute(text(index.count_sql(condition)), condition.params).scalar() or 0)


def _ids(conn: Connection, index: TextIndex, condition: Condition) -> np.ndarray:
    return parse_ids(conn.execute(text(index.ids_sql(condition)), condition.params).scalar())


def _ranked(conn: Connection, index: TextIndex, condition: Condition,
            only: np.ndarray | None, limit: int, offset: int) -> list[tuple[int, float]]:
    params: dict[str, Any] = condition.params | {"limit": limit, "offset": offset}
    if only is not None:
        params["ids"] = index.restriction(only.tolist())
    found = conn.execute(text(index.ranked_sql(condition, only is not None)), params)
    return [(int(pid), float(score)) for pid, score in found]


def _answer(conn: Connection, query: SearchQuery, ids: np.ndarray,
            page: list[tuple[int, float]], facets: FacetIndex) -> SearchResult:
    rows = {r[0]: r for r in conn.execute(_PAGE, {"page": [pid for pid, _ in page]})} \
        if page else {}
    hits = [SearchHit(key=r[1], domain=r[2], name=r[3], kind=r[4], description=r[5],
                      owner=r[6], tags=json.loads(r[7]), ports=json.loads(r[8]),
                      lifecycle=r[9], release=r[10], score=score)
            for pid, score in page if (r := rows.get(pid)) is not None]
    return SearchResult(query, len(ids), hits, top_values(facets.count(ids)))
