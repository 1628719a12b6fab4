"""Erasure: a subject leaves every retained release of every product carrying the polyseme,
the raw Delta files and the stored metadata; failures leave nothing half-erased."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from conftest import cli, copy_fixture
from quanta.context import MeshContext
from quanta.control import erasure
from quanta.control.erasure import ErasureError, erase
from quanta.engine.duckdb import DuckDBSession
from quanta.sidecar import Principal

PRIVACY = Principal("pia", frozenset({"privacy"}))  # sees listener ids in clear
SUBJECT = "l1"


@pytest.fixture
def mesh(tmp_path: Path) -> Path:
    """The secure mesh with two releases of each product (a play added in the second)."""
    root = copy_fixture("secure", tmp_path)
    ctx = MeshContext(root)
    assert all(r.ok for r in ctx.build())
    plays = root / "domains/people/plays/plays.csv"
    plays.write_text(plays.read_text() + "p6,l1,t4\np7,l4,t4\n")
    listeners = root / "domains/people/listeners/listeners.csv"
    listeners.write_text(listeners.read_text().replace("premium,false", "premium+,false", 1))
    assert all(r.ok for r in ctx.build())
    ctx.close()
    return root


def listeners_at(ctx: MeshContext, table: str, release: int) -> list[str]:
    rows = ctx.query(f"SELECT listener_id FROM {table}", release, principal=PRIVACY).table
    return sorted(rows.column("listener_id").to_pylist())


def raw_values(root: Path) -> list[str]:
    """listener_id of every row of every Parquet file in the port folders, read directly."""
    values: list[str] = []
    for file in sorted((root / ".quanta/products/people").glob("*/ports/*/*.parquet")):
        values += pq.read_table(file, columns=["listener_id"]).column(0).to_pylist()
    return values


def test_erasure_reaches_every_release_and_the_raw_files(mesh: Path) -> None:
    ctx = MeshContext(mesh)
    before = {(t, r): listeners_at(ctx, t, r) for r in (1, 2)
              for t in ("people.plays", "people.listeners", "people.consents")}
    assert all(SUBJECT in values for values in before.values())

    report = erase(ctx.sidecar, "listener_id", SUBJECT)

    assert report.verified
    assert report.products == ["people.consents", "people.listeners", "people.plays"]
    assert report.rows_removed == 1 + 1 + 1 + 1 + 2 + 3  # 2 releases each; plays: 2 then 3
    for (table, release), values in before.items():
        assert listeners_at(ctx, table, release) == [v for v in values if v != SUBJECT]
    assert SUBJECT not in raw_values(mesh)
    latest = DeltaTable(str(mesh / ".quanta/products/people/plays/ports/plays"))
    delta_rows = latest.to_pyarrow_table().column("listener_id").to_pylist()
    assert sorted(delta_rows) == listeners_at(ctx, "people.plays", 2)
    for file in (mesh / ".quanta").rglob("*.json"):
        if "audit" in file.parts:
            continue
        text = file.read_text()
        assert f'"{SUBJECT}"' not in text and f"\\\"{SUBJECT}\\\"" not in text, file
    stored = json.loads((mesh / ".quanta/erasures" / f"{report.id}.json").read_text())
    assert stored["verified"] and stored["rows_removed"] == 9
    assert SUBJECT not in json.dumps(stored["erased"]) and stored["subject"] != SUBJECT
    ctx.sidecar.audit.close()
    audit = [json.loads(line) for line in ctx.sidecar.audit.file.read_text().splitlines()]
    assert any(r.get("action") == "erase" and r.get("erasure") == report.id for r in audit)

    again = erase(ctx.sidecar, "listener_id", SUBJECT)  # idempotent: nothing left to remove
    assert again.rows_removed == 0 and again.verified
    ctx.close()


def test_a_dry_run_counts_and_changes_nothing(mesh: Path) -> None:
    ctx = MeshContext(mesh)
    files = sorted(p.name for p in (mesh / ".quanta").rglob("*.parquet"))
    report = erase(ctx.sidecar, "listener_id", SUBJECT, dry_run=True)
    assert report.rows_removed == 9 and not report.verified
    assert sorted(p.name for p in (mesh / ".quanta").rglob("*.parquet")) == files
    assert SUBJECT in listeners_at(ctx, "people.plays", 1)
    ctx.close()


def test_a_failure_midway_leaves_every_release_as_it_was(
        mesh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = MeshContext(mesh)
    files = sorted(p.name for p in (mesh / ".quanta").rglob("*.parquet"))
    manifests = {p: p.read_bytes() for p in (mesh / ".quanta").rglob("releases/*.json")}
    write = DuckDBSession.write_parquet
    calls: list[int] = []

    def failing(self: DuckDBSession, *args: object, **kwargs: object) -> list[Path]:
        calls.append(1)
        if len(calls) == 3:
            raise OSError("No space left on device")
        return write(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(DuckDBSession, "write_parquet", failing)
    with pytest.raises(ErasureError, match="before changing anything"):
        erase(ctx.sidecar, "listener_id", SUBJECT)
    assert sorted(p.name for p in (mesh / ".quanta").rglob("*.parquet")) == files
    assert {p: p.read_bytes() for p in manifests} == manifests
    assert SUBJECT in listeners_at(ctx, "people.plays", 1)
    ctx.close()


def test_unknown_polysemes_and_empty_values_are_refused(mesh: Path) -> None:
    ctx = MeshContext(mesh)
    with pytest.raises(ErasureError, match="no product carries the polyseme 'user_id'") as info:
        erase(ctx.sidecar, "user_id", "u1")
    assert "listener_id" in (info.value.hint or "")
    with pytest.raises(ErasureError, match="empty"):
        erase(ctx.sidecar, "listener_id", " ")
    assert erasure.carriers(ctx.sidecar, "listener_id") == {
        "people.consents": {"consents": ["listener_id"]},
        "people.listeners": {"listeners": ["listener_id"]},
        "people.plays": {"plays": ["listener_id"]}}
    ctx.close()


def test_the_cli(mesh: Path) -> None:
    dry = cli("erase", "--polyseme", "listener_id", "--value", SUBJECT, "--dry-run",
              "--mesh", str(mesh))
    assert dry.exit_code == 0 and "dry run" in dry.stdout and "9 rows" in dry.stdout
    done = cli("erase", "--polyseme", "listener_id", "--value", SUBJECT, "--mesh", str(mesh))
    assert done.exit_code == 0, done.output
    assert "removed 9 rows" in done.stdout and "no trace left" in done.stdout
    unknown = cli("erase", "--polyseme", "nope", "--value", "x", "--mesh", str(mesh))
    assert unknown.exit_code == 1 and "no product carries" in unknown.output
