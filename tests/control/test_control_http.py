"""The control port over HTTP: grants, life cycle and erasure, each for whom may do it."""

from __future__ import annotations

from datetime import date, timedelta

import httpx

from conftest import Served

SQL = {"sql": "SELECT count(*) AS n FROM people.listeners"}


def client(served: Served, name: str, groups: list[str] | None = None) -> httpx.Client:
    token = served.context.sidecar.tokens.create(name, groups)[0]
    return httpx.Client(base_url=served.http, timeout=30,
                        headers={"Authorization": f"Bearer {token}"})


def test_owners_grant_and_revoke_over_http(served: Served) -> None:
    with client(served, "http_owner", ["people"]) as owner, \
            client(served, "http_reader") as reader, client(served, "http_other") as other:
        assert reader.post("/api/v1/query", json=SQL).status_code == 403
        refused = other.post("/api/v1/grants", json={
            "subject": "http_reader", "address": "quanta://people/listeners"})
        assert refused.status_code == 403 and "group:people" in refused.json()["error"]["hint"]
        given = owner.post("/api/v1/grants", json={
            "subject": "http_reader", "address": "quanta://people/listeners", "expires": "1h"})
        assert given.status_code == 201, given.text
        assert given.json()["grant"]["expires_at"]
        assert reader.post("/api/v1/query", json=SQL).status_code == 200
        mine = reader.get("/api/v1/grants").json()["grants"]
        assert [g["subject"] for g in mine] == ["http_reader"]
        taken = owner.post("/api/v1/grants/revoke", json={
            "subject": "http_reader", "address": "quanta://people/listeners"})
        assert taken.status_code == 200 and len(taken.json()["revoked"]) == 1
        assert reader.post("/api/v1/query", json=SQL).status_code == 403
        unknown = owner.post("/api/v1/grants", json={
            "subject": "x", "address": "quanta://people/nobody"})
        assert unknown.status_code == 404


def test_owners_change_the_life_cycle_over_http(served: Served) -> None:
    path = "/api/v1/products/people/plays/lifecycle"
    with client(served, "http_owner2", ["people"]) as owner, client(served, "http_x") as other:
        assert other.post(path, json={"state": "retired"}).status_code == 403
        no_sunset = owner.post(path, json={"state": "deprecated"})
        assert no_sunset.status_code == 400 and "sunset" in no_sunset.json()["error"]["message"]
        sunset = (date.today() + timedelta(days=10)).isoformat()
        try:
            done = owner.post(path, json={"state": "deprecated", "sunset": sunset})
            assert done.status_code == 200 and done.json()["lifecycle"]["state"] == "deprecated"
            read = owner.post("/api/v1/query", json={"sql": "SELECT 1 FROM people.plays"})
            assert read.headers["Deprecation"] == "true"
        finally:
            back = owner.post(path, json={"state": "active"})
            assert back.status_code == 200 and back.json()["lifecycle"]["state"] == "active"


def test_only_the_privacy_office_erases_over_http(served: Served) -> None:
    body = {"polyseme": "listener_id", "value": "l2", "dry_run": True}
    with client(served, "http_dpo", ["privacy_office"]) as dpo, \
            client(served, "http_owner3", ["people"]) as owner:
        refused = owner.post("/api/v1/erasures", json=body)
        assert refused.status_code == 403 and "governance" in refused.json()["error"]["hint"]
        dry = dpo.post("/api/v1/erasures", json=body)
        assert dry.status_code == 200, dry.text
        report = dry.json()["erasure"]
        assert report["dry_run"] and report["rows_removed"] >= 2 and "l2" not in str(report)
        unknown = dpo.post("/api/v1/erasures", json={"polyseme": "nope", "value": "x"})
        assert unknown.status_code == 400 and "no product carries" in unknown.text
