"""Incremental builds: only new source rows are read, the release records the watermark, and a
full rebuild gives the same data."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from conftest import cli, copy_fixture
from quanta.build.runner import Builder, BuildResult
from quanta.console import SilentReporter
from quanta.context import MeshContext
from quanta.errors import QuantaError, StorageError
from quanta.spec.mesh import load_mesh
from quanta.storage import ProductStorage, Release

PLAYS = "listening.plays"
ACCOUNTS = "accounts.accounts"
LONG_PLAYS = "listening.long_plays"
DEVICES = ("ios", "android", "web")
START = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture
def mesh(tmp_path: Path) -> Path:
    root = copy_fixture("incremental", tmp_path)
    add_plays(root, 0, 40)
    write_accounts(root, "0001", [(1, "free", "DE", "01")])
    return root


def played_at(index: int) -> str:
    return (START + timedelta(minutes=index)).strftime("%Y-%m-%d %H:%M:%S.000")


def add_plays(mesh: Path, first: int, count: int, *, ms: int | None = None,
              ids: list[int] | None = None) -> None:
    """Plays ``first`` .. ``first + count - 1`` (or ``ids``), played a minute apart."""
    db = mesh / "sources" / "player.db"
    db.parent.mkdir(exist_ok=True)
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE IF NOT EXISTS plays (play_id TEXT, listener_id TEXT, "
                    "played_at TEXT, ms_played INTEGER, device TEXT)")
        con.executemany("INSERT INTO plays VALUES (?, ?, ?, ?, ?)", [
            (f"p{i:08d}", f"l{i % 7}", played_at(first + n), ms if ms is not None else
             1000 * (i % 400), DEVICES[i % 3])
            for n, i in enumerate(ids or range(first, first + count))])


def build(mesh: Path, *keys: str, full: bool = False) -> dict[str, BuildResult]:
    results = {r.product: r for r in MeshContext(mesh).build(list(keys) or None, full=full)}
    for result in results.values():
        assert result.ok, result.error and result.error.render()
    return results


def latest(mesh: Path, key: str) -> Release:
    release = ProductStorage(mesh / ".quanta", key).latest()
    assert release is not None
    return release


def rows_of(mesh: Path, key: str, port: str, release: Release | None = None,
            system: bool = False) -> list[dict[str, object]]:
    """The port's rows at ``release`` (default latest), in key order; ``system``: with
    ``_recorded_at``."""
    storage = ProductStorage(mesh / ".quanta", key)
    release = release or latest(mesh, key)
    tables = [pq.read_table(f) for f in storage.data_files(release, port)]
    table = pa.concat_tables(tables) if tables else pa.table({})
    found = table.to_pylist()
    if not system:
        found = [{k: v for k, v in row.items() if k != "_recorded_at"} for row in found]
    return sorted(found, key=lambda row: str(sorted(row.items())))


class Recorder(SilentReporter):
    """A reporter keeping the warnings."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        self.warnings.append(message)


def read_of(result: BuildResult, name: str) -> tuple[int | None, str | None]:
    read = result.run.inputs[name]
    return read.rows, read.after


# --- append ---------------------------------------------------------------------------------


