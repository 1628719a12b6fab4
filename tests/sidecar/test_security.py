"""Grants, masks, row filters, tokens, limits and audit: the sidecar's promises."""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest

from conftest import cli, copy_fixture
from quanta.address import Address
from quanta.context import MeshContext
from quanta.errors import QuantaError
from quanta.sidecar import Principal
from quanta.sidecar.access import AuthorizationError
from quanta.sidecar.limits import LimitExceeded
from quanta.sidecar.tokens import AuthenticationError

CANARY = "CANARY-EMAIL-5b1e"
HEX32 = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Path:
    mesh = copy_fixture("secure", tmp_path_factory.mktemp("secure"))
    assert all(r.ok for r in MeshContext(mesh).build())
    return mesh


@pytest.fixture
def ctx(secure: Path) -> MeshContext:
    return MeshContext(secure)


def who(name: str, *groups: str) -> Principal:
    return Principal(name, frozenset(groups))


def rows(ctx: MeshContext, sql: str, principal: Principal, purpose: str | None = None
         ) -> list[dict[str, object]]:
    return ctx.query(sql, principal=principal, purpose=purpose).table.to_pylist()


def test_default_is_deny_with_a_hint(ctx: MeshContext) -> None:
    with pytest.raises(AuthorizationError) as info:
        ctx.query("SELECT * FROM people.listeners", principal=who("bob"))
    assert "bob may not read quanta://people/listeners/listeners" in info.value.message
    assert "quanta access request quanta://people/listeners/listeners" in (info.value.hint or "")


def test_masks_apply_inside_the_relation(ctx: MeshContext) -> None:
    seen = rows(ctx, "SELECT * FROM people.listeners ORDER BY country", who("alice"))
    assert len(seen) == 4  # the hidden row is filtered for alice
    for row in seen:
        assert HEX32.match(str(row["listener_id"])), row
        assert HEX32.match(str(row["email"])) or row["email"] == "***"
        assert str(row["birth_date"]).endswith("-01-01")
    clear = rows(ctx, "SELECT * FROM people.listeners ORDER BY listener_id",
                 who("pia", "privacy"))
    assert [r["listener_id"] for r in clear] == ["l1", "l2", "l3", "l4", "l5"]
    assert clear[4]["email"] == "CANARY-EMAIL-5b1e@leak.example"


def test_purpose_can_unmask_and_grants_can_require_a_purpose(ctx: MeshContext) -> None:
    dated = rows(ctx, "SELECT birth_date FROM people.listeners ORDER BY 1", who("alice"),
                 purpose="age_verification")
    assert str(dated[0]["birth_date"]) == "1978-07-07"
    analyst = who("dora", "analysts")
    assert len(rows(ctx, "SELECT * FROM people.listeners", analyst, "analytics")) == 4
    with pytest.raises(AuthorizationError, match="for purpose 'marketing'"):
        ctx.query("SELECT * FROM people.listeners", principal=analyst, purpose="marketing")
    with pytest.raises(AuthorizationError):
        ctx.query("SELECT * FROM people.listeners", principal=analyst)


def test_row_filters_hold_for_aggregates_and_joins(ctx: MeshContext) -> None:
    de = who("de_only")
    assert rows(ctx, "SELECT count(*) AS n FROM people.listeners", de) == [{"n": 2}]
    assert rows(ctx, "SELECT DISTINCT country FROM people.listeners", de) == [{"country": "DE"}]
    joined = rows(ctx, "SELECT count(*) AS n FROM people.plays p JOIN people.listeners l "
                       "USING (listener_id)", de)
    assert joined == [{"n": 3}]  # hashed ids still join across products: l1 twice, l2 once


