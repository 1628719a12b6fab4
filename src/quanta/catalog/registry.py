"""Discovery documents in storage, and the catalog kept as their index.

After a release, ``publish`` writes the product's discovery document beside its releases
(``<storage>/products/<d>/<p>/discovery.json``, atomic replace) and registers it in the
catalog. ``rebuild`` recreates the whole index from those files, reporting and skipping
any that is missing or damaged. A catalog that fails never fails a release: ``publish``
returns the problem for the caller to report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quanta.catalog.document import connect_snippets, discovery_document
from quanta.catalog.entry import DocumentError, IndexEntry
from quanta.catalog.search import SearchResult
from quanta.errors import Location, NotFoundError, QuantaError
from quanta.spec.mesh import Mesh
from quanta.storage import ProductStorage
from quanta.storage.files import write_atomic

if TYPE_CHECKING:
    from quanta.catalog.store import Catalog, CatalogReader

DOCUMENT_FILE = "discovery.json"


def document_path(storage_root: Path, key: str) -> Path:
    """Where a product's discovery document lives: beside its releases."""
    return ProductStorage(storage_root, key).folder / DOCUMENT_FILE


def write_document(storage_root: Path, document: dict[str, Any]) -> Path:
    """Keep ``document`` in storage (atomic replace); returns its path."""
    path = document_path(storage_root, f"{document['domain']}.{document['name']}")
    write_atomic(path, json.dumps(document, indent=2, ensure_ascii=False).encode())
    return path


def write_documents(mesh: Mesh) -> list[str]:
    """Write the discovery document of every released product of the mesh from its spec
    and releases (for releases made before the catalog existed); returns their keys."""
    written = []
    for key in sorted(mesh.products):
        if ProductStorage(mesh.storage_root, key).release_numbers():
            write_document(mesh.storage_root, discovery_document(mesh, key))
            written.append(key)
    return written


@dataclass
class Publication:
    """What happened to the discovery documents of products just released."""

    written: list[str] = field(default_factory=list)
    registered: list[str] = field(default_factory=list)
    drafts: list[str] = field(default_factory=list)  # written, not registered: drafts
    problems: list[QuantaError] = field(default_factory=list)


def publish(mesh: Mesh, keys: list[str], catalog: Callable[[], Catalog]) -> Publication:
    """Write the discovery document of each product in ``keys`` and register it in the
    catalog (opened only when there is something to register); a draft's document is
    written but not registered, so search and discovery do not list it until it is
    activated. Never raises for the catalog or the documents: problems are returned, the
    releases stand."""
    done = Publication()
    documents = []
    for key in keys:
        try:
            document = discovery_document(mesh, key)
            write_document(mesh.storage_root, document)
        except Exception as exc:  # a document that fails must not undo a release
            done.problems.append(QuantaError(
                f"the discovery document of {key} was not written: {_reason(exc)}",
                hint=exc.hint if isinstance(exc, QuantaError) else "build it again; if this "
                "persists, it is a bug in quanta", code="discovery_document_failed"))
            continue
        done.written.append(key)
        if document["lifecycle"]["state"] == "draft":
            done.drafts.append(key)
            continue
        documents.append(document)
    if not documents:
        return done
    try:
        opened = catalog()
        for document in documents:
            opened.register(document)
            done.registered.append(document["key"])
    except Exception as exc:  # nor may the catalog: it is an index, rebuilt from storage
        missing = [d["key"] for d in documents if d["key"] not in done.registered]
        done.problems.append(QuantaError(
            f"the catalog did not index {', '.join(missing)}: {_reason(exc)}",
            hint="the release is made and served; once the catalog is back, run "
            "'quanta catalog rebuild'", code="catalog_unavailable"))
    return done


def _reason(exc: Exception) -> str:
    return exc.message if isinstance(exc, QuantaError) else f"{type(exc).__name__}: {exc}"


@dataclass
class RebuildReport:
    """Products indexed again from storage, and documents skipped with the reason."""

    indexed: list[str] = field(default_factory=list)
    skipped: list[QuantaError] = field(default_factory=list)
    set_aside: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"indexed": self.indexed, "skipped": [p.to_dict() for p in self.skipped],
                "set_aside": str(self.set_aside) if self.set_aside else None}


