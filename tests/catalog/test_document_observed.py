"""What a discovery document shows measured: SLO attainment and usage computed when it is
served (never kept beside the releases), the SLO status kept as a verdict that the catalog
facets (and turns to breached once waiting alone breaches an SLO), and accents folded alike
in both stores."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from catalog_stores import catalog_url, document, pg_catalog_url, port, store  # noqa: F401
from fastapi.testclient import TestClient

from quanta.catalog import URL_ENV, Catalog, SearchQuery, facets
from quanta.catalog.registry import document_path
from quanta.catalog.search import FACETS, words
from quanta.context import MeshContext
from quanta.observe import ReleaseFacts, observe_product
from quanta.observe.slo import ProductSlos, SloResult
from quanta.serve.http import create_app
from quanta.sidecar.access import AuthorizationError
from quanta.spec.mesh import load_mesh

SLOS = "slos: {freshness: 1d, completeness: 0.99}\n"


@pytest.fixture
def read(tiny_mesh: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MeshContext]:
    """The tiny mesh built; shop.orders readable by ana, read by ana twice and bob once;
    shop.daily_totals denied to ana twice."""
    monkeypatch.delenv(URL_ENV, raising=False)
    spec = tiny_mesh / "domains/shop/orders/dataproduct.yaml"
    spec.write_text(spec.read_text().replace(
        SLOS, "slos: {freshness: 1d, completeness: 0.99, availability: 0.99}\n"
        "policies: [{type: grant, to: [ana, bob]}]\n"))
    ctx = MeshContext(tiny_mesh)
    assert all(r.ok for r in ctx.build())
    for who in ("ana", "ana", "bob"):
        ctx.query("SELECT * FROM shop.orders", principal=ctx.principal(who))
    for _ in range(2):
        with pytest.raises(AuthorizationError):
            ctx.query("SELECT * FROM shop.daily_totals", principal=ctx.principal("ana"))
    yield ctx
    ctx.close()


def test_the_kept_document_holds_verdicts_only(read: MeshContext) -> None:
    stored = json.loads(document_path(read.mesh.storage_root, "shop.orders").read_text())
    status = stored["slo_status"]
    assert status["status"] == "met"
    assert status["slos"] == {"freshness": "met", "completeness": "met",
                              "availability": "unmeasured"}  # no read before the release
    assert status["evaluated_at"] and status["breach_due"]
    # attainment and usage drift: measured when served, never kept
    assert "slo_attainment" not in stored and "usage" not in stored
    quiet = json.loads(document_path(read.mesh.storage_root, "shop.customers_py").read_text())
    assert quiet["slo_status"]["status"] in {"none", "met", "unmeasured"}


def test_the_served_document_measures_slos_and_usage_now(read: MeshContext) -> None:
    doc = read.discovery("quanta://shop/orders")
    measured = doc["slo_attainment"]
    assert measured["window_seconds"] == 30 * 86_400 and measured["objective"] == 0.99
    slos = {s["slo"]: s for s in measured["slos"]}
    assert set(slos) == {"freshness", "completeness", "availability"}
    assert slos["availability"]["attainment"] == 1.0 and slos["availability"]["total"] == 3
    assert slos["freshness"]["budget_left"] == 1.0 and slos["freshness"]["breach_count"] == 0
    assert doc["slo_status"]["slos"]["availability"] == "met"  # brought up to date
    usage = doc["usage"]
    assert (usage["reads"], usage["consumers"], usage["denials"]) == (3, 2, 0)
    assert usage["queries_per_day"] == 0.1 and len(usage["per_day"]) == 30
    assert "principals" not in usage and "ana" not in json.dumps(usage)
    denied = read.discovery("shop.daily_totals")["usage"]
    assert (denied["reads"], denied["denials"]) == (0, 2)
    assert denied["per_day"][-1]["denials"] == 2
    assert doc["latest_release"]["metrics"]["completeness"] == 1.0  # quality of the latest


def test_the_terminal_view_shows_attainment_and_usage(read: MeshContext) -> None:
    """What ``quanta show`` prints once it adds ``observations`` to its document."""
    from rich.console import Console

    from quanta.catalog.document import observations, product_document
    from quanta.cli.show import print_product

    product = read.product("shop.orders")
    shown = product_document(product, read.releases(product.key),
                             read.mesh.downstream(product.key))
    shown["lifecycle"] = read.storage(product.key).lifecycle().model_dump(mode="json")
    console = Console(record=True, width=200)
    print_product(console, shown | observations(read.mesh, product.key))
    text = console.export_text()
    assert "SLO attainment over 30d: met" in text
    assert "availability 0.99: met (100% of 3 reads, budget left 100%)" in text
    assert "usage over 30d: 3 read(s) by 2 consumer(s), 0.1 per day, 0 denied" in text


def test_http_serves_the_measured_document(read: MeshContext) -> None:
    token = read.sidecar.tokens.create("carl")[0]
    with TestClient(create_app(read.sidecar),
                    headers={"Authorization": f"Bearer {token}"}) as client:
        doc = client.get("/api/v1/products/shop/orders").json()
        found = client.get("/api/v1/products", params={"slo_status": "met"}).json()
    assert doc["usage"]["reads"] == 3 and doc["slo_attainment"]["status"] == "met"
    assert doc["latest_release"]["metrics"]["completeness"] == 1.0
    assert "shop.orders" in [p["key"] for p in found["products"]]
    assert found["filters"] == {"slo_status": "met"}
    assert found["facets"]["slo_status"]["met"] >= 1


def test_search_facets_and_filters_on_slo_status(read: MeshContext) -> None:
    found = read.search(SearchQuery(""))
    assert "slo_status" in FACETS and found.facets["slo_status"]
    assert sum(found.facets["slo_status"].values()) == found.total == 3
    met = read.search(SearchQuery("", slo_status="met"))
    assert "shop.orders" in [h.key for h in met.hits]
    assert read.search(SearchQuery("", slo_status="breached")).total == 0


def test_a_product_past_its_breach_due_moment_counts_as_breached(
        store: Catalog) -> None:  # noqa: F811
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    for name, status, due in (("stale", "met", past), ("fresh", "met", later),
                              ("late", "breached", None), ("quiet", "none", None)):
        doc = document("shop", name)
        doc["slo_status"] = {"status": status, "slos": {}, "breach_due": due}
        store.register(doc)
    store.register(document("shop", "old"))  # written before documents had a status
    found = store.search(SearchQuery(""))
    assert found.facets["slo_status"] == {"breached": 2, "met": 1, "none": 1}
    breached = store.search(SearchQuery("", slo_status="breached"))
    assert sorted(h.key for h in breached.hits) == ["shop.late", "shop.stale"]
    assert [h.key for h in store.search(SearchQuery("", slo_status="met")).hits] == [
        "shop.fresh"]
    assert store.search(SearchQuery("", slo_status="nonsense")).total == 0


def test_a_reload_reads_the_statuses_registered_since(store: Catalog,  # noqa: F811
                                                       monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    """Statuses are kept between catalog generations; each reload reads only documents
    registered since the previous read began (here without the margin for late writers)."""
    monkeypatch.setattr(facets, "SLO_MARGIN", timedelta(0))
    first = document("shop", "orders")
    first["slo_status"] = {"status": "met", "breach_due": None}
    store.register(first)
    store.register(document("shop", "other"))
    assert store.search(SearchQuery("")).facets["slo_status"] == {"met": 1}
    again = document("shop", "orders", release=2, committed_at="2026-02-01T00:00:00+00:00")
    again["slo_status"] = {"status": "at_risk", "breach_due": None}
    store.register(again)
    assert store.search(SearchQuery("")).facets["slo_status"] == {"at_risk": 1}
    assert store.remove("shop.orders")
    assert store.search(SearchQuery("")).facets["slo_status"] == {}


def test_accents_fold_alike_in_both_stores(store: Catalog) -> None:  # noqa: F811
    store.register(document("food", "menu", description="Crème brûlée at the Café.",
                            ports=[port("dishes", ("entrée", "public", None, "Plat"))]))
    for query in ("cafe", "café", "CAFÉ", "creme brulee", "crème", "entree", "entrée"):
        assert [h.key for h in store.search(SearchQuery(query)).hits] == ["food.menu"], query
    assert words("Ærø Straße São_Paulo") == ["ærø", "strasse", "sao", "paulo"]


def test_waiting_breaches_freshness_and_interval_when_predicted() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    day = 86_400.0

    def result(slo: str, declared: str, measured: float | None, good: float, total: float,
               status: str = "met") -> SloResult:
        return SloResult("d.p", slo, declared, 0.99, "time", status, measured, good, total,
                         None)  # type: ignore[arg-type]

    # 10 days fresh, newest release 1h old, freshness 1d: stale in 23h, then the 1% budget
    # of the time seen so far (plus the wait) runs out a little later
    fresh = ProductSlos("d.p", [result("freshness", "1d", 3600, 10 * day, 10 * day)], [],
                        [], 0)
    due = fresh.breach_due(now)
    assert due is not None
    wait = (due - now).total_seconds()
    assert 23 * 3600 < wait < 23 * 3600 + 0.011 * (10 * day + wait)
    assert ProductSlos("d.p", [], [], [], 0).breach_due(now) is None
    gone = ProductSlos("d.p", [result("freshness", "1d", 2 * day, 9 * day, 10 * day,
                                      "breached")], [], [], 0)
    assert gone.breach_due(now) is None  # already breached: the status says so

    # one release so far: the first interval counts once it is longer than the objective
    newest = ReleaseFacts(1, now - timedelta(hours=2), {}, {}, (), None)
    once = ProductSlos("d.p", [result("interval_of_change", "1d", None, 0, 0, "unmeasured")],
                       [newest], [], 0)
    assert once.breach_due(now) == newest.committed_at + timedelta(days=1)
    # 200 good intervals: one bad one more stays above 99%, so waiting breaches nothing
    many = ProductSlos("d.p", [result("interval_of_change", "1d", 3600, 200, 200)],
                       [newest], [], 0)
    assert many.breach_due(now) is None


def test_observing_reads_the_log_once_for_both_periods(read: MeshContext) -> None:
    seen = observe_product(load_mesh(read.root), "shop.orders", days=1)
    assert seen.usage.reads == 3 and seen.slos.reads == 3 and len(seen.usage.days) == 1
    assert seen.slo_status()["status"] == "met"