def test_append_reads_only_new_rows_and_records_the_watermark(mesh: Path) -> None:
    first = build(mesh, PLAYS)[PLAYS]
    assert read_of(first, "raw_plays") == (40, None)
    assert first.release is not None
    mark = first.release.watermarks["raw_plays"]
    assert (mark.column, mark.type, mark.value, mark.after, mark.strategy) == (
        "played_at", "VARCHAR", played_at(39), None, "append")

    add_plays(mesh, 40, 5)
    second = build(mesh, PLAYS)[PLAYS]
    assert read_of(second, "raw_plays") == (5, played_at(39))
    release = second.release
    assert release is not None and release.release == 2
    assert release.watermarks["raw_plays"].value == played_at(44)
    assert release.watermarks["raw_plays"].after == played_at(39)
    assert release.ports["plays"].rows == 45 and second.run.rows == {"plays": 45}
    # the first release's file is kept as it was; the new rows are a new file beside it
    before = {f.path: f for f in first.release.ports["plays"].files}
    files = release.ports["plays"].files
    assert [f for f in files if f.path in before] == list(before.values())
    assert len(files) == len(before) + 1
    # checks describe the whole port
    assert {c.name: c.total_rows for c in release.checks}["unique_play_id"] == 45
    assert all(c.passed for c in release.checks)
    assert release.profile["plays"]["play_id"]["null_share"] == 0.0
    assert release.profile["plays"]["played_at"]["max"].startswith("2026-11-01 00:44:00")
    ctx = MeshContext(mesh)
    assert ctx.query("SELECT count(*) FROM listening.plays").table.column(0)[0].as_py() == 45
    # old rows keep their system time, new rows get this release's
    times = {row["play_id"]: row["_recorded_at"]
             for row in rows_of(mesh, PLAYS, "plays", system=True)}
    assert times["p00000000"] == first.release.recorded_at
    assert times["p00000044"] == release.recorded_at
    # the Delta table holds exactly the release's files
    table = DeltaTable(str(ProductStorage(mesh / ".quanta", PLAYS).port_path("plays")))
    assert table.version() == release.ports["plays"].delta_version
    assert {Path(u).name for u in table.file_uris()} == {f.path for f in files}


def test_incremental_builds_and_a_full_rebuild_give_the_same_data(mesh: Path) -> None:
    build(mesh)
    for first in (40, 47, 60):
        add_plays(mesh, first, 7 if first < 60 else 1)
        build(mesh)
    incremental = {key: latest(mesh, key) for key in (PLAYS, LONG_PLAYS)}
    stamp = played_at(60).replace(".000", "+00")
    assert read_of(build(mesh, PLAYS, LONG_PLAYS)[LONG_PLAYS], "plays") == (0, stamp)
    again = build(mesh, PLAYS, LONG_PLAYS, full=True)
    for key, port in ((PLAYS, "plays"), (LONG_PLAYS, "long_plays")):
        full = again[key].release
        assert full is not None and full.watermarks[next(iter(full.watermarks))].after is None
        assert rows_of(mesh, key, port, incremental[key]) == rows_of(mesh, key, port, full)
        assert full.ports[port].rows == incremental[key].ports[port].rows
        # the profile of the whole port, though most of it was not read again
        for column, stats in full.profile[port].items():
            kept = incremental[key].profile[port][column]
            exact = ("null_share", "min", "max", "mean", "distinct")
            if column != "_recorded_at":
                assert {k: kept.get(k) for k in exact} == {k: stats.get(k) for k in exact}
    assert again[PLAYS].run.inputs["raw_plays"].rows == 55
    # pseudonyms of hash-masked columns were computed for the appended rows too
    rows = rows_of(mesh, PLAYS, "plays", incremental[PLAYS])
    assert len({row["_pseudonym_listener_id"] for row in rows}) == 7
    assert all(len(str(row["_pseudonym_listener_id"])) == 32 for row in rows)


def test_a_downstream_product_reads_only_the_new_rows_of_its_input_product(mesh: Path) -> None:
    build(mesh)
    add_plays(mesh, 40, 10, ms=45_000)
    results = build(mesh)
    assert read_of(results[PLAYS], "raw_plays") == (10, played_at(39))
    assert read_of(results[LONG_PLAYS], "plays") == (10, played_at(39).replace(".000", "+00"))
    release = results[LONG_PLAYS].release
    assert release is not None
    assert release.inputs["plays"].release == 2
    assert release.ports["long_plays"].rows == 10 + sum(
        1 for i in range(40) if 1000 * (i % 400) >= 30_000)


def test_nothing_new_still_releases_the_same_data(mesh: Path) -> None:
    first = build(mesh, PLAYS)[PLAYS].release
    second = build(mesh, PLAYS)[PLAYS]
    assert second.run.outcome == "released"
    assert read_of(second, "raw_plays") == (0, played_at(39))
    assert second.release is not None and first is not None
    assert second.release.ports["plays"].files == first.ports["plays"].files
    assert second.release.ports["plays"].delta_version == first.ports["plays"].delta_version
    assert second.release.watermarks["raw_plays"].value == played_at(39)
    assert rows_of(mesh, PLAYS, "plays", system=True) == rows_of(mesh, PLAYS, "plays", first,
                                                                 system=True)