def stored_documents(storage_root: Path) -> tuple[list[IndexEntry], list[QuantaError]]:
    """Every product's discovery document in storage, checked; and the problems of those
    missing (a released product without one) or damaged."""
    entries: list[IndexEntry] = []
    problems: list[QuantaError] = []
    for folder in sorted((storage_root / "products").glob("*/*")):
        if not folder.is_dir():
            continue
        key = f"{folder.parent.name}.{folder.name}"
        file = folder / DOCUMENT_FILE
        if not file.exists():
            if ProductStorage(storage_root, key).release_numbers():
                problems.append(DocumentError(
                    f"{key} has releases but no discovery document", location=Location(file),
                    hint=f"build it again (quanta build {key}), or run 'quanta catalog "
                    "rebuild --write-documents' to write documents from the specs"))
            continue
        try:
            entry = IndexEntry(json.loads(file.read_bytes()), source=str(file))
        except (OSError, ValueError) as exc:
            problems.append(DocumentError(
                f"the discovery document of {key} is unreadable: {exc}", location=Location(file),
                hint=f"build it again (quanta build {key}) to write it anew"))
            continue
        except DocumentError as exc:
            exc.location = Location(file)
            problems.append(exc)
            continue
        if entry.key != key:
            problems.append(DocumentError(
                f"the discovery document in {key}'s folder describes {entry.key}",
                location=Location(file), hint=f"build {key} again to write its own"))
            continue
        entries.append(entry)
    return entries, problems


def rebuild(catalog: Catalog, storage_root: Path) -> RebuildReport:
    """Recreate the index from the documents in storage, in one transaction (drafts are
    left out: they are listed once activated)."""
    entries, problems = stored_documents(storage_root)
    entries = [e for e in entries if not _is_draft(storage_root, e.key)]
    catalog.replace_all(entries)
    return RebuildReport(indexed=sorted(e.key for e in entries), skipped=problems)


def _is_draft(storage_root: Path, key: str) -> bool:
    with contextlib.suppress(QuantaError):
        return ProductStorage(storage_root, key).lifecycle().state == "draft"
    return False


def served_document(catalog: CatalogReader, storage_root: Path, key: str,
                    http_url: str | None = None, flight_url: str | None = None
                    ) -> dict[str, Any]:
    """A product's discovery document as the catalog holds it, with what changes between
    releases brought up to date: life cycle (from storage), downstream products (from the
    index) and, when known, connection snippets naming the server asked."""
    document = catalog.document(key)
    if document is None:
        raise NotFoundError(
            f"{key} is not in the catalog",
            hint="it is registered at its first release (quanta build); if it has one, run "
            "'quanta catalog rebuild'", code="product_not_found")
    lifecycle = ProductStorage(storage_root, key).lifecycle()
    document["lifecycle"] = lifecycle.model_dump(mode="json", exclude={"history"})
    document["downstream"] = catalog.downstream(key)
    if http_url and document.get("ports"):
        snippets = {"http_url": http_url.rstrip("/")}
        if flight_url:
            snippets["flight_url"] = flight_url
        document["connect"] = connect_snippets(document["domain"], document["name"],
                                               document["ports"][0]["name"], **snippets)
    return document


def with_lifecycle(result: SearchResult, storage_root: Path) -> SearchResult:
    """Search hits with their life cycle state as storage has it now (the index has it as
    of the last registration)."""
    hits = []
    for hit in result.hits:
        state = hit.lifecycle  # a damaged life cycle record: the index's word stands
        with contextlib.suppress(QuantaError):
            state = ProductStorage(storage_root, hit.key).lifecycle().state
        hits.append(dataclasses.replace(hit, lifecycle=state))
    return dataclasses.replace(result, hits=hits)


def publish_activated(mesh: Mesh, key: str, was: str, catalog: Callable[[], Catalog]
                      ) -> Publication | None:
    """After ``key`` moved from ``was`` to active: a draft's document was kept out of the
    catalog, so register it now (None when there is nothing to do)."""
    if was != "draft" or not ProductStorage(mesh.storage_root, key).release_numbers():
        return None
    return publish(mesh, [key], catalog)
