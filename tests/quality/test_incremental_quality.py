"""Checks and profiles of an incrementally built port describe the whole port, though they
read little of the files kept from the previous release."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from quanta.engine.duckdb import DuckDBSession
from quanta.quality.checks import run_checks
from quanta.quality.incremental import PortParts, profile_release, run_release_checks
from quanta.quality.profile import profile_table
from quanta.spec.models import ProductSpec
from quanta.storage import PortRelease, Release

SCHEMA = pa.schema([
    ("id", pa.int64()), ("name", pa.string()), ("amount", pa.decimal128(10, 2)),
    ("day", pa.date32()), ("score", pa.float32()), ("flag", pa.bool_()),
    ("at", pa.timestamp("us", tz="UTC")), ("empty", pa.string()),
])


def rows(first: int, count: int) -> pa.Table:
    ids = list(range(first, first + count))
    return pa.table({
        "id": ids,
        "name": [None if i % 5 == 0 else ("n" * 300 if i == 7 else f"name{i % 13}")
                 for i in ids],
        "amount": [Decimal(i % 97) / 4 for i in ids],
        "day": [date(2026, 1 + i % 12, 1 + i % 28) for i in ids],
        "score": [i / 3 for i in ids],
        "flag": [i % 2 == 0 for i in ids],
        "at": [datetime(2026, 11, 1, i % 24, tzinfo=UTC) for i in ids],
        "empty": [None] * count,
    }, schema=SCHEMA)


def port(tmp_path: Path, written: pa.Table) -> tuple[DuckDBSession, list[Path]]:
    """Two kept Parquet files and ``written`` as table ``w`` (view ``v``: all of them)."""
    files = []
    for index, part in enumerate((rows(0, 300), rows(300, 500))):
        files.append(tmp_path / f"part-{index}.parquet")
        pq.write_table(part, files[-1], row_group_size=128)
    session = DuckDBSession()
    session.load_table("__w", written)
    session.execute("CREATE TEMP TABLE w AS SELECT * FROM __w")
    listing = ", ".join(f"'{f}'" for f in files)
    session.execute(f"CREATE TEMP VIEW v AS SELECT * FROM read_parquet([{listing}]) "
                    "UNION ALL SELECT * FROM w")
    session.execute("CREATE TEMP TABLE whole AS SELECT * FROM v")
    return session, files


def test_the_profile_of_kept_files_and_written_rows_is_the_whole_ports(tmp_path: Path) -> None:
    session, files = port(tmp_path, rows(800, 40))
    combined = profile_release(session, "w", "v", files, 840)
    whole = profile_table(session, "whole")
    assert combined.keys() == whole.keys()
    for column, stats in whole.items():
        assert {k: v for k, v in combined[column].items() if k != "quantiles"} == \
            {k: v for k, v in stats.items() if k != "quantiles"}, column
    assert whole["name"]["max"] == "n" * 300  # a cut statistic is never taken for a value
    assert whole["empty"]["null_share"] == 1.0


def spec_with(checks: list[dict[str, Any]]) -> ProductSpec:
    return ProductSpec.model_validate({
        "name": "p", "domain": "d", "kind": "source-aligned", "version": "1.0.0",
        "owner": {"team": "t"}, "description": "P.",
        "transform": {"type": "sql", "sql": "SELECT 1"},
        "outputs": [{"name": "p", "primary_key": ["id"], "fields": [
            {"name": n, "type": t} for n, t in (("id", "int64"), ("name", "string"),
                                                ("score", "float32"))]}],
        "quality": checks,
    })


def previous_release(spec: ProductSpec, session: DuckDBSession, table: str) -> Release:
    checks = run_checks(session, spec, {"p": table}, {"p": 800})
    return Release(product="d.p", release=1, interface_version="1.0.0",
                   committed_at=datetime.now(UTC), recorded_at=datetime.now(UTC), run_id="r",
                   ports={"p": PortRelease(delta_version=0, schema_hash="x", rows=800,
                                           files=[])}, checks=checks)


def test_checks_read_the_kept_files_only_when_their_results_may_change(tmp_path: Path) -> None:
    # a new row repeats id 5 of a kept file, another one has no name
    written = rows(800, 3).to_pylist()
    written[0]["id"], written[1]["name"] = 5, None
    session, files = port(tmp_path, pa.Table.from_pylist(written, schema=SCHEMA))
    spec = spec_with([{"check": "unique", "columns": ["id"]},
                      {"check": "not_null", "columns": ["name"], "severity": "warn"},
                      {"check": "range", "column": "score", "min": 0}])
    session.execute("CREATE TEMP VIEW kept AS SELECT * FROM read_parquet(["
                    + ", ".join(f"'{f}'" for f in files) + "])")
    previous = previous_release(spec, session, "kept")
    parts = {"p": PortParts([], files, "w", "v", 803)}
    found = run_release_checks(session, spec, parts, {"p": 803}, previous, reusable=True)
    whole = run_checks(session, spec, {"p": "whole"}, {"p": 803})
    assert [(c.name, c.failing_rows, c.total_rows) for c in found] == \
        [(c.name, c.failing_rows, c.total_rows) for c in whole]
    assert [c.failing_rows for c in found] == [1, 162, 0]
    # results that do not carry over (other definitions) are computed on the whole port
    again = run_release_checks(session, spec, parts, {"p": 803}, previous, reusable=False)
    assert [c.failing_rows for c in again] == [1, 162, 0]
