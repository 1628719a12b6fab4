"""Every serving mode returns the same rows under the same policies, and names its snapshot."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import quanta
from conftest import Served
from quanta.errors import NotFoundError, QuantaError
from quanta.sidecar.access import AuthorizationError
from quanta.sidecar.tokens import AuthenticationError

SQL = "SELECT * FROM people.listeners ORDER BY listener_id"


def normal(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{k: str(v) for k, v in row.items()} for row in rows]


def via_http(served: Served, media: str, sql: str = SQL, who: str = "alice") -> pa.Table:
    with served.client(who) as http:
        response = http.post("/api/v1/query", json={"sql": sql}, headers={"Accept": media})
    assert response.status_code == 200, response.text
    assert response.headers["quanta-snapshot"] == "people.listeners@1"
    body = response.content
    if media.endswith("arrow.stream"):
        return pa.ipc.open_stream(body).read_all()
    if media.endswith("ndjson"):
        return pa.Table.from_pylist([json.loads(line) for line in body.splitlines()])
    if media == "text/csv":
        return pacsv.read_csv(io.BytesIO(body))
    return pq.read_table(io.BytesIO(body))


def test_all_modes_return_identical_rows_for_one_principal(served: Served) -> None:
    local = quanta.connect(served.mesh, principal="alice").sql(SQL)
    expected = normal(local.to_pylist())
    assert len(expected) == 4 and local.snapshot == {"people.listeners": 1}
    arrow = via_http(served, "application/vnd.apache.arrow.stream")
    assert arrow.schema.equals(local.arrow.schema)
    assert normal(arrow.to_pylist()) == expected
    parquet = via_http(served, "application/vnd.apache.parquet")
    assert normal(parquet.to_pylist()) == expected
    ndjson = via_http(served, "application/x-ndjson")
    assert [r["email"] for r in ndjson.to_pylist()] == [r["email"] for r in expected]
    csv = via_http(served, "text/csv")
    assert [str(v) for v in csv.column("listener_id").to_pylist()] == [
        r["listener_id"] for r in expected]
    remote = quanta.connect(served.http, token=served.tokens["alice"]).sql(SQL)
    assert normal(remote.to_pylist()) == expected and remote.snapshot == local.snapshot
    flight = quanta.connect(served.flight, token=served.tokens["alice"]).sql(SQL)
    assert normal(flight.to_pylist()) == expected and flight.snapshot == local.snapshot
    assert flight.to_polars().shape == (4, 7) and flight.to_pandas().shape == (4, 7)


def test_rest_rows_pages_are_pinned_to_one_release(served: Served) -> None:
    with served.client("pia") as http:
        url = "/api/v1/products/people/listeners/ports/listeners/rows"
        first = http.get(url, params={"limit": 2}).json()
        assert [r["listener_id"] for r in first["rows"]] == ["l1", "l2"]
        assert first["release"] == 1 and first["next_cursor"]
        seen = [r["listener_id"] for r in first["rows"]]
        cursor = first["next_cursor"]
        while cursor:
            page = http.get(url, params={"limit": 2, "cursor": cursor}).json()
            assert page["release"] == 1
            seen += [r["listener_id"] for r in page["rows"]]
            cursor = page["next_cursor"]
        assert seen == ["l1", "l2", "l3", "l4", "l5"]
        bad = http.get(url, params={"cursor": "nonsense!"})
        assert bad.status_code == 400 and "cursor" in bad.json()["error"]["message"]
        too_big = http.get(url, params={"limit": 10**6})
        assert too_big.status_code == 400


def test_masks_and_filters_hold_in_every_mode(served: Served) -> None:
    sql = "SELECT listener_id, email, country FROM people.listeners ORDER BY country"
    local = quanta.connect(served.mesh, principal="de_only").sql(sql).to_pylist()
    remote = quanta.connect(served.http, token=served.tokens["de"]).sql(sql).to_pylist()
    flight = quanta.connect(served.flight, token=served.tokens["de"]).sql(sql).to_pylist()
    assert local == remote == flight
    assert {r["country"] for r in local} == {"DE"}
    assert all(len(str(r["listener_id"])) == 32 for r in local)


@pytest.mark.parametrize(("who", "status", "kind"), [
    (None, 401, AuthenticationError), ("bob", 403, AuthorizationError),
])
def test_auth_errors_in_every_mode(served: Served, who: str | None, status: int,
                                   kind: type[QuantaError]) -> None:
    with served.client(who) as http:
        response = http.post("/api/v1/query", json={"sql": SQL})
    assert response.status_code == status
    assert response.json()["error"]["message"]
    token = served.tokens[who] if who else None
    for target in (served.http, served.flight):
        with pytest.raises(kind):
            quanta.connect(target, token=token).sql(SQL)


def test_bad_requests_get_clear_4xx(served: Served) -> None:
    with served.client() as http:
        cases = [
            (http.post("/api/v1/query", content=b"{not json",
                       headers={"content-type": "application/json"}), 400, "bad request"),
            (http.post("/api/v1/query", json={}), 400, "sql"),
            (http.post("/api/v1/query", json={"sql": SQL, "extra": 1}), 400, "extra"),
            (http.post("/api/v1/query", json={"sql": "x" * 100_001}), 400, "sql"),
            (http.post("/api/v1/query", json={"sql": "DROP TABLE people.listeners"}), 400,
             "only SELECT"),
            (http.post("/api/v1/query", json={"sql": "SELECT * FROM people.nope"}), 404,
             "no product"),
            (http.post("/api/v1/query", json={"sql": SQL}, headers={"Accept": "image/png"}), 406,
             "cannot answer"),
            (http.post("/api/v1/query", json={"sql": SQL, "as_of": "yesterday"}), 400,
             "as_of"),
            (http.get("/api/v1/products/People/x/ports/y/rows"), 400, "not a valid name"),
        ]
        for response, status, words in cases:
            assert response.status_code == status, (words, response.text)
            assert words in response.json()["error"]["message"], response.text
        assert http.get("/healthz").json() == {"status": "ok"}
        assert http.get("/readyz").status_code == 200
        openapi = http.get("/openapi.json").json()
        assert "/api/v1/query" in openapi["paths"]


def test_time_travel_and_not_found_over_http(served: Served) -> None:
    client = quanta.connect(served.http, token=served.tokens["pia"])
    assert client.read("quanta://people/plays@1").num_rows == 5
    with pytest.raises(NotFoundError, match="no release 9"):
        client.sql("SELECT * FROM people.plays", as_of=9)


def test_query_body_is_json_whatever_its_content_type(served: Served) -> None:
    with served.client() as http:
        response = http.post(
            "/api/v1/query", content=json.dumps({"sql": "SELECT count(*) AS n FROM people.plays"}),
            headers={"content-type": "application/x-www-form-urlencoded", "Accept": "text/csv"})
    assert response.status_code == 200, response.text
    assert response.text.splitlines() == ['"n"', "5"]


def test_api_docs_page_works_offline(served: Served) -> None:
    with httpx.Client(base_url=served.http) as http:
        page = http.get("/docs")
        assert page.status_code == 200 and "/openapi.json" in page.text
        assert "cdn" not in page.text.lower() and "https://" not in page.text
        script = http.get("/docs-assets/swagger-ui-bundle.js")
        assert script.status_code == 200 and len(script.content) > 100_000
        assert http.get("/docs-assets/swagger-ui.css").status_code == 200


def test_limits_over_http_are_a_clear_4xx(served: Served) -> None:
    token, _ = served.context.sidecar.tokens.create("tiny_quota")
    for media in ("application/x-ndjson", "text/csv", "application/vnd.apache.arrow.stream"):
        response = httpx.post(f"{served.http}/api/v1/query",
                              json={"sql": "SELECT * FROM people.listeners"},
                              headers={"Authorization": f"Bearer {token}", "Accept": media})
        assert response.status_code == 400, (media, response.text)
        assert "more than 2 rows" in response.json()["error"]["message"]