@pytest.mark.parametrize("sql", [
    "SELECT email FROM people.listeners",
    "SELECT lower(email) AS e FROM people.listeners",
    "SELECT CAST(email AS VARCHAR) AS e FROM people.listeners",
    "SELECT email, count(*) FROM people.listeners GROUP BY email",
    "SELECT max(email) FROM people.listeners",
    "SELECT string_agg(email, ',') FROM people.listeners",
    "SELECT first_value(email) OVER () FROM people.listeners",
    "WITH x AS (SELECT * FROM people.listeners) SELECT email FROM x",
    "SELECT (SELECT max(email) FROM people.listeners) AS e",
    "SELECT email FROM people.listeners UNION ALL SELECT email FROM people.listeners",
    "SELECT * FROM people.listeners WHERE email LIKE 'CANARY%'",
    "SELECT count(*) FROM people.listeners WHERE hidden",
    "SELECT listener_id FROM people.listeners WHERE listener_id = 'l5'",
    "SELECT * FROM people.listeners l JOIN people.plays p USING (listener_id)",
])
def test_no_query_shape_sees_clear_or_filtered_values(ctx: MeshContext, sql: str) -> None:
    result = ctx.query(sql, principal=who("alice")).table
    text = json.dumps(result.to_pylist(), default=str)
    assert CANARY not in text and "mail.example" not in text
    assert '"l1"' not in text and '"l5"' not in text
    if "WHERE hidden" in sql:
        assert result.column(0)[0].as_py() == 0


def test_stored_grants_take_effect_and_expire_at_once(ctx: MeshContext) -> None:
    bob = who("bob")
    address = Address.parse("quanta://people/listeners")
    grant = ctx.sidecar.grants.grant("bob", address)
    assert len(rows(ctx, "SELECT * FROM people.listeners", bob)) == 4
    ctx.sidecar.grants.revoke("bob", address)
    with pytest.raises(AuthorizationError):
        ctx.query("SELECT * FROM people.listeners", principal=bob)
    ctx.sidecar.grants.grant("group:ops_team", address, expires_in=timedelta(seconds=1))
    assert len(rows(ctx, "SELECT * FROM people.listeners", who("ed", "ops_team"))) == 4
    time.sleep(1.1)
    with pytest.raises(AuthorizationError):
        ctx.query("SELECT * FROM people.listeners", principal=who("ed", "ops_team"))
    assert grant.subject == "bob"


def test_tokens_are_stored_hashed_and_checked(ctx: MeshContext, secure: Path) -> None:
    tokens = ctx.sidecar.tokens
    token, record = tokens.create("carol", ["analysts"])
    assert token.startswith(f"qnt_{record.id}_")
    stored = (secure / ".quanta/security/tokens.json").read_text()
    assert token.split("_", 2)[2] not in stored
    principal = ctx.sidecar.authenticate(token)
    assert principal.name == "carol" and principal.groups == {"analysts"}
    for bad in (None, "", "Bearer x", "qnt_nope_nope", token[:-2] + "xx"):
        with pytest.raises(AuthenticationError):
            ctx.sidecar.authenticate(bad)
    tokens.revoke(record.id)
    with pytest.raises(AuthenticationError, match="revoked or expired"):
        ctx.sidecar.authenticate(token)
    short, _ = tokens.create("dave", expires_in=timedelta(seconds=1))
    time.sleep(1.1)
    with pytest.raises(AuthenticationError, match="revoked or expired"):
        ctx.sidecar.authenticate(short)


def test_limits_stop_queries_with_a_clear_error(ctx: MeshContext) -> None:
    with pytest.raises(LimitExceeded, match="more than 2 rows"):
        ctx.query("SELECT * FROM people.listeners", principal=who("tiny_quota"))
    assert len(rows(ctx, "SELECT * FROM people.listeners LIMIT 2", who("tiny_quota"))) == 2
    slow = ("SELECT count(*) FROM people.plays a, people.plays b, people.plays c, "
            "people.plays d, people.plays e, people.plays f, people.plays g, people.plays h, "
            "people.plays i, people.plays j, people.plays k, people.plays l "
            "WHERE a.play_id || b.play_id || c.play_id || d.play_id || e.play_id || "
            "f.play_id || g.play_id || h.play_id || i.play_id || j.play_id || k.play_id "
            "|| l.play_id LIKE '%zzz%'")
    started = time.monotonic()
    with pytest.raises(LimitExceeded, match="longer than 1 s"):
        ctx.query(slow, principal=who("slowpoke"))
    assert time.monotonic() - started < 10


