"""A product as one JSON document: what ``quanta show`` prints and what discovery serves.

``product_document`` is the full view (``quanta show --json``: profiles and check samples
included). ``discovery_document`` is the one kept beside the releases and indexed by the
catalog: the same without any data value (no profile, no sample rows, so erasure never has
to look in it), plus polysemes, life cycle, ready-to-copy connection snippets and the SLO
status at the time it was written (``slo_status``: verdicts only, which the catalog facets).

How a product keeps its promises and who uses it change between releases, so they are not
kept: ``observations`` measures them when a document is served (SLO attainment with error
budgets, usage with consumers, queries per day and denials) from release manifests, run
records and the audit log (``quanta.observe``), and brings ``slo_status`` up to date.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from quanta.catalog.entry import DOCUMENT_FORMAT
from quanta.errors import QuantaError
from quanta.observe import observe_product
from quanta.sidecar.access import describe
from quanta.spec.mesh import Mesh, Product
from quanta.storage import ProductStorage, Release
from quanta.values import jsonable

HTTP_URL = "http://localhost:8080"
FLIGHT_URL = "grpc://localhost:8815"


def product_document(product: Product, releases: list[Release], downstream: list[str]
                     ) -> dict[str, Any]:
    """What ``quanta show`` tells about a product, as one JSON-ready document."""
    spec = product.spec
    latest = releases[-1] if releases else None
    return {
        "address": f"quanta://{spec.domain}/{spec.name}",
        "name": spec.name, "domain": spec.domain, "kind": spec.kind,
        "version": spec.version, "description": spec.description,
        "owner": spec.owner.model_dump(exclude_none=True), "tags": spec.tags,
        "spec_file": str(product.doc.file),
        "inputs": [i.model_dump(exclude_none=True) for i in spec.inputs],
        "upstream": sorted({a.product_key for _, a in product.upstream()}),
        "downstream": downstream,
        "ports": [
            {"name": p.name, "description": p.description, "event_time": p.event_time,
             "primary_key": p.primary_key, "sql_name": f"{spec.domain}.{spec.name}.{p.name}",
             "fields": [f.model_dump(exclude_none=True) for f in p.fields],
             "rows": latest.ports[p.name].rows if latest and p.name in latest.ports else None}
            for p in spec.outputs
        ],
        "slos": spec.slos.model_dump(exclude_none=True),
        "retention": spec.retention,
        "policies": [describe(p) for p in spec.policies],
        "triggers": [t.model_dump(exclude_none=True) for t in spec.triggers],
        "releases": [{"release": r.release, "committed_at": r.committed_at, "rows": r.rows,
                      "interface_version": r.interface_version} for r in releases],
        "latest_release": None if latest is None else {
            "release": latest.release, "committed_at": latest.committed_at,
            "run_id": latest.run_id, "inputs": latest.model_dump()["inputs"],
            "checks": [c.model_dump() for c in latest.checks],
            "metrics": latest.metrics, "profile": latest.profile,
        },
    }


def discovery_document(mesh: Mesh, key: str, now: datetime | None = None) -> dict[str, Any]:
    """The discovery document of a product at its latest release (JSON-ready, no data
    values): owner, description, kind, tags, ports with schemas and semantics, polysemes,
    quality metrics and checks, releases, lineage, policies in plain words, life cycle, how
    to connect in each serving mode, and the SLO status as of ``now``."""
    now = now or datetime.now(UTC)
    product = mesh.product(key)
    storage = ProductStorage(mesh.storage_root, product.key)
    document = product_document(product, storage.releases(), mesh.downstream(product.key))
    latest = document["latest_release"]
    if latest is not None:
        latest.pop("profile", None)
        latest["checks"] = [{k: v for k, v in c.items() if k != "sample"}
                            for c in latest["checks"]]
    try:
        document["spec_file"] = str(product.doc.file.relative_to(mesh.root))
    except ValueError:
        document["spec_file"] = product.doc.file.name
    polysemes: dict[str, list[str]] = {}
    for port in product.spec.outputs:
        for f in port.fields:
            if f.polyseme:
                polysemes.setdefault(f.polyseme, []).append(f"{port.name}.{f.name}")
    first = product.spec.outputs[0]
    document = {
        "document": DOCUMENT_FORMAT, "mesh": mesh.spec.name, "key": product.key, **document,
        "polysemes": polysemes,
        "lifecycle": storage.lifecycle().model_dump(mode="json", exclude={"history"}),
        "history": release_history(mesh, product, storage),
        "connect": connect_snippets(product.spec.domain, product.spec.name, first.name),
        "slo_status": observations(mesh, product.key, now)["slo_status"],
        "generated_at": now,
    }
    return dict(jsonable(document))


def observations(mesh: Mesh, key: str, now: datetime | None = None) -> dict[str, Any]:
    """What a discovery document shows measured when it is served: ``slo_status`` (the
    verdicts, as indexed), ``slo_attainment`` (each SLO over the last 30 days: measured value,
    attainment, error budget left, newest breaches with causes) and ``usage`` (reads,
    consumers, queries per day and denials over the last 30 days, no principal named).

    Measuring never fails a document: a problem (an unreadable audit log) leaves the
    status ``unmeasured`` and says why in ``observe_warnings``."""
    now = now or datetime.now(UTC)
    try:
        seen = observe_product(mesh, key, now=now)
    except (QuantaError, OSError) as exc:
        reason = exc.message if isinstance(exc, QuantaError) else str(exc)
        return {"slo_status": {"status": "unmeasured", "slos": {}, "breach_due": None,
                               "evaluated_at": now.isoformat()},
                "slo_attainment": None, "usage": None,
                "observe_warnings": [f"not measured: {reason}"]}
    return {"slo_status": seen.slo_status(), "slo_attainment": seen.attainment(),
            "usage": seen.usage_summary(), "observe_warnings": seen.warnings}


def release_history(mesh: Mesh, product: Product, storage: ProductStorage) -> dict[str, Any]:
    """Which old releases stay readable: the rule, the oldest release available and how
    many expired (``quanta vacuum``)."""
    rule = mesh.spec.release_history(product.spec)
    numbers = storage.release_numbers()
    expired = storage.expired_numbers()
    return {"rule": rule.describe(), "keep": rule.keep, "max_age": rule.max_age,
            "oldest_available": numbers[0] if numbers else None,
            "expired": len(expired), "last_expired": expired[-1] if expired else None}


def connect_snippets(domain: str, name: str, port: str, http_url: str = HTTP_URL,
                     flight_url: str = FLIGHT_URL) -> dict[str, str]:
    """Ready-to-copy ways to read a port, one per serving mode (``$TOKEN`` from
    ``quanta token create``)."""
    table = f"{domain}.{name}.{port}"
    sql = f"SELECT * FROM {table} LIMIT 10"
    body = json.dumps({"sql": sql})
    return {
        "token": "export TOKEN=$(quanta token create <principal>)",
        "sql_http": (f"curl -s {http_url}/api/v1/query -H \"Authorization: Bearer $TOKEN\" "
                     f"-H \"Accept: text/csv\" -d '{body}'"),
        "rest_rows": (f"curl -s \"{http_url}/api/v1/products/{domain}/{name}/ports/{port}"
                      f"/rows?limit=100\" -H \"Authorization: Bearer $TOKEN\""),
        "flight": (
            "import json, os\nimport pyarrow.flight as flight\n\n"
            f"client = flight.connect(\"{flight_url}\")\n"
            "options = flight.FlightCallOptions(headers=[\n"
            "    (b\"authorization\", f\"Bearer {os.environ['TOKEN']}\".encode())])\n"
            f"ticket = flight.Ticket(json.dumps({{\"sql\": \"{sql}\"}}).encode())\n"
            "table = client.do_get(ticket, options).read_all()\n"),
        "python": (
            "import os\nimport quanta\n\n"
            f"client = quanta.connect(\"{http_url}\", token=os.environ[\"TOKEN\"])\n"
            f"table = client.read(\"quanta://{domain}/{name}/{port}\")\n"
            f"rows = client.sql(\"{sql}\").to_polars()\n"),
    }
