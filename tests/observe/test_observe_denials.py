"""A denial's audit record names the products the query tried to read, so usage and metrics
count denials per product, while availability still leaves them out (they are the reader's)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from quanta.context import MeshContext
from quanta.observe import read_access_log, slo_report, usage_report
from quanta.serve.http import create_app
from quanta.sidecar.access import AuthorizationError
from quanta.spec.mesh import load_mesh


def test_a_denial_names_the_products_it_tried_to_read(tiny_mesh: Path) -> None:
    ctx = MeshContext(tiny_mesh)
    assert all(r.ok for r in ctx.build())
    with TestClient(create_app(ctx.sidecar)) as client:
        with pytest.raises(AuthorizationError):
            ctx.query("SELECT o.order_id FROM shop.orders o JOIN shop.daily_totals t "
                      "ON true", principal=ctx.principal("eve"))
        ctx.query("SELECT count(*) FROM shop.orders")
        metrics = client.get("/metrics").text
    ctx.close()

    denial, read = ctx.sidecar.audit.tail(2)
    assert denial["outcome"] == "denied" and "snapshot" not in denial
    assert denial["products"] == ["shop.daily_totals", "shop.orders"]
    assert read["products"] == ["shop.orders"] and read["snapshot"] == {"shop.orders": 1}
    assert ctx.sidecar.audit.verify().ok  # the chain covers the new field

    log = read_access_log(ctx.mesh.storage_root)
    assert [r.principal for r in log.refused("shop.daily_totals")] == ["eve"]
    assert log.of("shop.daily_totals") == [] and len(log.of("shop.orders")) == 1
    only = read_access_log(ctx.mesh.storage_root, products=["shop.daily_totals"])
    assert [r.outcome for r in only.reads] == ["denied"]

    mesh = load_mesh(tiny_mesh)
    usage = {p.product: p for p in usage_report(mesh, days=1).products}
    assert usage["shop.orders"].denials == 1 and usage["shop.orders"].reads == 1
    assert usage["shop.daily_totals"].refused == {"denied": 1}
    assert usage["shop.daily_totals"].days[-1].denials == 1
    assert usage["shop.daily_totals"].reads == 0 and usage["shop.daily_totals"].consumers == 0
    # availability counts reads that reached data: the denial is not one
    [orders] = slo_report(mesh, ["shop.orders"]).products
    assert orders.reads == 1

    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(metrics) for s in family.samples}
    for product in ("shop.orders", "shop.daily_totals"):
        assert samples[("quanta_product_reads_total",
                        (("outcome", "denied"), ("product", product)))] == 1
    assert samples[("quanta_product_reads_total",
                    (("outcome", "ok"), ("product", "shop.orders")))] == 1


def test_records_written_before_products_were_named_still_parse(tiny_mesh: Path) -> None:
    audit = tiny_mesh / ".quanta/audit/audit.ndjson"
    audit.parent.mkdir(parents=True)
    audit.write_text(
        '{"time": "2026-01-01T00:00:00+00:00", "principal": "eve", "outcome": "denied", '
        '"mode": "sql", "query_sha256": "x"}\n'
        '{"time": "2026-01-01T00:00:01+00:00", "principal": "ana", "outcome": "ok", '
        '"mode": "sql", "snapshot": {"shop.orders": 1}}\n'
        '{"time": "2026-01-01T00:00:02+00:00", "outcome": "denied", "products": "shop.x"}\n')
    log = read_access_log(tiny_mesh / ".quanta")
    assert [r.principal for r in log.reads] == ["ana"]
    assert log.refused("shop.orders") == [] and "1 line(s)" in log.warnings[0]
