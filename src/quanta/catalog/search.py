"""Search requests and answers, and how user text becomes a full-text query safely.

User text never reaches a full-text engine as syntax: it is cut into words (letters and
digits; everything else, ``"*-:()`` included, separates words), and each word is quoted
(SQLite FTS5) or written as a plain lexeme (PostgreSQL ``to_tsquery``). So ``NEAR``, ``OR``
or ``title:x`` are searched as words, never obeyed as operators. Every word must match (AND);
the last one also matches as a prefix (from four characters on), so a query typed so far
already finds something.
Indexed text goes through the same ``words`` cut, so both stores see the same words; the cut
also folds case and accents (``Café`` is ``cafe``), so both stores match ``cafe`` and
``café`` alike: SQLite's tokenizer would fold diacritics itself, PostgreSQL's needs the
``unaccent`` extension, which a database may not have (and which quanta cannot install).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

WORD = re.compile(r"[^\W_]+")
MAX_TERMS = 16
MAX_TERM_CHARS = 64
MIN_PREFIX = 4  # shorter last words match whole words only (a stemmed "dos*" is "do*")
FACETS = ("domain", "kind", "tag", "owner", "classification", "slo_status")
SLO_STATUSES = ("met", "at_risk", "breached", "unmeasured", "none")
"""Values of the ``slo_status`` facet: the worst status of a product's SLOs (``quanta slo``),
``unmeasured`` when none could be measured yet, ``none`` when it declares no SLO."""
FACET_VALUES = 20
MAX_LIMIT = 200


def words(*texts: str | None) -> list[str]:
    """Lower-case words of ``texts`` without accents: runs of letters and digits (``_``
    separates words)."""
    found: list[str] = []
    for text in texts:
        if text:
            found += WORD.findall(fold(text))
    return found


def fold(text: str) -> str:
    """``text`` in lower case without diacritics (``Ærø Café`` → ``ærø cafe``): each
    character decomposed (NFKD) and its combining marks dropped."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def indexed(*texts: str | None) -> str:
    """Text as the full-text index stores it: its words, separated by spaces."""
    return " ".join(words(*texts))


def terms(text: str) -> list[str]:
    """The words of a search, at most ``MAX_TERMS`` of at most ``MAX_TERM_CHARS`` each."""
    return [w[:MAX_TERM_CHARS] for w in words(text)[:MAX_TERMS]]


def fts5_match(found: list[str]) -> str:
    """An FTS5 MATCH expression: every word quoted (so never an operator), the last a prefix."""
    quoted = [f'"{t}"' for t in found]
    if quoted and len(found[-1]) >= MIN_PREFIX:
        quoted[-1] += "*"
    return " ".join(quoted)


def tsquery(found: list[str], weights: str = "") -> str:
    """A PostgreSQL ``to_tsquery`` text: words joined by ``&``, the last a prefix; with
    ``weights`` (e.g. ``AB``), words count only in parts of the vector of those weights.

    Words hold letters and digits only, so no quote or operator can come from the user.
    """
    marks = [""] * len(found)
    if found and len(found[-1]) >= MIN_PREFIX:
        marks[-1] = "*"
    return " & ".join(f"'{t}'" + (f":{m}{weights}" if m or weights else "")
                      for t, m in zip(found, marks, strict=True))


@dataclass(frozen=True)
class SearchQuery:
    """What a consumer looks for: text (optional) and filters, all of which must hold."""

    text: str = ""
    domain: str | None = None
    kind: str | None = None
    tags: tuple[str, ...] = ()
    owner: str | None = None
    classification: str | None = None
    limit: int = 20
    offset: int = 0
    slo_status: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "limit", max(1, min(int(self.limit), MAX_LIMIT)))
        object.__setattr__(self, "offset", max(0, int(self.offset)))
        object.__setattr__(self, "tags", tuple(t for t in self.tags if t))

    @property
    def terms(self) -> list[str]:
        return terms(self.text)

    def filters(self) -> dict[str, Any]:
        """The filters that are set, by facet name."""
        chosen: dict[str, Any] = {"domain": self.domain, "kind": self.kind,
                                  "tag": list(self.tags) or None, "owner": self.owner,
                                  "classification": self.classification,
                                  "slo_status": self.slo_status}
        return {k: v for k, v in chosen.items() if v}


@dataclass(frozen=True)
class SearchHit:
    """One product found, with what a result list shows of it."""

    key: str
    domain: str
    name: str
    kind: str
    description: str
    owner: str
    tags: list[str]
    ports: list[str]
    lifecycle: str
    release: int | None
    score: float

    @property
    def address(self) -> str:
        return f"quanta://{self.domain}/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {"address": self.address, "key": self.key, "domain": self.domain,
                "name": self.name, "kind": self.kind, "description": self.description,
                "owner": self.owner, "tags": self.tags, "ports": self.ports,
                "lifecycle": {"state": self.lifecycle}, "release": self.release,
                "score": round(self.score, 6)}


@dataclass(frozen=True)
class SearchResult:
    """Products matching a query, best first, with facet counts over every match."""

    query: SearchQuery
    total: int
    hits: list[SearchHit]
    facets: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"query": self.query.text, "terms": self.query.terms,
                "filters": self.query.filters(), "total": self.total,
                "limit": self.query.limit, "offset": self.query.offset,
                "products": [h.to_dict() for h in self.hits], "facets": self.facets}


def top_values(counts: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Each facet's values, most frequent first (then by name), at most ``FACET_VALUES``."""
    return {facet: dict(sorted(counts.get(facet, {}).items(), key=lambda kv: (-kv[1], kv[0]))
                        [:FACET_VALUES]) for facet in FACETS}
