"""Discovery documents beside the releases, registration at build time, rebuild from storage,
and what happens when the catalog fails: the release is the truth, the catalog an index."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from catalog_stores import drop_database, fresh_database

from conftest import copy_fixture
from quanta.catalog import URL_ENV, CatalogUnavailableError, SearchQuery
from quanta.catalog.registry import DOCUMENT_FILE, document_path
from quanta.context import MeshContext
from quanta.control.lifecycle import deprecate
from quanta.errors import NotFoundError


class Recorder:
    """A Reporter that keeps the warnings."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def started(self, task: str, total: int | None = None) -> None:
        pass

    def stage(self, task: str, stage: str) -> None:
        pass

    def finished(self, task: str, ok: bool, summary: str) -> None:
        pass

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(params=["sqlite", "postgresql"])
def store_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The mesh's default SQLite catalog, or a fresh PostgreSQL database through
    QUANTA_CATALOG_URL."""
    monkeypatch.delenv(URL_ENV, raising=False)
    if request.param == "sqlite":
        yield "sqlite"
        return
    server = request.getfixturevalue("postgres_url")
    url, name = fresh_database(server, "discovery")
    monkeypatch.setenv(URL_ENV, url)
    yield "postgresql"
    drop_database(server, name)


@pytest.fixture
def built(tmp_path: Path, store_env: str) -> Iterator[MeshContext]:
    ctx = MeshContext(copy_fixture("secure", tmp_path), reporter=Recorder())
    assert all(r.ok for r in ctx.build())
    yield ctx
    ctx.close()


def test_each_release_writes_its_document_and_registers_it(built: MeshContext) -> None:
    assert isinstance(built.reporter, Recorder) and built.reporter.warnings == []
    root = built.mesh.storage_root
    for key in built.mesh.products:
        assert document_path(root, key).is_file()
    stored = json.loads(document_path(root, "people.listeners").read_text())
    assert stored["document"] == "quanta/discovery/v1" and stored["key"] == "people.listeners"
    assert built.catalog().keys() == sorted(built.mesh.products)
    doc = built.discovery("quanta://people/listeners")
    assert doc["owner"]["team"] and doc["kind"] and doc["description"]
    fields = {f["name"]: f for f in doc["ports"][0]["fields"]}
    assert fields["email"]["classification"] == "pii"
    assert "mask columns email (redact), unless group:privacy" in doc["policies"]
    assert doc["latest_release"]["release"] == 1
    assert "metrics" in doc["latest_release"] and "profile" not in doc["latest_release"]
    assert all("sample" not in c for c in doc["latest_release"]["checks"])
    assert doc["lifecycle"]["state"] == "active"
    assert doc["releases"][0]["release"] == 1
    assert set(doc["connect"]) >= {"sql_http", "flight", "rest_rows", "python"}
    assert "people.listeners.listeners" in doc["connect"]["sql_http"]
    assert "quanta.connect(" in doc["connect"]["python"]
    assert "do_get" in doc["connect"]["flight"]
    assert "/api/v1/products/people/listeners/ports/listeners/rows" in \
        doc["connect"]["rest_rows"]
    # a second build makes release 2: the catalog follows
    assert all(r.ok for r in built.build(["people.listeners"]))
    assert built.discovery("people.listeners")["latest_release"]["release"] == 2


def test_no_data_value_lands_in_a_document(built: MeshContext) -> None:
    """Profiles (min/max) and check samples stay in the release manifest, so erasure never
    has to scrub discovery documents."""
    text = document_path(built.mesh.storage_root, "people.listeners").read_text()
    source = built.mesh.products["people.listeners"].folder / "listeners.csv"
    for line in source.read_text().splitlines()[1:]:
        listener_id, email, *_ = line.split(",")
        assert email not in text and f'"{listener_id}"' not in text


def test_search_through_the_context(built: MeshContext) -> None:
    found = built.search(SearchQuery("listener"))
    assert "people.listeners" in [h.key for h in found.hits]
    assert found.facets["domain"] == {"people": found.total}


def test_the_life_cycle_and_downstream_are_current(built: MeshContext) -> None:
    sidecar = built.sidecar
    deprecate(sidecar, sidecar.operator(), "quanta://people/plays",
              __import__("datetime").date(2030, 1, 1), "quanta://people/listeners")
    doc = built.discovery("people.plays")
    assert doc["lifecycle"]["state"] == "deprecated"
    assert doc["lifecycle"]["replacement"] == "quanta://people/listeners"
    hits = {h.key: h for h in built.search(SearchQuery("")).hits}
    assert hits["people.plays"].lifecycle == "deprecated"
    with pytest.raises(NotFoundError, match="not in the catalog"):
        built.discovery("people.nothing")


def test_rebuild_reports_and_skips_damaged_documents(built: MeshContext) -> None:
    root = built.mesh.storage_root
    document_path(root, "people.plays").write_text("{ not json")
    document_path(root, "people.consents").unlink()
    broken = json.loads(document_path(root, "people.listeners").read_text())
    del broken["ports"]
    document_path(root, "people.listeners").write_text(json.dumps(broken))
    report = built.rebuild_catalog()
    assert report.indexed == []
    reasons = {str(p.location).split("/products/")[1]: p.message for p in report.skipped}
    assert "unreadable" in reasons[f"people/plays/{DOCUMENT_FILE}"]
    assert "no discovery document" in reasons[f"people/consents/{DOCUMENT_FILE}"]
    assert "ports" in reasons[f"people/listeners/{DOCUMENT_FILE}"]
    assert built.catalog().keys() == []
    again = built.rebuild_catalog(write_documents=True)
    assert again.indexed == sorted(built.mesh.products) and again.skipped == []


def test_a_missing_catalog_is_rebuilt_from_storage(tmp_path: Path) -> None:
    ctx = MeshContext(copy_fixture("tiny", tmp_path))
    assert all(r.ok for r in ctx.build())
    ctx.close()
    (ctx.mesh.storage_root / "catalog.db").unlink()
    fresh = MeshContext(ctx.root)
    assert fresh.catalog().keys() == []
    assert fresh.rebuild_catalog().indexed == sorted(fresh.mesh.products)
    assert fresh.search(SearchQuery("orders")).total == 3
    fresh.close()


def test_a_damaged_sqlite_catalog_fails_nothing_but_discovery(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    monkeypatch.delenv(URL_ENV, raising=False)
    ctx = MeshContext(copy_fixture("tiny", tmp_path), reporter=Recorder())
    ctx.mesh.storage_root.mkdir(parents=True, exist_ok=True)
    (ctx.mesh.storage_root / "catalog.db").write_bytes(b"garbage" * 1000)
    results = ctx.build()
    assert all(r.ok for r in results)  # the releases are made
    assert isinstance(ctx.reporter, Recorder)
    [warning] = ctx.reporter.warnings
    assert "did not index" in warning and "quanta catalog rebuild" in warning
    assert document_path(ctx.mesh.storage_root, "shop.orders").is_file()
    assert ctx.query("SELECT count(*) AS n FROM shop.orders").table.to_pylist() == [{"n": 3}]
    with pytest.raises(CatalogUnavailableError):
        ctx.search(SearchQuery("orders"))
    joins = ctx.joinable("shop.orders")  # the specs answer instead
    assert joins.source == "specs" and "answered from the specs" in (joins.notice or "")
    assert [j.product for j in joins.joinable] == ["shop.customers_py"]
    assert ctx.polysemes().source == "specs"
    report = ctx.rebuild_catalog()  # sets the damaged file aside and starts afresh
    assert report.set_aside is not None and report.set_aside.exists()
    assert report.indexed == sorted(ctx.mesh.products)
    assert ctx.joinable("shop.orders").source == "catalog"
    ctx.close()


def test_a_catalog_server_that_is_down_fails_no_build(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(URL_ENV, f"postgresql+psycopg://nobody@127.0.0.1:{closed_port()}/x")
    ctx = MeshContext(copy_fixture("tiny", tmp_path), reporter=Recorder())
    assert all(r.ok for r in ctx.build(["shop.orders"]))
    assert isinstance(ctx.reporter, Recorder)
    assert any("did not index shop.orders" in w for w in ctx.reporter.warnings)
    with pytest.raises(CatalogUnavailableError, match=r"127\.0\.0\.1"):
        ctx.rebuild_catalog()
    ctx.close()


def test_joinable_from_the_catalog(built: MeshContext) -> None:
    found = built.joinable("quanta://people/plays")
    assert found.source == "catalog" and found.notice is None
    assert "listener_id" in found.polysemes
    products = [j.product for j in found.joinable]
    assert "people.listeners" in products and "people.plays" not in products
    narrowed = built.joinable("quanta://people/plays/plays")
    assert [j.product for j in narrowed.joinable] == products
