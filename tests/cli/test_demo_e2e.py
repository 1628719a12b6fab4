"""End to end through the CLI on the Daff demo mesh, as a new user would use it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq

from conftest import cli, cli_process

PRODUCTS = {
    "listening.play_events", "artists.catalog", "subscriptions.accounts",
    "listening.listener_sessions", "artists.artist_popularity", "marketing.churn_features",
    "royalties.monthly_statements",
}


def test_quanta_demo_generates_builds_and_shows_how_to_query(tmp_path: Path) -> None:
    folder = tmp_path / "daff-demo"
    done = cli_process("demo", str(folder), "--events", "20000", timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    for key in PRODUCTS:
        assert key in done.stdout
    assert "quanta query" in done.stdout and "demo mesh ready" in done.stdout

    again = cli_process("demo", str(folder), "--events", "20000")
    assert again.returncode == 1
    assert "already holds a mesh" in again.stderr and "--force" in again.stderr

    count = cli_process("query", "SELECT count(*) AS n FROM listening.play_events", "--json",
                        cwd=folder)
    assert count.returncode == 0, count.stderr
    assert json.loads(count.stdout)["rows"] == [{"n": 20000}]


def test_validate_show_versions_runs_on_the_demo(demo_mesh: Path) -> None:
    assert cli("validate", cwd=demo_mesh).exit_code == 0

    shown = cli("show", "quanta://listening/play_events", "--json", cwd=demo_mesh)
    assert shown.exit_code == 0
    doc = json.loads(shown.stdout)
    assert doc["kind"] == "source-aligned" and doc["owner"]["team"]
    fields = {f["name"]: f for f in doc["ports"][0]["fields"]}
    assert fields["listener_id"]["classification"] == "pii"
    assert fields["listener_id"]["polyseme"] == "listener_id"
    assert doc["latest_release"]["release"] == 1
    assert all(c["passed"] for c in doc["latest_release"]["checks"])
    assert doc["latest_release"]["metrics"]["completeness"] == 1.0
    assert "listening.listener_sessions" in doc["downstream"]

    table_view = cli("show", "listening.play_events", cwd=demo_mesh)
    assert "listening.play_events.plays" in table_view.stdout
    assert "quality checks" in table_view.stdout

    versions = cli("versions", "quanta://listening/play_events", "--json", cwd=demo_mesh)
    [release] = json.loads(versions.stdout)
    assert release["release"] == 1 and release["ports"]["plays"]["rows"] == 20000

    runs = json.loads(cli("runs", "--json", "--limit", "50", cwd=demo_mesh).stdout)
    assert {r["product"] for r in runs} == PRODUCTS
    assert all(r["outcome"] == "released" and r["stages"]["write"] >= 0 for r in runs)


def test_one_demo_check_warns_and_is_shown(demo_mesh: Path) -> None:
    warned = []
    for key in PRODUCTS:
        doc = json.loads(cli("show", key, "--json", cwd=demo_mesh).stdout)
        warned += [(key, c["name"]) for c in doc["latest_release"]["checks"]
                   if not c["passed"] and c["severity"] == "warn"]
    assert len(warned) == 1, warned


def test_query_formats(demo_mesh: Path, tmp_path: Path) -> None:
    sql = ("SELECT device, count(*) AS plays FROM listening.play_events "
           "GROUP BY ALL ORDER BY plays DESC")
    table = cli("query", sql, cwd=demo_mesh)
    assert table.exit_code == 0 and "device" in table.stdout
    assert "snapshot listening.play_events@1" in table.stderr

    csv = cli("query", sql, "--format", "csv", cwd=demo_mesh)
    lines = csv.stdout.strip().splitlines()
    assert lines[0] == '"device","plays"' and len(lines) == 6

    out = tmp_path / "plays.parquet"
    written = cli("query", sql, "-f", "parquet", "-o", str(out), cwd=demo_mesh)
    assert written.exit_code == 0
    result = pq.read_table(out)
    assert result.num_rows == 5 and sum(result.column("plays").to_pylist()) == 20000

    joined = cli("query", "SELECT count(*) AS n FROM listening.play_events p JOIN "
                 "subscriptions.accounts a USING (listener_id)", "--json", cwd=demo_mesh)
    assert json.loads(joined.stdout)["rows"] == [{"n": 20000}]
    assert json.loads(joined.stdout)["snapshot"] == {
        "listening.play_events": 1, "subscriptions.accounts": 1}


def test_refused_query_is_a_clear_error_not_a_traceback(demo_mesh: Path) -> None:
    for sql in ("DROP TABLE listening.play_events", "SELECT * FROM read_csv('/etc/passwd')",
                "SELECT * FROM nowhere.nothing", "SELEC 1"):
        result = cli("query", sql, cwd=demo_mesh)
        assert result.exit_code == 1, sql
        assert result.stderr.startswith("error: ")
        assert "Traceback" not in result.output


def test_rebuild_and_time_travel_through_the_cli(demo_mesh: Path, tmp_path: Path) -> None:
    import shutil

    mesh = tmp_path / "daff"
    shutil.copytree(demo_mesh, mesh, ignore=shutil.ignore_patterns("*.tmp"))
    con = sqlite3.connect(mesh / "sources/player.db")
    con.execute("DELETE FROM plays WHERE device = 'web'")
    con.commit()
    con.close()
    # play_events builds incrementally (new plays only); rows deleted at the source reach a
    # release with a full rebuild
    built = cli("build", "listening.play_events", "--full", cwd=mesh)
    assert built.exit_code == 0, built.output
    assert "release 2" in built.stdout

    def plays(*extra: str) -> int:
        result = cli("query", "SELECT count(*) AS n FROM listening.play_events", "--json",
                     *extra, cwd=mesh)
        assert result.exit_code == 0, result.output
        return int(json.loads(result.stdout)["rows"][0]["n"])

    assert plays("--as-of", "1") == 20000
    assert plays() < 20000
    assert plays("--as-of", "2") == plays()
    missing = cli("query", "SELECT 1 FROM listening.play_events", "--as-of", "9", cwd=mesh)
    assert missing.exit_code == 1 and "no release 9" in missing.stderr


def test_failed_build_exits_1_and_keeps_serving(demo_mesh: Path, tmp_path: Path) -> None:
    import shutil

    mesh = tmp_path / "daff"
    shutil.copytree(demo_mesh, mesh, ignore=shutil.ignore_patterns("*.tmp"))
    (mesh / "sources/player.db").unlink()
    result = cli("build", cwd=mesh)
    assert result.exit_code == 1
    assert "player.db does not exist" in result.output
    assert "Traceback" not in result.output
    count = cli("query", "SELECT count(*) AS n FROM listening.play_events", "--json", cwd=mesh)
    assert json.loads(count.stdout)["rows"] == [{"n": 20000}]
    runs = json.loads(cli("runs", "--json", cwd=mesh).stdout)
    assert runs[-1]["outcome"] == "failed"


def test_demo_scale_sets_the_number_of_events(tmp_path: Path) -> None:
    folder = tmp_path / "small"
    assert cli("demo", str(folder), "--scale", "0.02").exit_code == 0
    count = cli("query", "SELECT count(*) AS n FROM listening.play_events", "--json", cwd=folder)
    assert json.loads(count.stdout)["rows"] == [{"n": 20000}]
    refused = cli("demo", str(tmp_path / "none"), "--scale", "0")
    assert refused.exit_code == 1 and "must be above 0" in refused.stderr


def test_the_demo_targets_campaigns_only_at_consenting_listeners(demo_mesh: Path) -> None:
    from quanta.context import MeshContext

    ctx = MeshContext(demo_mesh)
    marketer = ctx.principal("mia", ["marketing"])
    sql = "SELECT listener_id FROM marketing.churn_features"
    every = ctx.query(sql, principal=marketer).table.column(0).to_pylist()
    campaign = ctx.query(sql, principal=marketer, purpose="campaigns").table.column(0)
    consenting = ctx.query(
        "SELECT listener_id FROM subscriptions.accounts WHERE marketing_consent",
        principal=ctx.principal("sam", ["subscriptions"])).table.column(0).to_pylist()
    assert 0 < len(campaign) < len(every)
    assert set(campaign.to_pylist()) == set(every) & set(consenting)
    ctx.close()


def test_the_demo_ships_global_policies_with_passing_tests(demo_mesh: Path) -> None:
    tested = cli("policy", "test", "--json", cwd=demo_mesh)
    assert tested.exit_code == 0, tested.output
    document = json.loads(tested.stdout)
    assert document["ok"] and len(document["tests"]) >= 7
    refused = cli("query", "--as", "sam", "--group", "subscriptions", "--purpose", "resale",
                  "SELECT count(*) FROM subscriptions.accounts", cwd=demo_mesh)
    assert refused.exit_code == 1 and "never sells listener data" in refused.output
    eu = cli("query", "--as", "eli", "--group", "analysts", "--group", "region-eu",
             "--format", "json", "SELECT DISTINCT country FROM listening.play_events",
             cwd=demo_mesh)
    assert eu.exit_code == 0, eu.output
    assert {row["country"] for row in json.loads(eu.stdout)["rows"]} <= {"DE", "ES", "FR", "GB",
                                                                          "IT", "SE"}
