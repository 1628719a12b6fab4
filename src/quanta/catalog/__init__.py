"""The mesh's catalog: discovery documents, their index, search and the polyseme registry.

The releases in storage are the truth; the catalog is an index of one discovery document per
product (kept in storage beside its releases), rebuilt from them at any time.

Names are loaded on first use, so that importing the package (for a search request type or
a discovery document) does not import SQLAlchemy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quanta.catalog.entry import (
        DOCUMENT_FORMAT,
        CatalogUnavailableError,
        DocumentError,
        IndexEntry,
    )
    from quanta.catalog.joins import Carrier
    from quanta.catalog.location import URL_ENV, catalog_url
    from quanta.catalog.search import SearchHit, SearchQuery, SearchResult
    from quanta.catalog.store import Catalog, CatalogReader, open_catalog

_HOMES = {
    "DOCUMENT_FORMAT": "entry", "CatalogUnavailableError": "entry", "DocumentError": "entry",
    "IndexEntry": "entry", "Carrier": "joins", "URL_ENV": "location", "catalog_url": "location",
    "SearchHit": "search", "SearchQuery": "search", "SearchResult": "search",
    "Catalog": "store", "CatalogReader": "store", "open_catalog": "store",
}

__all__ = [
    "DOCUMENT_FORMAT", "URL_ENV", "Carrier", "Catalog", "CatalogReader",
    "CatalogUnavailableError", "DocumentError", "IndexEntry", "SearchHit", "SearchQuery",
    "SearchResult", "catalog_url", "open_catalog",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'quanta.catalog' has no attribute {name!r}")
    return getattr(importlib.import_module(f"quanta.catalog.{home}"), name)