# --- merge ----------------------------------------------------------------------------------


def write_accounts(mesh: Path, name: str, rows: list[tuple[int, str, str, str]]) -> None:
    folder = mesh / "sources" / "accounts"
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["account_id,plan,country,updated_at"]
    lines += [f"{a},{p},{c},2026-11-{d} 10:00:00" for a, p, c, d in rows]
    (folder / f"{name}.csv").write_text("\n".join(lines) + "\n")


def test_merge_replaces_rows_whose_key_reappears(mesh: Path) -> None:
    write_accounts(mesh, "0001", [(1, "free", "DE", "01"), (2, "free", "FR", "01"),
                                  (3, "premium", "SE", "01")])
    first = build(mesh, ACCOUNTS)[ACCOUNTS].release
    assert first is not None
    # account 2 upgrades twice in one export (the latest wins), 3 is sent again unchanged
    write_accounts(mesh, "0002", [(2, "family", "FR", "02"), (2, "premium", "FR", "03"),
                                  (4, "free", "NL", "03")])
    write_accounts(mesh, "0003", [(3, "premium", "SE", "04")])
    second = build(mesh, ACCOUNTS)[ACCOUNTS]
    assert read_of(second, "changes") == (4, "2026-11-01 10:00:00")
    rows = {r["account_id"]: r for r in rows_of(mesh, ACCOUNTS, "accounts", system=True)}
    assert {k: r["plan"] for k, r in rows.items()} == {1: "free", 2: "premium", 3: "premium",
                                                       4: "free"}
    assert second.release is not None
    assert rows[1]["_recorded_at"] == first.recorded_at  # kept
    assert rows[2]["_recorded_at"] == second.release.recorded_at  # changed
    assert rows[4]["_recorded_at"] == second.release.recorded_at  # new
    assert rows[3]["_recorded_at"] == second.release.recorded_at  # a newer updated_at
    assert second.release.ports["accounts"].rows == 4
    # the one file held merged keys, so it was rewritten
    assert not {f.path for f in first.ports["accounts"].files} & {
        f.path for f in second.release.ports["accounts"].files}

    # keys above every file's range touch no file: the previous files stay
    write_accounts(mesh, "0004", [(10, "free", "PL", "05"), (11, "free", "PL", "05")])
    third = build(mesh, ACCOUNTS)[ACCOUNTS].release
    assert third is not None and third.ports["accounts"].rows == 6
    kept = {f.path for f in second.release.ports["accounts"].files}
    assert kept <= {f.path for f in third.ports["accounts"].files}

    merged = rows_of(mesh, ACCOUNTS, "accounts", third)
    full = build(mesh, ACCOUNTS, full=True)[ACCOUNTS].release
    assert merged == rows_of(mesh, ACCOUNTS, "accounts", full)


def test_merge_keeps_the_recorded_time_of_a_row_sent_again_unchanged(mesh: Path) -> None:
    write_accounts(mesh, "0001", [(1, "free", "DE", "01"), (2, "free", "FR", "02")])
    first = build(mesh, ACCOUNTS)[ACCOUNTS].release
    # the export repeats account 2 exactly as it was (same updated_at) plus a newer change
    write_accounts(mesh, "0002", [(1, "premium", "DE", "03")])
    build(mesh, ACCOUNTS)
    rows = {r["account_id"]: r for r in rows_of(mesh, ACCOUNTS, "accounts", system=True)}
    assert first is not None and rows[2]["_recorded_at"] == first.recorded_at
    assert rows[1]["plan"] == "premium"


# --- full builds --------------------------------------------------------------------------------


