"""The catalog store, run against SQLite (FTS5) and a real PostgreSQL (tsvector) alike."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path
from typing import Any

import pytest
from catalog_stores import catalog_url, document, pg_catalog_url, port, store  # noqa: F401
from sqlalchemy import text

from quanta.address import Address
from quanta.catalog import Catalog, CatalogUnavailableError, DocumentError, SearchQuery
from quanta.catalog.joins import joins
from quanta.catalog.location import set_aside_damaged
from quanta.catalog.schema import HEAD


def keys(found: Any) -> list[str]:
    return [h.key for h in found.hits]


@pytest.fixture
def filled(store: Catalog) -> Catalog:  # noqa: F811
    store.register_many([])  # nothing to do, nothing breaks
    for doc in (
        document("listening", "play_events", description="Every track play in the apps.",
                 tags=["events", "listening"], owner="listening",
                 email="listening-data@daff.example",
                 ports=[port("plays", ("listener_id", "pii", "listener_id", "Who listened"),
                             ("track_id", "public", "track_id", "What was played"))]),
        document("listening", "sessions", kind="aggregate",
                 description="Listening sessions built from plays.",
                 tags=["listening"], owner="listening", upstream=["listening.play_events"],
                 ports=[port("sessions", ("listener_id", "pii", "listener_id", "Listener"),
                             ("minutes", "internal", None, "Minutes in the session"))]),
        document("artists", "catalog", description="Tracks and artists as labels send them.",
                 tags=["reference"], owner="artists",
                 ports=[port("tracks", ("track_id", "public", "track_id", "Track"),
                             ("title", "public", None, "Track title"))]),
        document("marketing", "campaigns", kind="consumer-aligned",
                 description="Campaign audiences.", tags=["marketing", "events"],
                 owner="marketing", upstream=["listening.sessions"],
                 ports=[port("audiences", ("listener_id", "pii", "listener_id", "Audience"),
                             ("segment", "confidential", None, "A café segment near 日本語"))]),
    ):
        assert store.register(doc)
    return store


def test_register_read_and_remove(filled: Catalog) -> None:
    assert filled.keys() == ["artists.catalog", "listening.play_events", "listening.sessions",
                             "marketing.campaigns"]
    doc = filled.document("listening.sessions")
    assert doc is not None and doc["upstream"] == ["listening.play_events"]
    assert filled.document("nope.nothing") is None and not filled.has("nope.nothing")
    assert filled.downstream("listening.play_events") == ["listening.sessions"]
    assert filled.downstream("listening.sessions") == ["marketing.campaigns"]
    assert filled.remove("listening.sessions") and not filled.remove("listening.sessions")
    assert filled.downstream("listening.play_events") == []
    assert filled.search(SearchQuery("sessions")).total == 0


def test_ranking_prefers_names_then_tags_then_descriptions_then_fields(
        store: Catalog) -> None:  # noqa: F811
    store.register(document("d", "in_field", ports=[
        port("main", ("zephyr_code", "internal", None, "a code"))]))
    store.register(document("d", "in_description", description="About the zephyr."))
    store.register(document("d", "in_tags", tags=["zephyr"]))
    store.register(document("d", "zephyr_in_name"))
    store.register(document("d", "elsewhere"))
    found = store.search(SearchQuery("zephyr"))
    assert keys(found) == ["d.zephyr_in_name", "d.in_tags", "d.in_description", "d.in_field"]
    assert all(a.score > b.score for a, b in zip(found.hits, found.hits[1:], strict=False))


def test_pages_run_from_the_first_tier_into_the_rest(store: Catalog  # noqa: F811
                                                       ) -> None:
    for n in range(3):
        store.register(document("d", f"quasar_{n}"))
        store.register(document("d", f"other_{n}", description=f"Mentions quasar {n}."))
        store.register(document("d", f"field_{n}", ports=[
            port("main", ("id", "internal", None, f"quasar number {n}"))]))
    store.register(document("e", "elsewhere", tags=["quasar"], kind="aggregate"))
    everything = [h.key for h in store.search(SearchQuery("quasar", limit=50)).hits]
    assert len(everything) == 10
    assert set(everything[:4]) == {"d.quasar_0", "d.quasar_1", "d.quasar_2", "e.elsewhere"}
    assert set(everything[4:7]) == {"d.other_0", "d.other_1", "d.other_2"}
    assert set(everything[7:]) == {"d.field_0", "d.field_1", "d.field_2"}
    for size in (2, 3, 4):
        pages = [h.key for offset in range(0, 10, size)
                 for h in store.search(SearchQuery("quasar", limit=size, offset=offset)).hits]
        assert pages == everything, size
    only_d = store.search(SearchQuery("quasar", domain="d", limit=4, offset=2))
    assert only_d.total == 9 and [h.key for h in only_d.hits] == [
        k for k in everything if k.startswith("d.")][2:6]
    assert store.search(SearchQuery("quasar", kind="aggregate")).total == 1
    assert store.search(SearchQuery("quasar", offset=10)).hits == []


def test_every_word_must_match_and_the_last_is_a_prefix(filled: Catalog) -> None:
    assert keys(filled.search(SearchQuery("listening apps"))) == ["listening.play_events"]
    assert set(keys(filled.search(SearchQuery("liste")))) == {
        "listening.play_events", "listening.sessions", "marketing.campaigns"}
    assert keys(filled.search(SearchQuery("audien"))) == ["marketing.campaigns"]
    assert filled.search(SearchQuery("liste zebra")).total == 0


def test_stemming_finds_other_forms(filled: Catalog) -> None:
    assert "listening.sessions" in keys(filled.search(SearchQuery("session built")))
    assert "listening.play_events" in keys(filled.search(SearchQuery("plays event")))


def test_filters_and_facets(filled: Catalog) -> None:
    found = filled.search(SearchQuery("listener"))
    assert found.total == 3
    assert found.facets["domain"] == {"listening": 2, "marketing": 1}
    assert found.facets["kind"] == {"aggregate": 1, "consumer-aligned": 1, "source-aligned": 1}
    assert found.facets["tag"] == {"listening": 2, "events": 2, "marketing": 1}
    assert found.facets["classification"]["pii"] == 3
    assert found.facets["owner"] == {"listening": 2, "marketing": 1}
    assert keys(filled.search(SearchQuery("listener", domain="marketing"))) == [
        "marketing.campaigns"]
    assert keys(filled.search(SearchQuery("", kind="aggregate"))) == ["listening.sessions"]
    assert keys(filled.search(SearchQuery("", tags=("events", "listening")))) == [
        "listening.play_events"]
    assert keys(filled.search(SearchQuery("", owner="listening-data@daff.example"))) == [
        "listening.play_events"]
    assert keys(filled.search(SearchQuery("", classification="confidential"))) == [
        "marketing.campaigns"]
    everything = filled.search(SearchQuery(""))
    assert everything.total == 4 and keys(everything) == sorted(keys(everything))
    page = filled.search(SearchQuery("", limit=2, offset=2))
    assert page.total == 4 and keys(page) == keys(everything)[2:]


NASTY = ['"', '""', '"listener', "listener*", "*", "-listener", "listener -track", ":",
         "title:x", "plays:", "(", ")", "(listener", "NEAR", "NEAR(listener plays)",
         "NEAR/2", "listener OR track", "AND", "NOT listener", "^listener", "{listener}",
         "listener & track | !", "'", "'; DROP TABLE catalog_products; --", "\\", "%", "_",
         "listener:*", "<->", "a" * 500, "🎵", "café", "日本語", "\x00", " ", ""]


@pytest.mark.parametrize("nasty", NASTY, ids=range(len(NASTY)))
def test_user_text_is_never_syntax(filled: Catalog, nasty: str) -> None:
    found = filled.search(SearchQuery(nasty))
    assert found.total >= 0
    assert len(filled.keys()) == 4


def test_syntax_characters_are_separators(filled: Catalog) -> None:
    for words in ('"listener"', "listener*", "-listener", "(listener)", "listener:",
                 "(listener"):
        assert filled.search(SearchQuery(words)).total == 3, words
    assert keys(filled.search(SearchQuery("near"))) == ["marketing.campaigns"]
    assert keys(filled.search(SearchQuery("NEAR café"))) == ["marketing.campaigns"]
    assert keys(filled.search(SearchQuery("日本語"))) == ["marketing.campaigns"]


def test_the_newest_release_wins(store: Catalog) -> None:  # noqa: F811
    newer = document("shop", "orders", description="Version two.", release=2,
                     committed_at="2026-02-01T00:00:00+00:00", tags=["two"])
    older = document("shop", "orders", description="Version one.", release=1,
                     committed_at="2026-01-01T00:00:00+00:00", tags=["one"])
    assert store.register(newer)
    assert not store.register(older)
    doc = store.document("shop.orders")
    assert doc is not None and doc["description"] == "Version two."
    assert keys(store.search(SearchQuery("", tags=("two",)))) == ["shop.orders"]
    assert store.search(SearchQuery("", tags=("one",))).total == 0
    same = document("shop", "orders", description="Version two, deprecated.", release=2,
                    committed_at="2026-02-01T00:00:00+00:00")
    assert store.register(same)  # the same release again: its document is refreshed


def test_a_broken_document_is_refused_before_anything_is_written(store: Catalog  # noqa: F811
                                                                 ) -> None:
    bad = document("shop", "orders")
    del bad["ports"]
    with pytest.raises(DocumentError, match="ports"):
        store.register(bad)
    with pytest.raises(DocumentError, match="document"):
        store.register({**document("shop", "orders"), "document": "something/else"})
    assert store.keys() == []


def test_replace_all_swaps_the_whole_index(filled: Catalog) -> None:
    from quanta.catalog import IndexEntry

    count = filled.replace_all([IndexEntry(document("shop", "orders")),
                                IndexEntry(document("shop", "returns"))])
    assert count == 2 and filled.keys() == ["shop.orders", "shop.returns"]
    assert filled.search(SearchQuery("listener")).total == 0
    assert filled.carriers() == []


def test_polysemes_and_joins(filled: Catalog) -> None:
    registry = {(c.polyseme, c.product) for c in filled.carriers()}
    assert ("track_id", "artists.catalog") in registry
    assert {c.product for c in filled.carriers("listener_id")} == {
        "listening.play_events", "listening.sessions", "marketing.campaigns"}
    mine = filled.carriers(product="listening.play_events")
    others = [c for p in {c.polyseme for c in mine} for c in filled.carriers(polyseme=p)]
    found = joins(Address.parse("listening.play_events"), mine, others, "catalog")
    assert found.polysemes == {"listener_id": ["plays.listener_id"],
                               "track_id": ["plays.track_id"]}
    assert [j.address for j in found.joinable] == [
        "quanta://artists/catalog/tracks", "quanta://listening/sessions/sessions",
        "quanta://marketing/campaigns/audiences"]
    assert found.joinable[0].keys[0].left == "track_id"
    assert "JOIN artists.catalog.tracks AS b ON a.track_id = b.track_id" in \
        found.joinable[0].sql("listening.play_events")


def _hammer(url: str, worker: int, rounds: int) -> None:
    catalog = Catalog(url)
    try:
        for n in range(rounds):
            release = n * 2 + worker
            fields = [("id", "internal", None, "id")] + [
                (f"f{worker}_{i}", "pii" if worker else "public", "subject", "x")
                for i in range(1 + release % 5)]
            catalog.register(document(
                "shop", "orders", description=f"release {release} by {worker}",
                tags=[f"w{worker}", f"r{release}"], ports=[port("orders", *fields)],
                release=release, committed_at=f"2026-01-01T00:00:{release:02d}+00:00"))
    finally:
        catalog.close()


def _check_one_consistent_entry(url: str, rounds: int) -> None:
    catalog = Catalog(url)
    try:
        assert catalog.keys() == ["shop.orders"]
        doc = catalog.document("shop.orders")
        assert doc is not None
        last = rounds * 2 - 1
        assert doc["latest_release"]["release"] == last
        with catalog.engine.connect() as conn:
            count = conn.execute(text("SELECT count(*) FROM catalog_fields")).scalar()
            tags = conn.execute(text("SELECT tag FROM catalog_tags ORDER BY tag")).scalars()
            assert count == len(doc["ports"][0]["fields"])
            assert list(tags) == sorted(doc["tags"])
            if catalog.dialect == "sqlite":
                assert conn.execute(text("SELECT count(*) FROM catalog_search")).scalar() == 1
                conn.execute(text("INSERT INTO catalog_search(catalog_search) "
                                  "VALUES ('integrity-check')"))
                assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
        assert keys(catalog.search(SearchQuery(f"release {last}"))) == ["shop.orders"]
    finally:
        catalog.close()


def test_concurrent_registrations_from_two_threads(catalog_url: str) -> None:  # noqa: F811
    Catalog(catalog_url).clear()
    rounds = 15
    threads = [threading.Thread(target=_hammer, args=(catalog_url, w, rounds))
               for w in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    _check_one_consistent_entry(catalog_url, rounds)


def test_concurrent_registrations_from_two_processes(catalog_url: str) -> None:  # noqa: F811
    Catalog(catalog_url).clear()
    rounds = 10
    spawn = multiprocessing.get_context("spawn")
    workers = [spawn.Process(target=_hammer, args=(catalog_url, w, rounds)) for w in (0, 1)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    _check_one_consistent_entry(catalog_url, rounds)


def test_a_fresh_database_migrates_once_when_opened_at_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    failures: list[BaseException] = []

    def open_it() -> None:
        try:
            Catalog(url).close()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures
    with Catalog(url).engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM catalog_version")).scalar() == HEAD


def test_a_corrupt_sqlite_file_is_a_clear_error_and_can_be_set_aside(tmp_path: Path) -> None:
    file = tmp_path / "catalog.db"
    file.write_bytes(b"this is not a database at all " * 200)
    url = f"sqlite:///{file}"
    with pytest.raises(CatalogUnavailableError) as caught:
        Catalog(url)
    assert "unavailable" in caught.value.message and "rebuild" in (caught.value.hint or "")
    moved = set_aside_damaged(url)
    assert moved is not None and moved.exists() and not file.exists()
    Catalog(url).close()
    assert set_aside_damaged(url) is None  # a sound file stays


def test_a_server_that_is_down_is_a_clear_error() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
    with pytest.raises(CatalogUnavailableError) as caught:
        Catalog(f"postgresql://nobody@127.0.0.1:{free}/catalog")
    assert "127.0.0.1" in caught.value.message and "PostgreSQL" in (caught.value.hint or "")


def test_a_database_that_stops_answering_is_a_clear_error(tmp_path: Path) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    catalog.register(document("shop", "orders"))
    with catalog.engine.begin() as conn:
        conn.execute(text("DROP TABLE catalog_search"))
    with pytest.raises(CatalogUnavailableError, match="could not search"):
        catalog.search(SearchQuery("orders"))
    catalog.close()


def test_unknown_url_schemes_are_refused() -> None:
    from quanta.errors import QuantaError

    with pytest.raises(QuantaError, match="cannot use mysql"):
        Catalog("mysql://x@localhost/y")
    with pytest.raises(QuantaError, match="does not parse"):
        Catalog("::::")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_catalog_of_an_older_schema_is_migrated_on_open(
        backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    import json

    from catalog_stores import drop_database, fresh_database
    from sqlalchemy import create_engine

    from quanta.catalog.store import upgrade_schema

    name = None
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        server = request.getfixturevalue("postgres_url")
        url, name = fresh_database(server, "migration")
    engine = create_engine(url)
    doc = document("shop", "orders", description="Kept across the migration.")
    with engine.begin() as conn:
        upgrade_schema(conn, "0001")
        conn.execute(text(
            "INSERT INTO catalog_products (key, domain, name, kind, owner, description, "
            "version, tags, ports, lifecycle, release, committed_at, registered_at, document) "
            "VALUES ('shop.orders', 'shop', 'orders', 'source-aligned', 'team_a', 'x', "
            "'1.0.0', '[]', '[\"main\"]', 'active', 1, '', '', :doc)"),
            {"doc": json.dumps(doc)})
    engine.dispose()
    catalog = Catalog(url)  # upgrades to the newest schema
    try:
        kept = catalog.document("shop.orders")
        assert kept is not None and kept["description"] == "Kept across the migration."
        assert catalog.register(doc)
        with catalog.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM catalog_version")).scalar() \
                == HEAD
    finally:
        catalog.close()
        if name:
            drop_database(request.getfixturevalue("postgres_url"), name)
