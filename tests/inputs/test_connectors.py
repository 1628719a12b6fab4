"""Every input type reads its source into a build; unreachable sources fail clearly."""

from __future__ import annotations

import json
import socket
import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from quanta.context import MeshContext

SPEC = """\
apiVersion: quanta/v1
name: things
domain: src
kind: source-aligned
version: 1.0.0
owner: {{team: src}}
description: Things from one source.
inputs:
  - {input}
transform: {{type: sql, sql: "SELECT id, label, CAST(seen AS TIMESTAMP) AS seen FROM raw"}}
outputs:
  - name: things
    event_time: seen
    fields:
      - {{name: id, type: int64, nullable: false}}
      - {{name: label, type: string}}
      - {{name: seen, type: timestamp}}
quality:
  - {{check: unique, columns: [id]}}
"""

ROWS = [
    {"id": 1, "label": "one", "seen": "2026-11-01 10:00:00"},
    {"id": 2, "label": "two", "seen": "2026-11-02 11:00:00"},
    {"id": 3, "label": None, "seen": "2026-11-03 12:00:00"},
]


def make_mesh(tmp_path: Path, input_yaml: str) -> Path:
    mesh = tmp_path / "mesh"
    product = mesh / "domains/src/things"
    product.mkdir(parents=True)
    (mesh / "mesh.yaml").write_text("apiVersion: quanta/v1\nname: inputs\n")
    (product / "dataproduct.yaml").write_text(SPEC.format(input=input_yaml))
    return product


def build_rows(mesh: Path) -> list[dict[str, object]]:
    ctx = MeshContext(mesh)
    assert ctx.validate() == []
    [result] = ctx.build()
    assert result.ok, result.error and result.error.render()
    table = ctx.query("SELECT id, label FROM src.things ORDER BY id").table
    return table.to_pylist()


EXPECTED = [{"id": 1, "label": "one"}, {"id": 2, "label": "two"}, {"id": 3, "label": None}]


def test_csv_file(tmp_path: Path) -> None:
    product = make_mesh(tmp_path, "{name: raw, type: file, path: data/things.csv}")
    (product / "data").mkdir()
    (product / "data/things.csv").write_text(
        "id,label,seen\n1,one,2026-11-01 10:00:00\n2,two,2026-11-02 11:00:00\n"
        "3,,2026-11-03 12:00:00\n")
    assert build_rows(product.parents[2]) == EXPECTED


def test_csv_glob_with_delimiter(tmp_path: Path) -> None:
    product = make_mesh(tmp_path, "{name: raw, type: file, path: 'part-*.txt', format: csv, "
                                  "delimiter: ';'}")
    (product / "part-1.txt").write_text("id;label;seen\n1;one;2026-11-01 10:00:00\n")
    (product / "part-2.txt").write_text(
        "id;label;seen\n2;two;2026-11-02 11:00:00\n3;;2026-11-03 12:00:00\n")
    assert build_rows(product.parents[2]) == EXPECTED


def test_ndjson_file(tmp_path: Path) -> None:
    product = make_mesh(tmp_path, "{name: raw, type: file, path: things.ndjson}")
    (product / "things.ndjson").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    assert build_rows(product.parents[2]) == EXPECTED


def test_json_array_file(tmp_path: Path) -> None:
    product = make_mesh(tmp_path, "{name: raw, type: file, path: things.json}")
    (product / "things.json").write_text(json.dumps(ROWS))
    assert build_rows(product.parents[2]) == EXPECTED


def test_parquet_file(tmp_path: Path) -> None:
    product = make_mesh(tmp_path, "{name: raw, type: file, path: things.parquet}")
    pq.write_table(pa.Table.from_pylist(ROWS), product / "things.parquet")
    assert build_rows(product.parents[2]) == EXPECTED


def test_corrupt_parquet_file_fails_clearly(tmp_path: Path) -> None:
    product = make_mesh(tmp_path, "{name: raw, type: file, path: things.parquet}")
    (product / "things.parquet").write_bytes(b"PAR1 this is not parquet")
    [result] = MeshContext(product.parents[2]).build()
    assert result.error is not None and result.error.code == "input_failed"
    assert "cannot read parquet from things.parquet" in result.error.message