def test_full_flag_and_changes_of_the_transform_or_schema_build_fully(mesh: Path) -> None:
    build(mesh, PLAYS)
    add_plays(mesh, 40, 2)
    full = build(mesh, PLAYS, full=True)[PLAYS]
    assert read_of(full, "raw_plays") == (42, None)
    assert full.release is not None
    assert not {f.path for f in full.release.ports["plays"].files} & {
        f.path for f in ProductStorage(mesh / ".quanta", PLAYS).release(1).ports["plays"].files}

    sql = mesh / "domains/listening/plays/transform.sql"
    sql.write_text(sql.read_text().replace("    device\n", "    lower(device) AS device\n"))
    recorder = Recorder()
    [changed] = Builder(load_mesh(mesh), recorder).build([PLAYS])
    assert changed.ok and read_of(changed, "raw_plays") == (42, None)
    assert recorder.warnings == [f"{PLAYS}: full build: the transform or the inputs changed since "
                        "release 2"]

    spec = mesh / "domains/listening/plays/dataproduct.yaml"
    spec.write_text(spec.read_text().replace("version: 1.0.0", "version: 1.1.0").replace(
        "      - {name: device, type: string}",
        "      - {name: device, type: string}\n      - {name: country, type: string}").replace(
        "    device\nFROM", "    device, 'DE' AS country\nFROM"))
    sql.write_text(sql.read_text().replace("AS device\n", "AS device, 'DE' AS country\n"))
    add_plays(mesh, 42, 1)
    widened = build(mesh, PLAYS)[PLAYS]
    assert read_of(widened, "raw_plays") == (43, None)


def test_cli_build_full(mesh: Path) -> None:
    result = cli("build", PLAYS, "--mesh", str(mesh))
    assert result.exit_code == 0, result.output
    result = cli("build", PLAYS, "--full", "--mesh", str(mesh))
    assert result.exit_code == 0, result.output
    runs = MeshContext(mesh).runs(PLAYS)
    assert [r.inputs["raw_plays"].rows for r in runs] == [40, 40]


# --- failures -----------------------------------------------------------------------------------


def test_a_failed_incremental_build_leaves_the_previous_release(mesh: Path) -> None:
    first = build(mesh, PLAYS)[PLAYS].release
    # a new play repeats an old play's id: the unique check sees the whole port
    add_plays(mesh, 40, 1, ids=[3])
    [failed] = MeshContext(mesh).build([PLAYS])
    assert failed.error is not None and failed.error.code == "checks_failed"
    assert "unique_play_id" in failed.error.message
    assert latest(mesh, PLAYS) == first
    with sqlite3.connect(mesh / "sources" / "player.db") as con:
        con.execute("DELETE FROM plays WHERE play_id = 'p00000003' AND played_at > ?",
                    [played_at(39)])
    add_plays(mesh, 41, 3)
    again = build(mesh, PLAYS)[PLAYS]
    assert read_of(again, "raw_plays") == (3, played_at(39))


