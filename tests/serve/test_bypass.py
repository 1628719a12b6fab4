"""Attempts to get around the sidecar, in every mode: each is refused or answered governed.

The secure mesh holds canaries: a hidden row (filtered for the principal) whose email is
CANARY-EMAIL-5b1e@leak.example, clear emails at mail.example and clear listener ids l1..l5
(hash-masked for the principal). None may appear in any response body of any mode.
"""

from __future__ import annotations

import json

import httpx
import pyarrow.flight as flight
import pytest

from conftest import Served
from quanta.errors import QuantaError
from quanta.sidecar import Principal

CANARIES = ("CANARY-EMAIL-5b1e", "mail.example", '"l1"', '"l5"', "'l5'", "1999-09-09")
REFUSED, ANSWERED = "refused", "answered"

CORPUS: list[tuple[str, str]] = [
    ("SELECT * FROM '/etc/passwd'", REFUSED),
    ("SELECT * FROM read_csv_auto('/etc/passwd')", REFUSED),
    ("SELECT read_text('/etc/passwd')", REFUSED),
    ("COPY (SELECT * FROM people.listeners) TO '/tmp/out.csv'", REFUSED),
    ("ATTACH '/tmp/other.db' AS other", REFUSED),
    ("SELECT 1 FROM people.plays; SELECT * FROM people.listeners", REFUSED),
    ("SELECT count(*) FROM people.plays; -- harmless\nSELECT email FROM people.listeners",
     REFUSED),
    ("SELECT /* FROM people.secret */ email FROM people.listeners", ANSWERED),
    ("SELECT * FROM peopl\u0435.listeners", REFUSED),  # a Cyrillic e
    ('SELECT * FROM "people"."listeners"', ANSWERED),
    ("SELECT * FROM port__people__listeners__listeners", REFUSED),
    ("SELECT * FROM information_schema.tables", REFUSED),
    ("SELECT * FROM duckdb_settings()", REFUSED),
    ("SELECT sql FROM duckdb_views()", REFUSED),
    ("PRAGMA show_tables", REFUSED),
    ("SET enable_external_access = true", REFUSED),
    ("INSTALL httpfs", REFUSED),
    ("LOAD httpfs", REFUSED),
    ("SELECT * FROM pg_catalog.pg_tables", REFUSED),
    ("SELECT current_setting('allowed_directories')", REFUSED),
    ("SELECT getenv('HOME') FROM people.plays", REFUSED),
    ("SELECT md5(email), sha256(listener_id) FROM people.listeners", ANSWERED),
    ("SELECT CAST(listener_id AS BLOB), email::VARCHAR FROM people.listeners", ANSWERED),
    ("SELECT email, count(*) FROM people.listeners GROUP BY email", ANSWERED),
    ("SELECT count(*) AS n FROM people.listeners WHERE hidden", ANSWERED),
    ("SELECT sum(CASE WHEN hidden THEN 1 ELSE 0 END) FROM people.listeners", ANSWERED),
    ("SELECT * FROM people.plays WHERE listener_id IN "
     "(SELECT listener_id FROM people.listeners WHERE hidden)", ANSWERED),
    ("SELECT * FROM people.plays WHERE listener_id = 'l5'", ANSWERED),
    ("SELECT lag(email) OVER (ORDER BY country) FROM people.listeners", ANSWERED),
    ("SELECT regexp_extract(email, '(.*)') FROM people.listeners", ANSWERED),
    ("SELECT max(birth_date), min(birth_date) FROM people.listeners", ANSWERED),
    ("EXPLAIN SELECT * FROM people.listeners", REFUSED),
    ("DESCRIBE people.listeners", REFUSED),
    ("SELECT * FROM query_table('people.listeners')", REFUSED),
    ("SELECT * FROM people.listeners.listeners.extra", REFUSED),
    ("SELECT * FROM 'people.listeners'", REFUSED),
    ("SELECT * FROM people.plays, read_parquet('/tmp/x.parquet')", REFUSED),
    ("SELECT * FROM glob('/tmp/*')", REFUSED),
    ("VALUES (1)", REFUSED),
    ("SELECT * FROM people.listeners USING SAMPLE 100%", ANSWERED),
    ("WITH listeners AS (SELECT * FROM people.listeners) SELECT email FROM listeners",
     ANSWERED),
    ("SELECT " + "(" * 3000 + "1" + ")" * 3000 + " FROM people.plays", REFUSED),
    ("SELECT " + " + ".join(["1"] * 5000) + " AS n FROM people.plays", REFUSED),
    ("SELECT 1 FROM people.plays WHERE play_id = ?", REFUSED),
    ("SELECT * FROM people.listeners UNION ALL SELECT * FROM people.listeners", ANSWERED),
    ("", REFUSED),
    ("   ;  ", REFUSED),
]


