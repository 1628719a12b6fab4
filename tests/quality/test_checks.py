"""Each quality check finds exactly the offending rows, and results become quality metrics."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from quanta.engine.duckdb import DuckDBSession
from quanta.quality.checks import quality_metrics, run_checks
from quanta.quality.profile import profile_table
from quanta.spec.models import ProductSpec

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def spec_with(checks: list[dict[str, Any]]) -> ProductSpec:
    return ProductSpec.model_validate({
        "name": "plays", "domain": "listening", "kind": "source-aligned", "version": "1.0.0",
        "owner": {"team": "listening"}, "description": "Plays.",
        "inputs": [{"name": "tracks", "type": "file", "path": "tracks.csv"}],
        "transform": {"type": "sql", "sql": "SELECT 1"},
        "outputs": [{"name": "plays", "event_time": "played_at", "fields": [
            {"name": "play_id", "type": "string"}, {"name": "track_id", "type": "string"},
            {"name": "device", "type": "string"}, {"name": "ms", "type": "int64"},
            {"name": "played_at", "type": "timestamp"},
        ]}],
        "quality": checks,
    })


@pytest.fixture
def session() -> DuckDBSession:
    s = DuckDBSession()
    s.load_table("plays", pa.table({
        "play_id": ["p1", "p2", "p3", "p3", None],
        "track_id": ["t1", "t2", "t9", "t1", "t2"],
        "device": ["ios", "web", "fax", "ios", "ios"],
        "ms": [100, 200, -5, 90_000_000, 300],
        "played_at": pa.array([datetime(2026, 11, 25, 11, 0, tzinfo=UTC)] * 4 + [
            datetime(2026, 11, 20, tzinfo=UTC)], pa.timestamp("us", tz="UTC")),
    }))
    s.load_table("tracks", pa.table({"track_id": ["t1", "t2"]}))
    return s


def run(session: DuckDBSession, check: dict[str, Any]) -> Any:
    [result] = run_checks(session, spec_with([check]), {"plays": '"plays"'}, {"plays": 5}, NOW)
    return result


@pytest.mark.parametrize(("check", "failing"), [
    ({"check": "not_null", "columns": ["play_id"]}, 1),
    ({"check": "not_null", "columns": ["track_id", "device"]}, 0),
    ({"check": "unique", "columns": ["play_id"]}, 1),
    ({"check": "unique", "columns": ["play_id", "track_id"]}, 0),
    ({"check": "accepted_values", "column": "device", "values": ["ios", "web"]}, 1),
    ({"check": "range", "column": "ms", "min": 0, "max": 86_400_000}, 2),
    ({"check": "range", "column": "ms", "min": 0}, 1),
    ({"check": "regex", "column": "play_id", "pattern": "p[0-9]+"}, 0),
    ({"check": "regex", "column": "track_id", "pattern": "t[12]"}, 1),
    ({"check": "row_count", "min": 1, "max": 4}, 1),
    ({"check": "row_count", "min": 5}, 0),
    ({"check": "freshness", "max_age": "2h"}, 0),
    ({"check": "freshness", "max_age": "30m"}, 1),
    ({"check": "referential", "column": "track_id", "input": "tracks", "to_column": "track_id"},
     1),
    ({"check": "sql", "sql": "SELECT * FROM this WHERE ms > 250 AND device = 'ios'"}, 2),
])
def test_check_counts_offending_rows(session: DuckDBSession, check: dict[str, Any],
                                     failing: int) -> None:
    result = run(session, check)
    assert result.failing_rows == failing
    assert result.passed is (failing == 0)
    assert len(result.sample) == (min(failing, 5) if failing else 0)


def test_sample_shows_the_offending_values(session: DuckDBSession) -> None:
    result = run(session, {"check": "accepted_values", "column": "device",
                           "values": ["ios", "web"]})
    assert result.sample[0]["device"] == "fax"
    assert "1 rows have device outside the accepted values" in result.message
    unique = run(session, {"check": "unique", "columns": ["play_id"]})
    assert unique.sample == [{"play_id": "p3", "occurrences": 2}]


def test_a_check_that_cannot_run_fails_with_the_reason(session: DuckDBSession) -> None:
    result = run(session, {"check": "sql", "sql": "SELECT * FROM this WHERE nope > 1"})
    assert not result.passed
    assert result.message.startswith("check could not run:") and "nope" in result.message


def test_quality_metrics_take_the_weakest_check_per_dimension(session: DuckDBSession) -> None:
    results = run_checks(session, spec_with([
        {"check": "not_null", "columns": ["play_id"]},
        {"check": "range", "column": "ms", "min": 0, "max": 86_400_000},
        {"check": "accepted_values", "column": "device", "values": ["ios", "web"]},
        {"check": "unique", "columns": ["play_id"]},
        {"check": "row_count", "min": 1},
    ]), {"plays": '"plays"'}, {"plays": 5}, NOW)
    metrics = quality_metrics(results)
    assert metrics["completeness"] == pytest.approx(0.8)
    assert metrics["accuracy"] == pytest.approx(0.6)
    assert metrics["consistency"] == pytest.approx(0.8)
    assert metrics["check_pass_rate"] == pytest.approx(1 / 5)


def test_profile_has_nulls_distincts_ranges_and_quantiles(session: DuckDBSession) -> None:
    profile = profile_table(session, '"plays"')
    assert profile["play_id"]["null_share"] == pytest.approx(0.2)
    assert profile["device"]["distinct"] == 3
    assert profile["ms"]["min"] == -5 and profile["ms"]["max"] == 90_000_000
    assert set(profile["ms"]["quantiles"]) == {"0.05", "0.25", "0.5", "0.75", "0.95"}
    assert profile["ms"]["quantiles"]["0.5"] == pytest.approx(200, abs=100)
    assert profile["played_at"]["min"].startswith("2026-11-20")


def test_freshness_against_the_event_time_of_a_real_build(tiny_mesh: Path) -> None:
    from quanta.context import MeshContext

    spec = tiny_mesh / "domains/shop/orders/dataproduct.yaml"
    spec.write_text(spec.read_text().replace(
        "quality:\n", "quality:\n  - {check: freshness, max_age: 1d, severity: warn}\n"))
    [result] = MeshContext(tiny_mesh).build(["shop.orders"])
    assert result.ok and result.release is not None
    [fresh] = [c for c in result.release.checks if c.check == "freshness"]
    assert not fresh.passed and "older than 1d" in fresh.message
    assert result.release.metrics["timeliness"] == 0.0
