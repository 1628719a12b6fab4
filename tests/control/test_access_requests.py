"""Access requests: ask → the owner approves → read → the grant expires → refused; audited."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from conftest import Served, cli, copy_fixture
from quanta.context import MeshContext
from quanta.errors import NotFoundError, QuantaError
from quanta.sidecar import Principal
from quanta.sidecar.access import AuthorizationError

LISTENERS = "quanta://people/listeners/listeners"
SQL = "SELECT count(*) AS n FROM people.listeners"


@pytest.fixture
def ctx(tmp_path: Path) -> MeshContext:
    context = MeshContext(copy_fixture("secure", tmp_path))
    assert all(r.ok for r in context.build())
    return context


def audit_actions(ctx: MeshContext) -> list[tuple[str, str, str]]:
    ctx.sidecar.audit.close()
    lines = (ctx.sidecar.audit.file).read_text().splitlines()
    return [(r["action"], r["principal"], r["outcome"])
            for r in map(json.loads, lines) if r.get("mode") == "control"]


def test_request_approve_read_expire_refuse(ctx: MeshContext) -> None:
    bob = Principal("bob")
    owner = Principal("olga", frozenset({"people"}))  # the owning team of people.listeners
    with pytest.raises(AuthorizationError) as denied:
        ctx.query(SQL, principal=bob)
    assert "quanta access request" in (denied.value.hint or "")

    requests = ctx.access_requests()
    item = requests.request(bob, LISTENERS, None, "churn analysis for the Q3 review")
    assert item.state == "pending"
    assert [r.id for r in requests.visible_to(owner, "pending")] == [item.id]
    assert requests.visible_to(Principal("alice"), "pending") == []  # neither hers nor owned

    with pytest.raises(AuthorizationError, match="may not decide"):
        requests.approve(Principal("alice"), item.id)
    with pytest.raises(AuthorizationError, match="own access request"):
        requests.approve(Principal("bob", frozenset({"people"})), item.id)
    with pytest.raises(AuthorizationError):
        ctx.query(SQL, principal=bob)  # nothing was granted by the refused attempts

    approved = requests.approve(owner, item.id, timedelta(seconds=2), "ok for Q3")
    assert approved.state == "approved" and approved.decided_by == "olga"
    assert approved.grant_id in {g.id for g in ctx.sidecar.grants.grants()}
    assert ctx.query(SQL, principal=bob).table.column("n")[0].as_py() > 0
    with pytest.raises(QuantaError, match="approved already"):
        requests.deny(owner, item.id, "changed my mind")

    time.sleep(2.2)
    with pytest.raises(AuthorizationError):
        ctx.query(SQL, principal=bob)

    actions = audit_actions(ctx)
    assert ("access.request", "bob", "ok") in actions
    assert ("access.approve", "alice", "denied") in actions
    assert ("access.approve", "bob", "denied") in actions
    assert ("access.approve", "olga", "ok") in actions


def test_a_grant_covers_only_what_was_asked(ctx: MeshContext) -> None:
    bob = Principal("bob")
    requests = ctx.access_requests()
    item = requests.request(bob, LISTENERS, "marketing", "campaign targeting")
    requests.approve(ctx.sidecar.operator(), item.id)
    assert ctx.query(SQL, principal=bob, purpose="marketing").table.num_rows == 1
    with pytest.raises(AuthorizationError):
        ctx.query(SQL, principal=bob, purpose="research")
    with pytest.raises(AuthorizationError):
        ctx.query(SQL, principal=bob)


def test_denied_requests_say_why_and_grant_nothing(ctx: MeshContext) -> None:
    bob = Principal("bob")
    requests = ctx.access_requests()
    item = requests.request(bob, LISTENERS, None, "curiosity")
    with pytest.raises(QuantaError, match="say why"):
        requests.deny(ctx.sidecar.operator(), item.id, "  ")
    denied = requests.deny(ctx.sidecar.operator(), item.id, "no business need stated")
    assert (denied.state, denied.comment) == ("denied", "no business need stated")
    assert ctx.sidecar.grants.grants() == []
    with pytest.raises(AuthorizationError):
        ctx.query(SQL, principal=bob)
    again = requests.request(bob, LISTENERS, None, "churn model, approved by my lead")
    assert again.id != item.id  # a denied request can be asked again


@pytest.mark.parametrize(("address", "reason", "error", "words"), [
    (LISTENERS, "", QuantaError, "needs a reason"),
    ("quanta://people/nobody", "x", NotFoundError, "people.nobody"),
    ("quanta://people/listeners/nope", "x", NotFoundError, "no port 'nope'"),
    ("not an address", "x", QuantaError, "address"),
    ("quanta://people/plays", "x", QuantaError, "may already read"),  # granted to "*"
])
def test_bad_requests_are_refused_clearly(ctx: MeshContext, address: str, reason: str,
                                          error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        ctx.access_requests().request(Principal("bob"), address, None, reason)
    assert ctx.access_requests().all() == []


def test_one_pending_request_per_ask_and_unknown_ids(ctx: MeshContext) -> None:
    requests = ctx.access_requests()
    requests.request(Principal("bob"), LISTENERS, None, "first")
    with pytest.raises(QuantaError, match="already asked"):
        requests.request(Principal("bob"), LISTENERS, None, "second")
    with pytest.raises(NotFoundError, match="no access request"):
        requests.approve(ctx.sidecar.operator(), "feedbeef")
    assert len(requests.all()) == 1


def test_the_cli_flow(ctx: MeshContext) -> None:
    mesh = str(ctx.root)
    asked = cli("access", "request", LISTENERS, "--as", "bob", "--reason", "churn model",
                "--mesh", mesh)
    assert asked.exit_code == 0, asked.output
    assert "[pending]" in asked.stdout and "group:people" in asked.stdout
    listed = cli("access", "list", "--pending", "--as", "olga", "--group", "people",
                 "--json", "--mesh", mesh)
    [item] = json.loads(listed.stdout)
    assert (item["requester"], item["state"]) == ("bob", "pending")
    self_approved = cli("access", "approve", item["id"], "--as", "bob", "--group", "people",
                        "--mesh", mesh)
    assert self_approved.exit_code == 1 and "own access request" in self_approved.output
    approved = cli("access", "approve", item["id"], "--as", "olga", "--group", "people",
                   "--expires", "7d", "--mesh", mesh)
    assert approved.exit_code == 0, approved.output
    read = cli("query", SQL, "--as", "bob", "--format", "json", "--mesh", mesh)
    assert read.exit_code == 0, read.output
    bad = cli("access", "approve", item["id"], "--expires", "soon", "--mesh", mesh)
    assert bad.exit_code == 1 and "soon" in bad.output


def test_over_http(served: Served) -> None:
    ctx = served.context
    carol = ctx.sidecar.tokens.create("carol")[0]
    owner = ctx.sidecar.tokens.create("omar", ["people"])[0]

    def as_(token: str) -> httpx.Client:
        return httpx.Client(base_url=served.http, timeout=30,
                            headers={"Authorization": f"Bearer {token}"})

    with as_(carol) as c, as_(owner) as o:
        assert c.post("/api/v1/query", json={"sql": SQL}).status_code == 403
        asked = c.post("/api/v1/access-requests",
                       json={"address": LISTENERS, "reason": "royalty audit"})
        assert asked.status_code == 201, asked.text
        request_id = asked.json()["request"]["id"]
        assert c.post(f"/api/v1/access-requests/{request_id}/approve",
                      json={}).status_code == 403
        pending = o.get("/api/v1/access-requests", params={"state": "pending"}).json()
        assert request_id in [r["id"] for r in pending["requests"]]
        approved = o.post(f"/api/v1/access-requests/{request_id}/approve",
                          json={"expires": "2s", "comment": "for the audit"})
        assert approved.status_code == 200, approved.text
        read = c.post("/api/v1/query", json={"sql": SQL},
                      headers={"Accept": "application/x-ndjson"})
        assert read.status_code == 200 and json.loads(read.text.splitlines()[0])["n"] > 0
        time.sleep(2.2)
        assert c.post("/api/v1/query", json={"sql": SQL}).status_code == 403
        bad = o.post("/api/v1/access-requests", json={"address": LISTENERS})
        assert bad.status_code == 400 and "reason" in bad.json()["error"]["message"]
        unknown = o.post("/api/v1/access-requests/nope/deny", json={"comment": "x"})
        assert unknown.status_code == 404