def test_a_build_failing_after_its_write_leaves_delta_and_release_consistent(
        mesh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = build(mesh, PLAYS)[PLAYS].release
    add_plays(mesh, 40, 5)

    def refuse(self: ProductStorage, release: Release) -> Release:
        raise StorageError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(ProductStorage, "commit", refuse)
        [failed] = MeshContext(mesh).build([PLAYS])
    assert failed.error is not None and failed.error.message == "disk full"
    assert latest(mesh, PLAYS) == first
    assert len(rows_of(mesh, PLAYS, "plays")) == 40
    # the next build reads the same new rows, and its Delta version drops the orphan file
    again = build(mesh, PLAYS)[PLAYS]
    assert read_of(again, "raw_plays") == (5, played_at(39))
    assert again.release is not None and again.release.release == 2
    table = DeltaTable(str(ProductStorage(mesh / ".quanta", PLAYS).port_path("plays")))
    assert {Path(u).name for u in table.file_uris()} == {
        f.path for f in again.release.ports["plays"].files}
    assert table.to_pyarrow_table().num_rows == 45


def test_retention_removes_expired_rows_from_kept_files(tmp_path: Path) -> None:
    root = copy_fixture("incremental", tmp_path)
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=50), now - timedelta(days=5)
    write_accounts(root, "0001", [])
    folder = root / "sources" / "accounts"
    (folder / "0001.csv").write_text(
        "account_id,plan,country,updated_at\n"
        f"1,free,DE,{old:%Y-%m-%d %H:%M:%S}\n2,free,FR,{recent:%Y-%m-%d %H:%M:%S}\n")
    [first] = Builder(load_mesh(root), enforce_retention=False).build([ACCOUNTS])
    assert first.ok and first.release is not None and first.release.ports["accounts"].rows == 2
    spec = root / "domains/accounts/accounts/dataproduct.yaml"
    spec.write_text(spec.read_text() + "retention: 30d\n")
    (folder / "0002.csv").write_text(
        f"account_id,plan,country,updated_at\n3,free,NL,{now:%Y-%m-%d %H:%M:%S}\n")
    second = build(root, ACCOUNTS)[ACCOUNTS]
    assert read_of(second, "changes") == (1, f"{recent:%Y-%m-%d %H:%M:%S}")
    assert [r["account_id"] for r in rows_of(root, ACCOUNTS, "accounts")] == [2, 3]
    assert second.release is not None and second.release.retention_cutoff is not None
    assert rows_of(root, ACCOUNTS, "accounts") == rows_of(
        root, ACCOUNTS, "accounts", build(root, ACCOUNTS, full=True)[ACCOUNTS].release)


# --- bad specs ----------------------------------------------------------------------------------


def problems(mesh: Path) -> list[QuantaError]:
    return [p for p in load_mesh(mesh).problems if p.code == "spec_inconsistent"]


def edit_spec(mesh: Path, product: str, old: str, new: str) -> None:
    spec = mesh / "domains" / product / "dataproduct.yaml"
    text = spec.read_text()
    assert old in text
    spec.write_text(text.replace(old, new))


def test_incremental_naming_an_unknown_input_is_refused_with_its_place(mesh: Path) -> None:
    edit_spec(mesh, "listening/plays", "input: raw_plays, watermark", "input: plays, watermark")
    [error] = problems(mesh)
    assert error.message == "incremental names unknown input 'plays'"
    assert error.hint == "declared inputs: raw_plays"
    assert error.location is not None and Path(error.location.file).name == "dataproduct.yaml"
    assert error.location.line == 10


def test_merge_without_a_primary_key_is_refused(mesh: Path) -> None:
    edit_spec(mesh, "accounts/accounts", "    primary_key: [account_id]\n", "")
    [error] = [p for p in problems(mesh) if "merge" in p.message]
    assert error.message == ("strategy merge replaces rows by primary key, but port 'accounts' "
                             "declares none")
    assert error.location is not None and (error.location.line, error.location.column) == (10, 25)


def test_a_referential_check_on_the_incremental_input_is_refused(mesh: Path) -> None:
    edit_spec(mesh, "listening/plays", "  - {check: row_count, min: 1}",
              "  - {check: referential, column: play_id, input: raw_plays, to_column: play_id}")
    [error] = problems(mesh)
    assert "incremental builds read only in part" in error.message
    assert error.location is not None and (error.location.line, error.location.column) == (27, 50)


def test_a_watermark_that_is_not_a_column_fails_the_build_clearly(mesh: Path) -> None:
    edit_spec(mesh, "listening/plays", "watermark: played_at", "watermark: started_at")
    [result] = MeshContext(mesh).build([PLAYS])
    assert result.error is not None and result.error.code == "watermark_invalid"
    assert result.error.message == ("input 'raw_plays' has no column 'started_at' to take the "
                                    "watermark from")
    assert result.error.hint is not None and "played_at" in result.error.hint


def test_a_watermark_with_nulls_fails_the_build(mesh: Path) -> None:
    with sqlite3.connect(mesh / "sources" / "player.db") as con:
        con.execute("INSERT INTO plays VALUES ('p99', 'l1', NULL, 1, 'web')")
    [result] = MeshContext(mesh).build([PLAYS])
    assert result.error is not None and result.error.code == "watermark_invalid"
    assert "1 row(s) of input 'raw_plays' have no played_at" in result.error.message