def test_every_request_is_audited_and_tampering_is_caught(secure: Path, tmp_path: Path
                                                        ) -> None:
    import shutil

    mesh = tmp_path / "m"
    shutil.copytree(secure, mesh, ignore=shutil.ignore_patterns("*.tmp"))
    ctx = MeshContext(mesh)
    ctx.query("SELECT count(*) FROM people.plays", principal=who("alice"), purpose="demo")
    with pytest.raises(AuthorizationError):
        ctx.query("SELECT * FROM people.listeners", principal=who("bob"))
    with pytest.raises(QuantaError):
        ctx.query("COPY (SELECT 1) TO '/tmp/x'", principal=who("alice"))
    ctx.close()
    log = ctx.sidecar.audit
    records = log.tail(3)
    assert [r["outcome"] for r in records] == ["ok", "denied", "refused"]
    assert records[0]["principal"] == "alice" and records[0]["purpose"] == "demo"
    assert records[0]["snapshot"] == {"people.plays": 1} and records[0]["rows"] == 1
    assert len(records[0]["query_sha256"]) == 64
    assert log.verify().ok

    lines = log.file.read_text().splitlines()
    original = list(lines)
    lines[1] = lines[1].replace('"alice"', '"mallory"')
    log.file.write_text("\n".join(lines) + "\n")
    assert any("edited" in p for p in log.verify().problems)

    log.file.write_text("\n".join(original[:1] + original[2:]) + "\n")
    assert any("removed" in p for p in log.verify().problems)

    log.file.write_text("\n".join([original[1], original[0], *original[2:]]) + "\n")
    assert not log.verify().ok

    log.file.write_text("\n".join(original[:-1]) + "\n")
    assert any("newest records removed" in p for p in log.verify().problems)

    log.file.write_text("\n".join(original) + "\n")
    assert log.verify().ok
    assert cli("audit", "verify", "--mesh", str(mesh)).exit_code == 0
    log.file.write_text("\n".join(original[:-1]) + "\n")
    failed = cli("audit", "verify", "--mesh", str(mesh))
    assert failed.exit_code == 1 and "newest records removed" in failed.stdout


def test_cli_query_as_another_principal_and_token_commands(secure: Path) -> None:
    masked = cli("query", "SELECT email FROM people.listeners", "--as", "alice", "--json",
                 "--mesh", str(secure))
    assert masked.exit_code == 0
    assert "mail.example" not in masked.stdout
    denied = cli("query", "SELECT * FROM people.listeners", "--as", "bob", "--mesh", str(secure))
    assert denied.exit_code == 1 and "may not read" in denied.stderr
    made = cli("token", "create", "erin", "--group", "analysts", "--expires", "1d",
               "--mesh", str(secure))
    assert made.exit_code == 0 and made.stdout.startswith("qnt_")
    listed = json.loads(cli("token", "list", "--json", "--mesh", str(secure)).stdout)
    assert any(t["principal"] == "erin" and "digest" not in t for t in listed)
    granted = cli("grant", "frank", "quanta://people/plays", "--purpose", "qa",
                  "--mesh", str(secure))
    assert granted.exit_code == 0 and "frank may read" in granted.stdout
    bad = cli("grant", "frank", "quanta://people/nothing", "--mesh", str(secure))
    assert bad.exit_code == 1 and "no product 'people.nothing'" in bad.stderr


def test_audit_chain_continues_after_a_very_long_record(tmp_path: Path) -> None:
    from quanta.sidecar.audit import AuditLog

    log = AuditLog(tmp_path / "audit")
    log.append({"query": "x" * 200_000})
    other = AuditLog(tmp_path / "audit")  # another process: reads the tail from the file
    entry = other.append({"query": "short"})
    assert entry["seq"] == 2
    other.close()
    log.close()
    assert log.verify().ok


def test_query_output_says_which_columns_are_masked_and_why(secure: Path) -> None:
    result = cli("query", "SELECT email, country FROM people.listeners", "--as", "alice",
                 "--mesh", str(secure))
    assert result.exit_code == 0
    assert "masked people.listeners.listeners.email (hash: policy 3 of people.listeners: " \
           "mask pii columns (hash), unless group:privacy)" in result.stderr


def test_show_lists_policies_in_plain_words(secure: Path) -> None:
    doc = json.loads(cli("show", "people.listeners", "--json", "--mesh", str(secure)).stdout)
    assert "mask columns email (redact), unless group:privacy" in doc["policies"]
    assert "only rows where country = 'DE' for de_only, group:de_analysts" in doc["policies"]


