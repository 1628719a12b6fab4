"""OpenLineage events of builds: START and COMPLETE/FAIL, valid, and never failing a build.

openlineage-python does not ship the spec's JSON Schema, so ``RUN_EVENT`` below is a
minimal, faithful transcription of what OpenLineage 2-0-2 requires of a RunEvent, its run,
job, datasets and facets (every facet carries ``_producer`` and ``_schemaURL``), plus the
shape of the column lineage facet (1-2-0).
"""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from quanta.context import MeshContext
from quanta.lineage.openlineage import LINEAGE_FOLDER, URL_ENV, run_uuid

URI = r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$"
UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
TIME = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"
FACET = {"type": "object", "required": ["_producer", "_schemaURL"],
         "properties": {"_producer": {"type": "string", "pattern": URI},
                        "_schemaURL": {"type": "string", "pattern": URI}}}
FACETS = {"type": "object", "additionalProperties": {"$ref": "#/$defs/facet"}}
INPUT_FIELD = {"type": "object", "required": ["namespace", "name", "field"], "properties": {
    "namespace": {"type": "string"}, "name": {"type": "string"}, "field": {"type": "string"},
    "transformations": {"type": "array", "items": {
        "type": "object", "required": ["type"],
        "properties": {"type": {"enum": ["DIRECT", "INDIRECT"]}, "subtype": {"type": "string"}},
    }}}}
RUN_EVENT: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["eventTime", "producer", "schemaURL", "run", "job", "eventType"],
    "properties": {
        "eventType": {"enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
        "eventTime": {"type": "string", "pattern": TIME},
        "producer": {"type": "string", "pattern": URI},
        "schemaURL": {"type": "string", "pattern": URI},
        "run": {"type": "object", "required": ["runId"], "properties": {
            "runId": {"type": "string", "pattern": UUID}, "facets": FACETS}},
        "job": {"type": "object", "required": ["namespace", "name"], "properties": {
            "namespace": {"type": "string", "minLength": 1},
            "name": {"type": "string", "minLength": 1}, "facets": FACETS}},
        "inputs": {"type": "array", "items": {"$ref": "#/$defs/dataset", "properties": {
            "inputFacets": FACETS}}},
        "outputs": {"type": "array", "items": {"$ref": "#/$defs/dataset", "properties": {
            "outputFacets": FACETS}}},
    },
    "$defs": {
        "facet": FACET,
        "dataset": {"type": "object", "required": ["namespace", "name"], "properties": {
            "namespace": {"type": "string", "minLength": 1},
            "name": {"type": "string", "minLength": 1},
            "facets": {"allOf": [FACETS, {"properties": {"columnLineage": {
                "type": "object", "required": ["fields"], "properties": {
                    "fields": {"type": "object", "additionalProperties": {
                        "type": "object", "required": ["inputFields"], "properties": {
                            "inputFields": {"type": "array", "items": INPUT_FIELD}}}},
                    "dataset": {"type": "array", "items": INPUT_FIELD}}}}}]}}},
    },
}


def events(mesh: Path, product: str) -> list[dict[str, Any]]:
    """Every event written for ``product``, oldest run first."""
    folder = mesh / ".quanta" / LINEAGE_FOLDER
    found = []
    for file in sorted(folder.glob(f"*-{product}-*.ndjson")):
        found += [json.loads(line) for line in file.read_text().splitlines() if line]
    return found


def valid(event: dict[str, Any]) -> dict[str, Any]:
    jsonschema.validate(event, RUN_EVENT)
    return event


def test_a_build_emits_start_and_complete_with_facets(tiny_mesh: Path) -> None:
    results = MeshContext(tiny_mesh).build()
    assert all(r.ok and not r.run.warnings for r in results)
    start, complete = (valid(e) for e in events(tiny_mesh, "shop.daily_totals"))
    assert (start["eventType"], complete["eventType"]) == ("START", "COMPLETE")
    run = next(r for r in results if r.product == "shop.daily_totals").run
    assert start["run"]["runId"] == complete["run"]["runId"] == run_uuid("tiny", run.run_id)
    uuid.UUID(start["run"]["runId"])
    assert complete["job"] == {**complete["job"], "namespace": "tiny",
                               "name": "shop.daily_totals"}
    assert "SELECT" in complete["job"]["facets"]["sql"]["query"]
    [source] = complete["inputs"]
    assert (source["namespace"], source["name"]) == ("tiny", "shop.orders.orders")
    assert source["facets"]["version"]["datasetVersion"] == "1"
    [output] = complete["outputs"]
    assert (output["namespace"], output["name"]) == ("tiny", "shop.daily_totals.totals")
    facets = output["facets"]
    assert [f["name"] for f in facets["schema"]["fields"]] == ["day", "orders", "total"]
    assert facets["version"]["datasetVersion"] == "1"
    assert facets["dataQualityMetrics"]["rowCount"] == 2
    assert facets["dataQualityMetrics"]["columnMetrics"]["total"]["max"] == 30.5
    assert facets["dataQualityAssertions"]["assertions"][0]["success"] is True
    assert facets["quanta_quality"]["metrics"]["completeness"] == 1.0
    lineage = facets["columnLineage"]
    [total] = lineage["fields"]["total"]["inputFields"]
    assert (total["name"], total["field"], total["transformations"][0]["subtype"]) == (
        "shop.orders.orders", "amount", "AGGREGATION")
    assert {"GROUP_BY", "SORT"} <= {t["subtype"] for f in lineage["dataset"]
                                     for t in f["transformations"]}
    assert output["outputFacets"]["outputStatistics"]["rowCount"] == 2
    assert "version" not in start["outputs"][0]["facets"]  # nothing released yet at START

    orders = [valid(e) for e in events(tiny_mesh, "shop.orders")][1]
    [raw] = orders["inputs"]
    assert raw["namespace"] == "file" and raw["name"].endswith("orders.csv")
    assert len(raw["facets"]["version"]["datasetVersion"]) == 16  # the files' fingerprint
    assert source["inputFacets"]["inputStatistics"]["rowCount"] == 3
    fields = orders["outputs"][0]["facets"]["columnLineage"]["fields"]
    assert fields["order_id"]["inputFields"][0]["transformations"][0]["subtype"] == "IDENTITY"