# --- PostgreSQL ---------------------------------------------------------------------------------

PG_SPEC = """\
apiVersion: quanta/v1
name: members
domain: accounts
kind: source-aligned
version: 1.0.0
owner: {team: accounts}
description: Members, merged by id from a PostgreSQL table by their updated_at.
inputs:
  - {name: members, type: postgres, url_env: MEMBERS_DB_URL, table: public.inc_members}
incremental: {strategy: merge, input: members, watermark: updated_at}
transform: {type: sql, sql: "SELECT id, tier, updated_at FROM members"}
outputs:
  - name: members
    primary_key: [id]
    fields:
      - {name: id, type: int64, nullable: false}
      - {name: tier, type: string}
      - {name: updated_at, type: timestamp}
quality:
  - {check: unique, columns: [id]}
"""


def test_postgres_input_is_read_from_its_watermark_in_the_query(
        mesh: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import adbc_driver_postgresql.dbapi as adbc

    def run(*statements: str) -> None:
        with adbc.connect(postgres_url) as con, con.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
            con.commit()

    run("DROP TABLE IF EXISTS public.inc_members",
        "CREATE TABLE public.inc_members (id bigint primary key, tier text, "
        "updated_at timestamptz not null)",
        "INSERT INTO public.inc_members SELECT i, 'free', "
        "TIMESTAMPTZ '2026-11-01 00:00:00+00' + i * INTERVAL '1 second' "
        "FROM generate_series(1, 30) i")
    folder = mesh / "domains/accounts/members"
    folder.mkdir()
    (folder / "dataproduct.yaml").write_text(PG_SPEC)
    monkeypatch.setenv("MEMBERS_DB_URL", postgres_url)
    key = "accounts.members"
    first = build(mesh, key)[key].release
    assert first is not None
    assert first.watermarks["members"].type == "TIMESTAMP WITH TIME ZONE"
    assert first.watermarks["members"].value == "2026-11-01 00:00:30+00"
    run("UPDATE public.inc_members SET tier = 'premium', updated_at = "
        "TIMESTAMPTZ '2026-11-02 00:00:00.250+00' WHERE id IN (3, 4)",
        "INSERT INTO public.inc_members VALUES (31, 'free', TIMESTAMPTZ '2026-11-02 00:00:01+00')")
    second = build(mesh, key)[key]
    assert read_of(second, "members") == (3, "2026-11-01 00:00:30+00")
    tiers = {r["id"]: r["tier"] for r in rows_of(mesh, key, "members")}
    assert len(tiers) == 31 and tiers[3] == tiers[4] == "premium" and tiers[5] == "free"
    full = build(mesh, key, full=True)[key].release
    assert rows_of(mesh, key, "members", second.release) == rows_of(mesh, key, "members", full)


def test_a_product_becoming_incremental_builds_fully_once(tiny_mesh: Path) -> None:
    build(tiny_mesh, "shop.orders")
    edit_spec(tiny_mesh, "shop/orders", "transform: {type: sql",
              "incremental: {strategy: append, input: raw_orders, watermark: ordered_at}\n"
              "transform: {type: sql")
    context = MeshContext(tiny_mesh)
    context.reporter = recorder = Recorder()
    [switched] = context.build(["shop.orders"])
    assert switched.ok and read_of(switched, "raw_orders") == (3, None)
    assert recorder.warnings == ["shop.orders: full build: release 1 recorded no watermark of "
                        "'raw_orders'"]
    csv = tiny_mesh / "domains/shop/orders/orders.csv"
    csv.write_text(csv.read_text() + "o4,c3,99.99,2026-11-03 12:00:00\n")
    [grown] = MeshContext(tiny_mesh).build(["shop.orders"])
    assert grown.ok and read_of(grown, "raw_orders") == (1, "2026-11-02 09:15:00")
    assert grown.release is not None and grown.release.ports["orders"].rows == 4
