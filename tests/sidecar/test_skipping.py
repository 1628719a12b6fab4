"""File skipping: a lookup by key reads only the files that can hold the key, and never
answers differently from a full read."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot

from quanta.build import runner
from quanta.context import MeshContext
from quanta.sidecar import skipping
from quanta.storage.stats import column_bounds

ROWS = 6_000

SPEC = """\
apiVersion: quanta/v1
name: plays
domain: music
kind: source-aligned
version: 1.0.0
owner: {team: music}
description: Plays, written in many small files so lookups can skip most of them.
inputs:
  - {name: raw, type: file, path: plays.csv}
transform: {type: sql, sql: "SELECT * FROM raw"}
outputs:
  - name: plays
    primary_key: [play_id]
    fields:
      - {name: play_id, type: string}
      - {name: seq, type: int64}
      - {name: listener_id, type: string, classification: pii}
policies:
  - {type: grant, to: ["*"]}
  - {type: mask, classification: pii, method: hash, unless: ["group:privacy"]}
"""


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("skipping")
    folder = root / "domains" / "music" / "plays"
    folder.mkdir(parents=True)
    (root / "mesh.yaml").write_text("apiVersion: quanta/v1\nname: skipping\n")
    (folder / "dataproduct.yaml").write_text(SPEC)
    numbers = list(range(1, ROWS + 1))
    random.Random(5).shuffle(numbers)  # the source is in no order; the port is
    lines = ["play_id,seq,listener_id"]
    lines += [f"p{n:06d},{n},l{n % 97:03d}" for n in numbers]
    (folder / "plays.csv").write_text("\n".join(lines) + "\n")
    patch = pytest.MonkeyPatch()
    patch.setattr(runner, "FILE_BYTES", 16_000)
    patch.setattr(runner, "ROW_GROUP_ROWS", 256)
    try:
        ctx = MeshContext(root)
        assert all(r.ok for r in ctx.build())
        ctx.close()
    finally:
        patch.undo()
    return root


def _files(ctx: MeshContext) -> list[Path]:
    storage = ctx.storage("music.plays")
    release = storage.latest()
    assert release is not None
    return storage.data_files(release, "plays")


def test_ports_are_written_in_key_order_in_disjoint_files(mesh: Path) -> None:
    ctx = MeshContext(mesh)
    files = _files(ctx)
    assert len(files) >= 3
    ranges = sorted(column_bounds(f)["play_id"] for f in files)
    for (_, high), (low, _) in itertools.pairwise(ranges):
        assert high < low
    for file in files:
        metadata = pq.ParquetFile(file).metadata
        groups = [metadata.row_group(i).column(0).statistics for i in range(
            metadata.num_row_groups)]
        assert all(a.max < b.min for a, b in itertools.pairwise(groups))
    ctx.close()


def test_lookups_read_one_file_and_answer_like_a_full_read(
        mesh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx = MeshContext(mesh)
    kept: list[int] = []
    keep = skipping.keep

    def spy(files: list[Path], wanted: skipping.Lookups) -> list[Path]:
        chosen = keep(files, wanted)
        kept.append(len(chosen))
        return chosen

    monkeypatch.setattr(skipping, "keep", spy)
    total = len(_files(ctx))
    keys = [f"p{n:06d}" for n in random.Random(9).sample(range(1, ROWS + 1), 25)]
    keys += ["p000000", "p999999", "q"]  # before, after, between: no file holds them
    for key in keys:
        kept.clear()
        fast = ctx.query(f"SELECT * FROM music.plays WHERE play_id = '{key}'").table
        assert kept == [1 if key.startswith("p00") and key != "p000000" else 0]
        full = ctx.query(f"SELECT * FROM music.plays WHERE play_id = '{key}' OR false").table
        assert kept[-1] == total  # an OR is not a lookup: every file is read
        assert fast.to_pylist() == full.to_pylist()
    several = ctx.query("SELECT seq FROM music.plays WHERE play_id IN ('p000001', 'p005999') "
                        "AND seq > 0 ORDER BY seq").table
    assert several.column("seq").to_pylist() == [1, 5999]
    assert kept[-1] == 2
    ctx.close()


def test_masked_columns_are_never_used_to_skip(mesh: Path) -> None:
    ctx = MeshContext(mesh)
    reader = ctx.principal("reader")
    first = ctx.query("SELECT listener_id FROM music.plays WHERE play_id = 'p000097'",
                      principal=reader).table.column(0)[0].as_py()
    assert first is not None and not first.startswith("l")  # the reader sees a pseudonym
    same = ctx.query(f"SELECT count(*) FROM music.plays WHERE listener_id = '{first}'",
                     principal=reader).table.column(0)[0].as_py()
    assert same == ROWS // 97  # every play of listener l000, found by its pseudonym
    ctx.close()


@pytest.mark.parametrize(("where", "expected"), [
    ("id = 'a'", {"id": {"a"}}),
    ("'a' = id", {"id": {"a"}}),
    ("t.id = 'a' AND n IN (1, 2)", {"id": {"a"}, "n": {1, 2}}),
    ("(id = 'a' AND (n = 3))", {"id": {"a"}, "n": {3}}),
    ("id IN ('a', 'b') AND id = 'b'", {"id": {"b"}}),
    ("id = 'a' OR id = 'b'", {}),
    ("id = other", {}),
    ("secret = 'a'", {}),  # masked for this reader
    ("x.id = 'a'", {}),  # another table's column
    ("id IN (SELECT 'a')", {}),
    ("n = 1.5", {}),
])
def test_which_terms_pin_keys(where: str, expected: dict[str, set[object]]) -> None:
    tree = sqlglot.parse_one(f'SELECT * FROM "rel" AS t WHERE {where}', read="duckdb")
    found = skipping.lookups(tree, "rel", {"id", "n"})
    assert {k: set(v) for k, v in found.items()} == expected


@pytest.mark.parametrize("sql", [
    'SELECT * FROM "rel" t JOIN "other" o ON true WHERE t.id = \'a\'',
    'SELECT * FROM "rel" WHERE id = \'a\' AND n = (SELECT max(n) FROM "rel")',
    'WITH c AS (SELECT 1) SELECT * FROM "rel" WHERE id = \'a\'',
    'SELECT * FROM "rel" WHERE id = \'a\' UNION ALL SELECT * FROM "rel"',
    'SELECT * FROM (SELECT * FROM "rel") WHERE id = \'a\'',
])
def test_only_plain_single_reads_are_lookups(sql: str) -> None:
    assert skipping.lookups(sqlglot.parse_one(sql, read="duckdb"), "rel", {"id", "n"}) == {}


def test_files_without_usable_bounds_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "part.parquet"
    pq.write_table(pa.table({"id": ["b", "c"], "n": [5, 6]}), path, write_statistics=["n"])
    assert "id" not in column_bounds(path)
    assert skipping.keep([path], {"id": frozenset({"z"})}) == [path]
    assert skipping.keep([path], {"n": frozenset({"5"})}) == [path]  # the engine casts
    assert skipping.keep([path], {"n": frozenset({7})}) == []
    assert skipping.keep([path], {"n": frozenset({6})}) == [path]