def test_a_failed_build_emits_fail_with_the_error(tiny_mesh: Path) -> None:
    spec = tiny_mesh / "domains/shop/daily_totals/dataproduct.yaml"
    spec.write_text(spec.read_text().replace("{check: row_count, min: 1}",
                                             "{check: row_count, min: 100}"))
    results = MeshContext(tiny_mesh).build()
    failed = next(r for r in results if r.product == "shop.daily_totals")
    assert not failed.ok
    start, fail = (valid(e) for e in events(tiny_mesh, "shop.daily_totals"))
    assert (start["eventType"], fail["eventType"]) == ("START", "FAIL")
    message = fail["run"]["facets"]["errorMessage"]["message"]
    assert message.startswith("checks_failed:") and failed.run.run_id in message
    assert fail["run"]["facets"]["errorMessage"]["programmingLanguage"] == "python"
    [output] = fail["outputs"]
    assert output["facets"]["dataQualityAssertions"]["assertions"][0]["success"] is False
    assert "version" not in output["facets"]  # no release was made


def test_a_broken_http_transport_does_not_fail_the_build(
        tiny_mesh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv(URL_ENV, f"http://127.0.0.1:{port}")
    [result] = MeshContext(tiny_mesh).build(["shop.orders"])
    assert result.ok and result.release is not None
    assert any("OpenLineage http transport failed" in w for w in result.run.warnings)
    recorded = MeshContext(tiny_mesh).runs("shop.orders")[-1]
    assert recorded.outcome == "released" and recorded.warnings == result.run.warnings
    # the file transport still wrote both events
    assert [e["eventType"] for e in events(tiny_mesh, "shop.orders")] == ["START", "COMPLETE"]


def test_an_unwritable_lineage_folder_does_not_fail_the_build(tiny_mesh: Path) -> None:
    storage = tiny_mesh / ".quanta"
    storage.mkdir()
    (storage / LINEAGE_FOLDER).write_text("not a folder")
    [result] = MeshContext(tiny_mesh).build(["shop.orders"])
    assert result.ok
    assert any("file transport failed" in w for w in result.run.warnings)


def test_a_broken_lineage_yaml_is_a_warning_not_a_failure(tiny_mesh: Path) -> None:
    (tiny_mesh / "domains/shop/customers_py/lineage.yaml").write_text("customers: {x: y}\n")
    results = MeshContext(tiny_mesh).build()
    customers = next(r for r in results if r.product == "shop.customers_py")
    assert customers.ok
    assert any("column lineage of shop.customers_py" in w for w in customers.run.warnings)
    complete = valid(events(tiny_mesh, "shop.customers_py")[-1])
    assert "columnLineage" not in complete["outputs"][0]["facets"]


def test_every_demo_build_emitted_valid_events(demo_mesh: Path) -> None:
    products = MeshContext(demo_mesh).mesh.products
    for key in products:
        found = [valid(e) for e in events(demo_mesh, key)]
        assert [e["eventType"] for e in found][-2:] == ["START", "COMPLETE"], key
    catalog = events(demo_mesh, "artists.catalog")[-1]
    outputs = {o["name"]: o for o in catalog["outputs"]}
    fields = outputs["artists.catalog.artists"]["facets"]["columnLineage"]["fields"]
    assert fields["artist_name"]["inputFields"][0]["field"] == "name"  # from lineage.yaml
    plays = events(demo_mesh, "listening.play_events")[-1]
    assert plays["inputs"][0]["namespace"].startswith("sqlite://")
    assert plays["inputs"][0]["name"] == "plays"
