"""Discovery and search over HTTP; a broken catalog answers 503 and never touches data reads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import copy_fixture
from quanta.catalog import URL_ENV
from quanta.context import MeshContext
from quanta.serve.http import create_app


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeshContext]:
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(URL_ENV, raising=False)
        ctx = MeshContext(copy_fixture("secure", tmp_path_factory.mktemp("discovery")))
        assert all(r.ok for r in ctx.build())
        yield ctx
        ctx.close()


@pytest.fixture(scope="module")
def http(built: MeshContext) -> Iterator[TestClient]:
    token = built.sidecar.tokens.create("alice")[0]
    with TestClient(create_app(built.sidecar), base_url="http://mesh.example:8080",
                    headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def test_the_list_without_q_keeps_its_shape(http: TestClient, built: MeshContext) -> None:
    answer = http.get("/api/v1/products").json()
    assert set(answer) == {"products"}
    assert {p["name"] for p in answer["products"]} == {"listeners", "plays", "consents"}
    item = answer["products"][0]
    assert set(item) == {"address", "domain", "name", "kind", "description", "ports",
                         "lifecycle"}


def test_search_answers_ranked_products_with_facets(http: TestClient) -> None:
    answer = http.get("/api/v1/products", params={"q": "listener email"}).json()
    assert answer["total"] >= 1 and answer["products"][0]["name"] == "listeners"
    item = answer["products"][0]
    assert {"address", "domain", "name", "kind", "description", "ports", "lifecycle"} <= \
        set(item)
    assert item["lifecycle"]["state"] == "active" and "sunset" in item["lifecycle"]
    assert answer["facets"]["domain"] == {"people": answer["total"]}
    filtered = http.get("/api/v1/products",
                        params={"q": "", "classification": "confidential"}).json()
    assert [p["name"] for p in filtered["products"]] == ["listeners"]
    nasty = http.get("/api/v1/products", params={"q": 'NEAR("x* -y: (z'})
    assert nasty.status_code == 200 and nasty.json()["total"] == 0
    tags = http.get("/api/v1/products", params=[("tag", "nope"), ("tag", "other")]).json()
    assert tags["filters"] == {"tag": ["nope", "other"]} and tags["total"] == 0


def test_the_discovery_document(http: TestClient) -> None:
    doc = http.get("/api/v1/products/people/listeners").json()
    assert doc["address"] == "quanta://people/listeners" and doc["owner"]["team"]
    assert doc["ports"][0]["fields"][0]["polyseme"] == "listener_id"
    assert doc["lifecycle"]["state"] == "active"
    assert any("redact" in p for p in doc["policies"])
    assert "http://mesh.example:8080/api/v1/query" in doc["connect"]["sql_http"]
    assert "grpc://mesh.example:8815" in doc["connect"]["flight"]
    assert doc["latest_release"]["metrics"] is not None
    missing = http.get("/api/v1/products/people/nobody")
    assert missing.status_code == 404 and "not in the catalog" in missing.json()["error"][
        "message"]
    bad = http.get("/api/v1/products/People/x")
    assert bad.status_code == 400
    assert TestClient(http.app).get("/api/v1/products/people/listeners").status_code == 401


def test_a_broken_catalog_answers_503_and_reads_go_on(built: MeshContext, tmp_path: Path
                                                     ) -> None:
    def unavailable() -> object:
        from quanta.catalog import Catalog

        file = tmp_path / "broken.db"
        file.write_bytes(b"not a database" * 500)
        return Catalog(f"sqlite:///{file}")

    token = built.sidecar.tokens.create("bob")[0]
    app = create_app(built.sidecar, catalog=unavailable)  # type: ignore[arg-type]
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        for answer in (client.get("/api/v1/products", params={"q": "listener"}),
                       client.get("/api/v1/products/people/listeners")):
            assert answer.status_code == 503
            error = answer.json()["error"]
            assert error["code"] == "catalog_unavailable"
            assert "catalog" in error["message"] and "Traceback" not in answer.text
        assert client.get("/api/v1/products").status_code == 200  # the list needs no catalog
        alice = built.sidecar.tokens.create("alice")[0]
        read = client.post("/api/v1/query", json={"sql": "SELECT count(*) AS n FROM "
                                                  "people.listeners"},
                           headers={"Authorization": f"Bearer {alice}",
                                    "Accept": "application/x-ndjson"})
        assert read.status_code == 200 and read.json()["n"] >= 1, read.text
        rows = client.get("/api/v1/products/people/listeners/ports/listeners/rows",
                          headers={"Authorization": f"Bearer {alice}"})
        assert rows.status_code == 200 and rows.json()["rows"]


def test_a_server_starts_without_its_catalog(built: MeshContext, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(URL_ENV, "postgresql+psycopg://nobody@127.0.0.1:1/none")
    token = built.sidecar.tokens.create("carl")[0]
    with TestClient(create_app(built.sidecar),
                    headers={"Authorization": f"Bearer {token}"}) as client:
        answer = client.get("/api/v1/products/people/listeners")
        assert answer.status_code == 503 and "127.0.0.1" in answer.json()["error"]["message"]
        monkeypatch.delenv(URL_ENV)
        assert client.get("/api/v1/products/people/listeners").status_code == 200  # back
