"""GET /metrics (Prometheus text, live counters fed by the audit log) and
GET /api/v1/products/{domain}/{product}/slo, on a real server."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from conftest import Served
from quanta.context import MeshContext
from quanta.serve.http import create_app

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: httpx.Client | TestClient) -> Samples:
    answer = client.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(answer.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_parse_and_move_after_reads_and_denials(served: Served) -> None:
    anonymous = served.client(None)
    before = scrape(anonymous)  # no token needed
    with served.client("alice") as alice:
        answer = alice.post("/api/v1/query", json={"sql": "SELECT * FROM people.plays"},
                            headers={"Accept": "application/x-ndjson"})
        assert answer.status_code == 200, answer.text
    with served.client("bob") as bob:
        denied = bob.post("/api/v1/query", json={"sql": "SELECT * FROM people.listeners"})
        assert denied.status_code == 403
    assert anonymous.post("/api/v1/query", json={"sql": "SELECT 1"}).status_code == 401
    after = scrape(anonymous)

    ok = {"mode": "http-x-ndjson", "outcome": "ok"}
    assert value(after, "quanta_queries_total", **ok) == value(
        before, "quanta_queries_total", **ok) + 1
    assert value(after, "quanta_query_duration_seconds_count", **ok) == value(
        before, "quanta_query_duration_seconds_count", **ok) + 1
    assert value(after, "quanta_product_reads_total", product="people.plays",
                 outcome="ok") >= 1 + value(before, "quanta_product_reads_total",
                                            product="people.plays", outcome="ok")
    denial = {"mode": "http-x-ndjson"}
    assert value(after, "quanta_policy_denials_total", **denial) == value(
        before, "quanta_policy_denials_total", **denial) + 1
    assert value(after, "quanta_authentication_failures_total") == value(
        before, "quanta_authentication_failures_total") + 1

    # what storage records: builds, rows of the latest release, freshness
    for product in ("people.plays", "people.listeners", "people.consents"):
        assert value(after, "quanta_builds_total", product=product, outcome="released") >= 1
        assert value(after, "quanta_build_duration_seconds_count", product=product,
                     outcome="released") >= 1
        assert value(after, "quanta_latest_release", product=product) >= 1
        assert 0 <= value(after, "quanta_freshness_seconds", product=product) < 3600
    assert value(after, "quanta_port_rows", product="people.plays", port="plays") > 0
    # no principal, query or value in any label
    labels = {v for (_, pairs) in after for _, v in pairs}
    assert not labels & {"alice", "bob", "pia", "SELECT * FROM people.plays"}


def test_several_apps_in_one_process_keep_their_own_counters(tiny_mesh: Path) -> None:
    ctx = MeshContext(tiny_mesh)
    assert all(r.ok for r in ctx.build(["shop.orders"]))
    first, second = TestClient(create_app(ctx.sidecar)), TestClient(create_app(ctx.sidecar))
    ctx.query("SELECT count(*) FROM shop.orders")
    ok = {"mode": "local", "outcome": "ok"}
    assert value(scrape(first), "quanta_queries_total", **ok) == 1
    assert value(scrape(second), "quanta_queries_total", **ok) == 1
    assert value(scrape(first), "quanta_builds_total", product="shop.orders",
                 outcome="released") == 1
    assert value(scrape(first), "quanta_freshness_objective_seconds",
                 product="shop.orders") == 86_400
    assert ("quanta_latest_release", (("product", "shop.daily_totals"),)) not in scrape(first)

    # a listener that fails never fails a read; it is counted
    def broken(record: dict[str, object]) -> None:
        raise RuntimeError("boom")

    ctx.sidecar.audit.listeners.insert(0, broken)
    assert ctx.query("SELECT count(*) FROM shop.orders").table.num_rows == 1
    samples = scrape(first)
    assert value(samples, "quanta_audit_listener_errors_total") == 1
    assert value(samples, "quanta_queries_total", **ok) == 2  # later listeners still ran
    ctx.close()


def test_slo_endpoint_answers_200_401_404(served: Served, tiny_mesh: Path) -> None:
    with served.client("bob") as bob:
        answer = bob.get("/api/v1/products/people/plays/slo")
        assert answer.status_code == 200, answer.text
        document = answer.json()
        assert document["product"] == "people.plays" and document["slos"] == []
        assert document["window_seconds"] == 30 * 86_400
        assert bob.get("/api/v1/products/people/nope/slo").status_code == 404
        assert bob.get("/api/v1/products/people/plays/slo?window=soon").json()["error"][
            "code"] == "window_invalid"
    assert served.client(None).get("/api/v1/products/people/plays/slo").status_code == 401
    wrong = httpx.get(f"{served.http}/api/v1/products/people/plays/slo",
                      headers={"Authorization": "Bearer qnt_nope_nope"})
    assert wrong.status_code == 401

    ctx = MeshContext(tiny_mesh)  # a product promising SLOs
    assert all(r.ok for r in ctx.build(["shop.orders"]))
    token = ctx.sidecar.tokens.create("ana")[0]
    with TestClient(create_app(ctx.sidecar)) as client:
        found = client.get("/api/v1/products/shop/orders/slo?window=7d&objective=0.95",
                           headers={"Authorization": f"Bearer {token}"}).json()
    ctx.close()
    assert found["objective"] == 0.95 and found["window_seconds"] == 7 * 86_400
    slos = {s["slo"]: s for s in found["slos"]}
    assert slos["freshness"]["status"] == "met" and slos["freshness"]["target"] == 0.95
    assert slos["completeness"]["attainment"] == 1.0
    assert found["releases"][0]["release"] == 1
