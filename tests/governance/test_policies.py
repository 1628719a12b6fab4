"""Global policies (YAML and Python) beside each product's own: a deny wins over every grant,
global masks and filters cannot be lifted locally, a policy that fails denies."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pyarrow.flight as flight
import pytest

from conftest import Served, cli, copy_fixture
from quanta.address import Address
from quanta.context import MeshContext
from quanta.sidecar import Principal
from quanta.sidecar.access import AuthorizationError

LISTENERS = "SELECT listener_id, email, country FROM people.listeners ORDER BY listener_id"
ALICE = Principal("alice")  # granted people.listeners in its spec


@pytest.fixture
def mesh(tmp_path: Path) -> Path:
    root = copy_fixture("secure", tmp_path)
    assert all(r.ok for r in MeshContext(root).build())
    return root


def add_policies(root: Path, name: str, text: str) -> None:
    (root / "governance/policies" / name).write_text(text)


def countries(ctx: MeshContext, who: Principal, purpose: str | None = None) -> list[str]:
    table = ctx.query(LISTENERS, principal=who, purpose=purpose).table
    return sorted(set(table.column("country").to_pylist()))


def test_a_global_deny_wins_over_the_products_own_grant(mesh: Path) -> None:
    ctx = MeshContext(mesh)
    assert countries(ctx, ALICE, "analytics") == ["BR", "DE", "SE"]
    with pytest.raises(AuthorizationError, match="listener data is never sold") as info:
        ctx.query(LISTENERS, principal=ALICE, purpose="resale")
    assert "federation.yaml#1" in (info.value.hint or "")
    ctx.sidecar.grants.grant("alice", Address("people", "listeners"), "resale")
    with pytest.raises(AuthorizationError, match="never sold"):
        ctx.query(LISTENERS, principal=ALICE, purpose="resale")  # a stored grant neither


def test_a_global_grant_lets_auditors_read_for_their_purpose(mesh: Path) -> None:
    ctx = MeshContext(mesh)
    auditor = Principal("aud", frozenset({"auditors"}))
    rows = ctx.query(LISTENERS, principal=auditor, purpose="audit").table
    assert rows.num_rows == 4  # the product's own filter still hides the hidden listener
    with pytest.raises(AuthorizationError):
        ctx.query(LISTENERS, principal=auditor, purpose="fun")
    why = ctx.sidecar.explain(auditor, LISTENERS, purpose="audit")["ports"][0]["why"]
    assert why == ["global policy federation.yaml#2: group:auditors may read for audit"]


def test_a_python_policy_narrows_rows_where_the_column_exists(mesh: Path) -> None:
    ctx = MeshContext(mesh)
    pia = Principal("pia", frozenset({"privacy"}))
    assert countries(ctx, pia) == ["BR", "DE", "SE"]
    eu = Principal("pia", frozenset({"privacy", "region-eu"}))
    latam = Principal("pia", frozenset({"privacy", "region-latam"}))
    assert countries(ctx, eu) == ["DE", "SE"] and countries(ctx, latam) == ["BR"]
    plays = ctx.query("SELECT count(*) AS n FROM people.plays", principal=latam).table
    assert plays.column("n")[0].as_py() == 5  # plays has no country: not filtered
    with pytest.raises(AuthorizationError, match="unknown region mars"):
        ctx.query(LISTENERS, principal=Principal("x", frozenset({"privacy", "region-mars"})))
    shown = ctx.sidecar.explain(eu, LISTENERS)["ports"][0]
    assert "country IN ('DE', 'SE')" in shown["row_filters"]


def test_global_masks_hold_whatever_the_product_lifts(mesh: Path) -> None:
    add_policies(mesh, "dpo.yaml", "policies:\n"
                 "  - {type: mask, columns: [email], method: redact, domains: [people],\n"
                 "     unless: ['group:dpo']}\n")
    ctx = MeshContext(mesh)
    pia = Principal("pia", frozenset({"privacy"}))  # the product shows pia clear values
    row = ctx.query(LISTENERS, principal=pia).table.to_pylist()[0]
    assert row["email"] == "***" and row["listener_id"] == "l1"
    report = ctx.sidecar.explain(pia, LISTENERS)["ports"][0]
    assert report["masked"]["people.listeners.listeners.email"].startswith(
        "redact: global policy dpo.yaml#1")
    dpo = Principal("dora", frozenset({"privacy", "dpo"}))
    assert ctx.query(LISTENERS, principal=dpo).table.to_pylist()[0]["email"].endswith(
        "@mail.example")


@pytest.mark.parametrize(("source", "words"), [
    ("def broken(request):\n    return 1 / 0\n", "failed (ZeroDivisionError"),
    ("def broken(request):\n    return 'yes'\n", "returned str, not a Decision"),
    ("def broken(request):\n    return Decision.narrow('x', row_filters=['nope = 1'])\n",
     "cannot be applied"),
    ("def broken(request):\n    return Decision.narrow('x', masks={'email': 'scramble'})\n",
     "mask method 'scramble'"),
])
def test_a_policy_that_fails_denies(mesh: Path, source: str, words: str) -> None:
    add_policies(mesh, "broken.py", "from quanta.governance import Decision, policy\n\n"
                 "@policy()\n" + source)
    ctx = MeshContext(mesh)
    with pytest.raises(Exception, match=words.replace("(", r"\(")):
        ctx.query(LISTENERS, principal=ALICE)


def test_policy_files_that_do_not_load_fail_closed_and_are_reported(mesh: Path) -> None:
    add_policies(mesh, "typo.yaml", "policies:\n  - {type: mask, colums: [email]}\n")
    add_policies(mesh, "syntax.py", "def nope(:\n")
    ctx = MeshContext(mesh)
    with pytest.raises(AuthorizationError, match="global policies do not load"):
        ctx.query(LISTENERS, principal=ALICE)
    checked = cli("validate", "--mesh", str(mesh))
    assert checked.exit_code == 1
    assert "typo.yaml:2:" in checked.stdout and "colums" in checked.stdout
    assert "syntax.py:1:" in checked.stdout


def test_every_mode_applies_global_policies(served: Served) -> None:
    token = served.context.sidecar.tokens.create("eva", ["privacy", "region-latam"])[0]
    body = {"sql": LISTENERS}
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/x-ndjson"}
    answer = httpx.post(f"{served.http}/api/v1/query", json=body, headers=headers)
    assert {json.loads(line)["country"] for line in answer.text.splitlines()} == {"BR"}
    client = flight.connect(served.flight)
    options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {token}".encode())])
    table = client.do_get(flight.Ticket(json.dumps(body).encode()), options).read_all()
    assert set(table.column("country").to_pylist()) == {"BR"}
    resale = json.dumps({**body, "purpose": "resale"}).encode()
    with pytest.raises(flight.FlightUnauthorizedError, match="never sold"):
        client.do_get(flight.Ticket(resale), options).read_all()
    client.close()
    refused = httpx.post(f"{served.http}/api/v1/query", json={**body, "purpose": "resale"},
                         headers=headers)
    assert refused.status_code == 403 and "never sold" in refused.json()["error"]["message"]


def test_policy_tests_pass_and_fail_for_the_right_reasons(mesh: Path) -> None:
    passed = cli("policy", "test", "--mesh", str(mesh))
    assert passed.exit_code == 0, passed.output
    assert passed.stdout.count("PASS") == 4 and "4 policy test(s) passed" in passed.stdout
    (mesh / "domains/people/plays/policies.test.yaml").write_text(
        "tests:\n"
        "  - name: wrong on purpose\n"
        "    as: bob\n"
        "    read: quanta://people/plays\n"
        "    expect: {allowed: true, clear: [listener_id]}\n"
        "  - name: asks a port that is not there\n"
        "    as: bob\n"
        "    read: quanta://people/plays/nope\n"
        "    expect: {allowed: false}\n")
    failed = cli("policy", "test", "--json", "--mesh", str(mesh))
    assert failed.exit_code == 1
    document = json.loads(failed.stdout)
    wrong = {t["name"]: t for t in document["tests"]}
    assert wrong["wrong on purpose"]["problems"] == [
        "expected listener_id clear, got masked with hash"]
    assert wrong["wrong on purpose"]["line"] == 2
    assert "no port 'nope'" in wrong["asks a port that is not there"]["problems"][0]


def test_a_malformed_policy_test_file_is_a_located_problem(mesh: Path) -> None:
    add_policies(mesh, "bad.test.yaml", "tests:\n  - {name: x, as: bob, read: q, expct: {}}\n")
    result = cli("policy", "test", "--mesh", str(mesh))
    assert result.exit_code == 1
    assert "bad.test.yaml:2:" in result.stdout and "expct" in result.stdout
    assert "Traceback" not in result.output
