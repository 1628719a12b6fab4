"""What the catalog indexes of a discovery document, checked before anything is written.

A discovery document is JSON kept in storage; one that lost keys or holds the wrong types is
refused here with a clear message (and skipped by ``quanta catalog rebuild``), so the index
only ever holds what it can search.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from quanta.catalog.search import indexed
from quanta.errors import QuantaError

DOCUMENT_FORMAT = "quanta/discovery/v1"


class _Part(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class DocumentField(_Part):
    name: str
    type: str
    description: str = ""
    classification: str = "internal"
    polyseme: str | None = None


class DocumentPort(_Part):
    name: str
    description: str = ""
    fields: list[DocumentField]


class DocumentOwner(_Part):
    team: str
    email: str | None = None
    name: str | None = None


class DocumentRelease(_Part):
    release: int
    committed_at: datetime


class DiscoveryDocument(_Part):
    """The indexed part of a discovery document (the rest is kept and served as it is)."""

    document: str = Field(pattern=f"^{DOCUMENT_FORMAT}$")
    domain: str
    name: str
    kind: str
    version: str
    description: str
    owner: DocumentOwner
    tags: list[str] = Field(default_factory=list)
    ports: list[DocumentPort] = Field(min_length=1)
    upstream: list[str] = Field(default_factory=list)
    lifecycle: dict[str, Any] = Field(default_factory=dict)
    latest_release: DocumentRelease | None = None

    @property
    def key(self) -> str:
        return f"{self.domain}.{self.name}"


class DocumentError(QuantaError):
    """A discovery document that cannot be indexed."""

    code = "discovery_document_invalid"


class CatalogUnavailableError(QuantaError):
    """The catalog database is down, unreachable, corrupt or not a catalog."""

    code = "catalog_unavailable"


def committed_stamp(moment: datetime | None) -> str:
    """A fixed-width UTC stamp that sorts as time does (the newest registration wins)."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class IndexEntry:
    """A validated document and the rows and search text the catalog keeps of it."""

    def __init__(self, document: dict[str, Any], source: str = "document") -> None:
        try:
            self.doc = DiscoveryDocument.model_validate(document)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "document"
            raise DocumentError(
                f"{source} is not a discovery document: {where}: {first['msg']}"
                + (f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""),
                hint="rebuild the product to write it again (quanta build DOMAIN.PRODUCT)",
            ) from None
        self.document = document
        self.body = json.dumps(document, ensure_ascii=False, sort_keys=True)
        self._row: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        return self.doc.key

    def row(self) -> dict[str, Any]:
        """The product's row (without its id and registration time)."""
        if self._row is None:
            self._row = self._make_row()
        return self._row

    def _make_row(self) -> dict[str, Any]:
        d = self.doc
        latest = d.latest_release
        return {
            "key": d.key, "domain": d.domain, "name": d.name, "kind": d.kind,
            "owner": d.owner.team, "owner_email": d.owner.email, "description": d.description,
            "version": d.version, "tags": json.dumps(d.tags, ensure_ascii=False),
            "ports": json.dumps([p.name for p in d.ports]),
            "lifecycle": str(d.lifecycle.get("state") or "active"),
            "release": latest.release if latest else None,
            "committed_at": committed_stamp(latest.committed_at if latest else None),
        }

    def tags(self) -> list[str]:
        return sorted(set(self.doc.tags))

    def fields(self) -> list[dict[str, Any]]:
        return [{"port": p.name, "field": f.name, "type": f.type,
                 "classification": f.classification, "polyseme": f.polyseme,
                 "description": f.description}
                for p in self.doc.ports for f in p.fields]

    def classifications(self) -> list[str]:
        return sorted({f.classification for p in self.doc.ports for f in p.fields})

    def upstream(self) -> list[str]:
        return sorted(set(self.doc.upstream))

    def search_text(self) -> dict[str, str]:
        """The five searched columns, weighted in that order: name, tags, owner, description,
        fields (names, descriptions and polysemes)."""
        d = self.doc
        return {
            "name": indexed(d.domain, d.name, *(p.name for p in d.ports)),
            "tags": indexed(*d.tags),
            "owner": indexed(d.owner.team, d.owner.email, d.owner.name),
            "description": indexed(d.description, *(p.description for p in d.ports)),
            "fields": indexed(*(f"{f.name} {f.description} {f.polyseme or ''}"
                                for p in d.ports for f in p.fields)),
        }