def sqlite_db(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE things (id INTEGER PRIMARY KEY, label TEXT, seen TEXT)")
    con.executemany("INSERT INTO things VALUES (:id, :label, :seen)", ROWS)
    con.commit()
    con.close()


def test_sqlite_table(tmp_path: Path) -> None:
    product = make_mesh(tmp_path, "{name: raw, type: sqlite, path: app.db, table: things}")
    sqlite_db(product / "app.db")
    assert build_rows(product.parents[2]) == EXPECTED


def test_sqlite_missing_table_lists_the_tables(tmp_path: Path) -> None:
    product = make_mesh(tmp_path, "{name: raw, type: sqlite, path: app.db, table: thing}")
    sqlite_db(product / "app.db")
    [result] = MeshContext(product.parents[2]).build()
    assert result.error is not None
    assert "table 'thing' is not in app.db" in result.error.message
    assert result.error.hint == "tables: things"


def test_sqlite_missing_database(tmp_path: Path) -> None:
    product = make_mesh(tmp_path, "{name: raw, type: sqlite, path: gone.db, table: things}")
    [result] = MeshContext(product.parents[2]).build()
    assert result.error is not None and "gone.db does not exist" in result.error.message


def test_sqlite_file_that_is_not_a_database(tmp_path: Path) -> None:
    product = make_mesh(tmp_path, "{name: raw, type: sqlite, path: app.db, table: things}")
    (product / "app.db").write_bytes(b"definitely not sqlite" * 100)
    [result] = MeshContext(product.parents[2]).build()
    assert result.error is not None and "not a readable SQLite database" in result.error.message


def test_postgres_table(tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
                        ) -> None:
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(postgres_url) as con, con.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS public.things")
        cur.execute("CREATE TABLE public.things (id bigint primary key, label text, seen text)")
        cur.execute("INSERT INTO public.things VALUES (1, 'one', '2026-11-01 10:00:00'), "
                    "(2, 'two', '2026-11-02 11:00:00'), (3, NULL, '2026-11-03 12:00:00')")
        con.commit()
    product = make_mesh(tmp_path, "{name: raw, type: postgres, url_env: THINGS_DB_URL, "
                                  "table: public.things}")
    monkeypatch.setenv("THINGS_DB_URL", postgres_url)
    assert build_rows(product.parents[2]) == EXPECTED
    spec_text = (product / "dataproduct.yaml").read_text()
    assert postgres_url not in spec_text


def test_postgres_without_url_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    product = make_mesh(tmp_path, "{name: raw, type: postgres, url_env: THINGS_DB_URL, "
                                  "table: things}")
    monkeypatch.delenv("THINGS_DB_URL", raising=False)
    [result] = MeshContext(product.parents[2]).build()
    assert result.error is not None
    assert "THINGS_DB_URL is not set" in result.error.message
    assert "export THINGS_DB_URL=postgresql://" in (result.error.hint or "")


def test_unreachable_postgres_is_a_transient_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # nothing listens on that port now
    product = make_mesh(tmp_path, "{name: raw, type: postgres, url_env: THINGS_DB_URL, "
                                  "table: things}")
    monkeypatch.setenv("THINGS_DB_URL", f"postgresql://quanta:s3cret@127.0.0.1:{port}/db")
    [result] = MeshContext(product.parents[2]).build()
    error = result.error
    assert error is not None and error.code == "input_failed"
    assert "cannot connect to PostgreSQL (THINGS_DB_URL)" in error.message
    assert getattr(error, "transient", False) is True
    assert "s3cret" not in error.render()


def test_url_in_spec_instead_of_variable_name_is_refused(tmp_path: Path) -> None:
    product = make_mesh(tmp_path, "{name: raw, type: postgres, "
                                  "url_env: 'postgresql://u:p@h/db', table: things}")
    problems = MeshContext(product.parents[2]).validate()
    assert len(problems) == 1
    assert "never the URL itself" in problems[0].message


def test_product_input_pinned_to_a_release(tiny_mesh: Path) -> None:
    spec = tiny_mesh / "domains/shop/daily_totals/dataproduct.yaml"
    spec.write_text(spec.read_text().replace(
        "product: quanta://shop/orders/orders}", "product: quanta://shop/orders/orders, "
        "release: 1}"))
    ctx = MeshContext(tiny_mesh)
    ctx.build(["shop.orders"])
    csv = tiny_mesh / "domains/shop/orders/orders.csv"
    csv.write_text(csv.read_text() + "o9,c9,1.00,2026-11-09 09:00:00\n")
    ctx.build(["shop.orders"])
    [result] = ctx.build(["shop.daily_totals"])
    assert result.release is not None
    assert result.release.inputs["orders"].release == 1
    days = ctx.query("SELECT count(*) FROM shop.daily_totals").table.column(0)[0].as_py()
    assert days == 2  # release 1 of orders has no 2026-11-09 row


def test_product_input_without_upstream_release_says_build_it(tiny_mesh: Path) -> None:
    ctx = MeshContext(tiny_mesh)
    [result] = ctx.build(["shop.daily_totals"])
    assert result.error is not None
    assert "shop.orders has no release yet" in result.error.message
    assert result.error.hint == "build it first: quanta build shop.orders"