def test_concurrent_appends_keep_the_chain_and_the_head(tmp_path: Path) -> None:
    import threading

    from quanta.sidecar.audit import AuditLog

    log = AuditLog(tmp_path / "audit", fsync_interval=0.001)

    def work(n: int) -> None:
        for i in range(200):
            log.append({"worker": n, "i": i})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    report = log.verify()
    assert report.ok and report.records == 1600
    assert json.loads(log.head_file.read_text())["seq"] == 1600


def test_hash_masks_are_stored_at_release_and_match_computed_ones(secure: Path) -> None:
    ctx = MeshContext(secure)
    release = ctx.storage("people.listeners").latest()
    assert release is not None
    port = release.ports["listeners"]
    assert port.pseudonyms == {"listener_id": "_pseudonym_listener_id",
                               "email": "_pseudonym_email"}
    assert port.key_id == ctx.sidecar._key_id
    sql = "SELECT listener_id, email FROM people.listeners ORDER BY country, listener_id"
    stored = rows(ctx, sql, who("alice"))
    ctx.sidecar._key_id = "another-key"  # stored pseudonyms no longer apply: computed instead
    computed = rows(ctx, sql, who("alice"))
    assert stored == computed and all(HEX32.match(str(r["listener_id"])) for r in stored)
    # the stored pseudonyms are the platform's: no reader sees them as columns
    names = ctx.query("SELECT * FROM people.listeners", principal=who("pia", "privacy")
                      ).table.column_names
    assert not [n for n in names if n.startswith("_pseudonym")]


def test_downstream_products_do_not_see_pseudonym_columns(secure: Path, tmp_path: Path
                                                          ) -> None:
    import shutil

    mesh = tmp_path / "m"
    shutil.copytree(secure, mesh, ignore=shutil.ignore_patterns("*.tmp"))
    folder = mesh / "domains/people/copies"
    folder.mkdir()
    (folder / "dataproduct.yaml").write_text(
        (mesh / "domains/people/listeners/dataproduct.yaml").read_text()
        .replace("name: listeners\ndomain", "name: copies\ndomain")
        .replace("kind: source-aligned", "kind: aggregate")
        .replace("{name: raw, type: file, path: listeners.csv}",
                 "{name: raw, type: product, product: quanta://people/listeners}"))
    [result] = MeshContext(mesh).build(["people.copies"])
    assert result.ok, result.error and result.error.render()


def test_an_empty_release_reads_with_the_declared_columns(secure: Path, tmp_path: Path) -> None:
    import shutil

    mesh = tmp_path / "m"
    shutil.copytree(secure, mesh, ignore=shutil.ignore_patterns("*.tmp"))
    csv = mesh / "domains/people/listeners/listeners.csv"
    csv.write_text(csv.read_text().splitlines()[0] + "\n")
    ctx = MeshContext(mesh)
    [result] = ctx.build(["people.listeners"])
    assert result.ok and result.release is not None and result.release.rows == 0
    table = ctx.query("SELECT * FROM people.listeners", principal=who("alice")).table
    assert table.num_rows == 0
    assert table.column_names == ["listener_id", "email", "country", "birth_date", "plan",
                                  "hidden", "_recorded_at"]
    assert str(table.schema.field("listener_id").type) == "string"


def test_policy_explain_says_what_decides_and_shows_the_engine_query(secure: Path) -> None:
    ctx = MeshContext(secure)
    report = ctx.sidecar.explain(who("de_only"), "SELECT email FROM people.listeners")
    [port] = report["ports"]
    assert port["allowed"] and port["row_filters"] == ["NOT hidden", "country = 'DE'"]
    assert "mask pii columns (hash)" in port["masked"]["people.listeners.listeners.email"]
    assert report["snapshot"] == {"people.listeners": 1}
    key = (secure / ".quanta/security/mask.key").read_text().strip()
    assert key not in report["rewritten"] and str(secure) not in report["rewritten"]
    assert "country = 'DE'" in report["rewritten"]

    shown = cli("policy", "explain", "--as", "de_only", "SELECT email FROM people.listeners",
                "--mesh", str(secure))
    assert shown.exit_code == 0
    assert "rows only where country = 'DE'" in shown.stdout
    assert "the engine runs" in shown.stdout
    denied = cli("policy", "explain", "--as", "bob", "SELECT * FROM people.listeners",
                 "--mesh", str(secure))
    assert denied.exit_code == 1 and "denied quanta://people/listeners/listeners" in denied.stdout
    assert "quanta access request" in denied.stdout