def assert_clean(text: str, served: Served) -> None:
    for canary in CANARIES:
        assert canary not in text, canary
    assert str(served.mesh) not in text and ".quanta" not in text


def test_corpus_is_big_enough() -> None:
    assert len(CORPUS) >= 30


@pytest.mark.parametrize(("sql", "expect"), CORPUS, ids=[f"attempt{i}" for i in
                                                          range(len(CORPUS))])
def test_attempt_in_every_mode(served: Served, sql: str, expect: str) -> None:
    # in process, through the local sidecar
    local_refused = False
    try:
        table = served.context.query(sql, principal=Principal("alice"))
        assert_clean(json.dumps(table.table.to_pylist(), default=str), served)
    except QuantaError as exc:
        local_refused = True
        assert_clean(exc.render(), served)
    assert local_refused == (expect == REFUSED), sql[:80]

    # over HTTP, in every answer format
    with served.client("alice") as http:
        for media in ("application/x-ndjson", "text/csv", "application/vnd.apache.arrow.stream"):
            response = http.post("/api/v1/query", json={"sql": sql}, headers={"Accept": media})
            assert_clean(response.content.decode("latin-1"), served)
            if expect == REFUSED:
                assert 400 <= response.status_code < 500, response.text
                assert response.json()["error"]["message"]
            else:
                assert response.status_code == 200, response.text

    # over Arrow Flight
    client = flight.FlightClient(served.flight)
    options = flight.FlightCallOptions(
        headers=[(b"authorization", f"Bearer {served.tokens['alice']}".encode())])
    try:
        table = client.do_get(flight.Ticket(json.dumps({"sql": sql}).encode()),
                              options).read_all()
        assert expect == ANSWERED, sql[:80]
        assert_clean(json.dumps(table.to_pylist(), default=str), served)
    except flight.FlightError as exc:
        assert expect == REFUSED, (sql[:80], str(exc))
        assert_clean(str(exc), served)
    finally:
        client.close()


def test_server_survives_garbage(served: Served) -> None:
    with httpx.Client(base_url=served.http, timeout=30) as http:
        bad_tokens = ["", "Bearer", "Bearer qnt_", "Basic dXNlcjpwYXNz", "Bearer " + "x" * 10000,
                      f"Bearer {served.tokens['alice']}x"]
        for header in bad_tokens:
            response = http.post("/api/v1/query", json={"sql": "SELECT 1 FROM people.plays"},
                                 headers={"Authorization": header})
            assert response.status_code == 401
        for body in (b"", b"[]", b"null", b'{"sql": 5}', b'{"sql": ["x"]}', b"\xff\xfe"):
            response = http.post("/api/v1/query", content=body, headers={
                "Authorization": f"Bearer {served.tokens['alice']}",
                "content-type": "application/json"})
            assert response.status_code == 400, body
        assert http.get("/healthz").json() == {"status": "ok"}
    client = flight.FlightClient(served.flight)
    for ticket in (b"", b"not json", b'{"nope": 1}', b"[1]"):
        options = flight.FlightCallOptions(
            headers=[(b"authorization", f"Bearer {served.tokens['alice']}".encode())])
        with pytest.raises(flight.FlightError):
            client.do_get(flight.Ticket(ticket), options).read_all()
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.do_get(flight.Ticket(b'{"sql": "SELECT 1 FROM people.plays"}')).read_all()
    client.close()
