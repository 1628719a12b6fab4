"""Serving: governed reads through a real ``quanta serve`` process, next to plain baselines.

A one-product mesh ``bench.plays`` (play events: string ids, a ``listener_id`` classified pii,
a timestamp, an int, a country; 10M rows, quick 1M) is built with quanta. Its reader
``bench_reader`` gets a grant and a token; for it ``listener_id`` is masked with the keyed
hash and a row filter (``ms_played >= 0``) keeps every row, so masks and filters are really
computed. Every request below is authenticated, gated, rewritten, limited and audited.

1. full read over Arrow Flight, HTTP Arrow IPC and HTTP NDJSON, interleaved with plain
   DuckDB reading the release's Parquet files into Arrow in this process (the baseline);
   NDJSON is also compared with encoding the same rows with ``json.dumps`` in Python. INFO
   rows read the same port as ``bench_privacy`` (group privacy: no mask, no filter), which
   separates the cost of the mask from the cost of serving, and time plain DuckDB reading
   what the masked reader gets (pseudonyms, filter), the ceiling of any masked read;
2. one-row queries by key over HTTP (p50, p99), and the sidecar's own cost per query in
   this process, instrumented stage by stage (see ``serving_overhead``);
3. the server's RSS growth while it streams the whole port (sampled from /proc);
4. 32 concurrent clients sending mixed small queries for 60 s (quick 10 s);
5. the audit log afterwards: a record for every request (else the workload fails).

The server is a child process on free loopback ports, stopped by its pid at the end.
"""

from __future__ import annotations

import json
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from benchmarks.common import (
    Row,
    Run,
    Sample,
    Settings,
    at_least,
    at_most,
    interleave,
    median,
    spread,
    stopwatch,
)
from benchmarks.data import _ids
from benchmarks.serving_overhead import measure
from benchmarks.serving_server import (
    ARROW,
    CSV,
    NDJSON,
    QUERY_PATH,
    Monitor,
    Received,
    ServerProcess,
    Usage,
    flight_read,
    http_arrow,
    http_client,
    http_ndjson,
)
from quanta.address import Address
from quanta.context import MeshContext
from quanta.sidecar.core import BATCH_ROWS

ROWS: int | None = None  # --rows; the default is 10M rows (quick 1M)
FULL_ROWS, QUICK_ROWS = 10_000_000, 1_000_000

FLIGHT_TARGET, ARROW_TARGET = 0.8, 0.5
NDJSON_RATE, NDJSON_VS_PYTHON = 2_000_000, 10.0
P50_MS, P99_MS, OVERHEAD_MS = 10.0, 30.0, 2.0
RSS_MB = 500
CLIENTS = 32
WARMUP = 50  # untimed one-row requests before the small-query latencies
SERVED_READS = ("flight", "http_arrow", "http_ndjson", "flight_clear", "http_arrow_clear")

PRINCIPAL = "bench_reader"
CLEAR_PRINCIPAL = "bench_privacy"  # in group privacy: sees clear values, all rows
PORT = Address("bench", "plays", "plays")
FULL_SQL = "SELECT * FROM bench.plays"
COUNTRIES = ("DE", "US", "GB", "FR", "SE", "BR", "JP", "IN", "ES", "IT", "NL", "PL", "MX",
             "CA", "AU")
_START_MS = 1_780_000_000_000
_WINDOW_MS = 120 * 86_400_000

MESH_YAML = """\
apiVersion: quanta/v1
name: bench_serving
serving:
  limits: {timeout: 10m, max_rows: 50000000}
"""

PLAYS_SPEC = """\
apiVersion: quanta/v1
name: plays
domain: bench
kind: source-aligned
version: 1.0.0
owner: {team: bench}
description: Play events served to a masked, filtered reader, for benchmarking.
inputs:
  - {name: raw, type: file, path: plays.parquet}
transform: {type: sql, sql: "SELECT * FROM raw"}
outputs:
  - name: plays
    primary_key: [play_id]
    event_time: played_at
    fields:
      - {name: play_id, type: string, nullable: false}
      - {name: listener_id, type: string, classification: pii}
      - {name: track_id, type: string}
      - {name: played_at, type: timestamp}
      - {name: ms_played, type: int64}
      - {name: country, type: string}
policies:
  - {type: mask, classification: pii, method: hash, unless: ["group:privacy"]}
  - {type: row_filter, where: "ms_played >= 0", unless: ["group:privacy"]}
"""


# --- the product -----------------------------------------------------------------------------


def play_table(rows: int, seed: int = 7) -> pa.Table:
    """``rows`` play events with ids ``p000000001``..., sorted by id and time."""
    rng = np.random.default_rng(seed)
    played_ms = np.sort(_START_MS + rng.integers(0, _WINDOW_MS, rows))
    return pa.table({
        "play_id": _ids("p", np.arange(1, rows + 1), 9),
        "listener_id": _ids("l", rng.integers(1, 1_000_000, rows), 7),
        "track_id": _ids("t", rng.integers(1, 100_000, rows), 6),
        "played_at": pa.array(played_ms.astype("datetime64[ms]"))
        .cast(pa.timestamp("us", tz="UTC")),
        "ms_played": rng.integers(1_000, 400_000, rows, dtype=np.int64),
        "country": pa.array(COUNTRIES).take(pa.array(rng.integers(0, len(COUNTRIES), rows))),
    })


def play_id(number: int) -> str:
    return f"p{number:09d}"


@dataclass
class Product:
    """The built mesh, its release's data files and the reader's token."""

    mesh: Path
    rows: int
    files: list[str]
    token: str
    build_s: float
    generate_s: float
    clear_token: str = ""  # a reader in group privacy: no mask, no row filter


def build_product(root: Path, rows: int, settings: Settings) -> Product:
    mesh = root / "mesh"
    folder = mesh / "domains" / "bench" / "plays"
    folder.mkdir(parents=True)
    (mesh / "mesh.yaml").write_text(MESH_YAML)
    (folder / "dataproduct.yaml").write_text(PLAYS_SPEC)
    with stopwatch() as generated:
        pq.write_table(play_table(rows), folder / "plays.parquet")
    settings.log(f"generated {rows:,} play events in {generated[0]:.1f}s")
    ctx = MeshContext(mesh)
    try:
        with stopwatch() as built:
            [result] = ctx.build()
        if not result.ok or result.release is None:
            raise RuntimeError(f"build failed: {result.error and result.error.render()}")
        settings.log(f"built bench.plays ({rows:,} rows) in {built[0]:.1f}s")
        ctx.sidecar.grants.grant(PRINCIPAL, PORT)
        ctx.sidecar.grants.grant(CLEAR_PRINCIPAL, PORT)
        token, _ = ctx.sidecar.tokens.create(PRINCIPAL)
        clear_token, _ = ctx.sidecar.tokens.create(CLEAR_PRINCIPAL, ["privacy"])
        storage = ctx.storage(PORT.product_key)
        release = storage.latest()
        assert release is not None
        files = [str(f) for f in storage.data_files(release, "plays")]
    finally:
        ctx.close()
    (folder / "plays.parquet").unlink()  # the release holds the data now
    return Product(mesh, rows, files, token, built[0], generated[0], clear_token)


def check_masked(first: dict[str, Any], where: str, masked: bool = True) -> None:
    """The first row must show the hashed listener id (32 hex digits), or the clear one."""
    value = str(first.get("listener_id"))
    if masked and (len(value) != 32 or value.startswith("l")):
        raise RuntimeError(f"{where}: listener_id is not masked: {value!r}")
    if not masked and not value.startswith("l"):
        raise RuntimeError(f"{where}: listener_id should be clear: {value!r}")


def scale(rows: int) -> str:
    return f"{rows / 1e6:g}M" if rows >= 1_000_000 else f"{rows:,}"


def rate(rows: float, seconds: float) -> str:
    return f"{rows / seconds / 1e6:.2f}M rows/s"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- 1. full reads ---------------------------------------------------------------------------


# the secure relation the masked reader gets (PLAYS_SPEC's policies), written by hand
MASKED_COLUMNS = ("play_id, _pseudonym_listener_id AS listener_id, track_id, played_at, "
                  "ms_played, country, _recorded_at")


def plain_duckdb(files: list[str], rows: int, masked: bool = False) -> Run:
    """Baseline: a fresh DuckDB connection reading the release's Parquet files into Arrow.

    ``masked``: the columns and rows the masked reader gets (the stored 32-hex pseudonym for
    ``listener_id``, the row filter), with no server in between: what any serving path of
    the masked read costs at least.
    """
    listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    source = f"read_parquet([{listing}])"
    # the columns a consumer gets: not the platform's stored pseudonym columns
    query = (f"SELECT {MASKED_COLUMNS} FROM {source} WHERE ms_played >= 0" if masked else
             f"SELECT COLUMNS(lambda c: NOT starts_with(c, '_pseudonym_')) FROM {source}")

    def run() -> Sample:
        with stopwatch() as t:
            con = duckdb.connect()
            count = 0
            for batch in con.sql(query).to_arrow_reader(BATCH_ROWS):
                count += batch.num_rows
            con.close()
        if count != rows:
            raise RuntimeError(f"plain DuckDB read {count:,} rows, not {rows:,}")
        return Sample(t[0], {"rows": count})

    return run


def served_read(name: str, read: Callable[[], Received], server: ServerProcess,
                rows: int, masked: bool = True) -> Run:
    """A full read through the server, with its RSS sampled and CPU times taken."""

    def run() -> Sample:
        with Monitor(server) as usage, stopwatch() as t:
            got = read()
        if got.rows != rows:
            raise RuntimeError(f"{name} read {got.rows:,} rows, not {rows:,}")
        check_masked(got.first, name, masked)
        return Sample(t[0], {"rows": got.rows, "bytes": got.wire_bytes, **usage.details()})

    return run


def python_json(table: pa.Table) -> Run:
    """Baseline: the same rows as NDJSON built in Python (``to_pylist`` + ``json.dumps``)."""

    def run() -> Sample:
        size = count = 0
        with stopwatch() as t:
            for batch in table.to_batches(BATCH_ROWS):
                rows = batch.to_pylist()
                body = "".join(json.dumps(r, default=str) + "\n" for r in rows).encode()
                size += len(body)
                count += len(rows)
        return Sample(t[0], {"rows": count, "bytes": size})

    return run


def full_reads(product: Product, server: ServerProcess, settings: Settings
               ) -> dict[str, list[Sample]]:
    rows = product.rows
    http = http_client(server, product.token)
    clear = http_client(server, product.clear_token)
    try:
        runs: dict[str, Run] = {
            "flight": served_read(
                "flight", lambda: flight_read(server, product.token, FULL_SQL), server, rows),
            "http_arrow": served_read(
                "http arrow", lambda: http_arrow(http, FULL_SQL), server, rows),
            "http_ndjson": served_read(
                "http ndjson", lambda: http_ndjson(http, FULL_SQL), server, rows),
            "duckdb": plain_duckdb(product.files, rows),
            "duckdb_masked": plain_duckdb(product.files, rows, masked=True),
            "flight_clear": served_read(
                "flight, clear reader",
                lambda: flight_read(server, product.clear_token, FULL_SQL), server, rows,
                masked=False),
            "http_arrow_clear": served_read(
                "http arrow, clear reader", lambda: http_arrow(clear, FULL_SQL), server, rows,
                masked=False),
        }
        runs["duckdb"]()  # page cache warm for everyone
        samples = interleave(runs, settings.repeats)
    finally:
        http.close()
        clear.close()
    for name, values in samples.items():
        settings.log(f"{name}: median {median(values):.2f}s "
                     f"({rate(rows, median(values))})")
    return samples


def cpu_split(samples: list[Sample]) -> str:
    """Median CPU seconds of one read in the server and in the client (they share the cores)."""
    server = statistics.median(s.details["server_cpu_s"] for s in samples)
    client = statistics.median(s.details["client_cpu_s"] for s in samples)
    return f"CPU per read: server {server:.2f}s, client {client:.2f}s"


def json_baseline(product: Product, settings: Settings) -> tuple[list[Sample], int]:
    """Python JSON over a sample of the (masked) rows; its rate is compared, not its time."""
    sample_rows = min(product.rows, 200_000)
    ctx = MeshContext(product.mesh)
    try:
        principal = ctx.sidecar.authenticate(product.token)
        table = ctx.sidecar.query(principal, f"{FULL_SQL} LIMIT {sample_rows}").read_all()
    finally:
        ctx.close()
    check_masked(table.slice(0, 1).to_pylist()[0], "python json sample")
    samples = interleave({"json": python_json(table)}, settings.repeats)["json"]
    settings.log(f"python json: {rate(sample_rows, median(samples))} over {sample_rows:,} rows")
    return samples, sample_rows


def throughput_rows(product: Product, samples: dict[str, list[Sample]],
                    json_samples: list[Sample], json_rows: int) -> list[Row]:
    rows = product.rows
    base = median(samples["duckdb"])
    label = scale(rows)
    out = []
    for name, title, floor in (("flight", "Arrow Flight", FLIGHT_TARGET),
                               ("http_arrow", "HTTP Arrow IPC", ARROW_TARGET)):
        seconds = median(samples[name])
        ratio = base / seconds
        out.append(Row(
            f"serving {title} read {label} rows", seconds, base, ratio, f">= {floor}",
            at_least(ratio, floor),
            note=f"{rate(rows, seconds)} vs plain DuckDB {rate(rows, base)}; "
            + cpu_split(samples[name]),
            details={"quanta": spread(samples[name]), "baseline": spread(samples["duckdb"]),
                     "runs": [s.details for s in samples[name]]},
        ))
    seconds = median(samples["duckdb_masked"])
    out.append(Row(
        f"serving plain DuckDB read {label} rows as the masked reader sees them", seconds, base,
        base / seconds, "-", "INFO",
        note=f"{rate(rows, seconds)}; in process, no server: the most a masked read can reach "
        "(32-hex pseudonyms are longer than the ids the baseline reads)",
        details={"quanta": spread(samples["duckdb_masked"]), "baseline": spread(samples["duckdb"])},
    ))
    for name, title in (("flight_clear", "Arrow Flight"), ("http_arrow_clear", "HTTP Arrow IPC")):
        seconds = median(samples[name])
        masked = median(samples[name.removesuffix("_clear")])
        out.append(Row(
            f"serving {title} read {label} rows, unmasked reader", seconds, base, base / seconds,
            "-", "INFO",
            note=f"{rate(rows, seconds)}; group privacy: no mask, no filter (masked: "
            f"{masked:.2f}s); " + cpu_split(samples[name]),
            details={"quanta": spread(samples[name]), "baseline": spread(samples["duckdb"]),
                     "runs": [s.details for s in samples[name]]},
        ))
    seconds = median(samples["http_ndjson"])
    per_second = rows / seconds
    out.append(Row(
        f"serving HTTP NDJSON read {label} rows", seconds, None, None,
        f">= {NDJSON_RATE / 1e6:g}M rows/s", "PASS" if per_second >= NDJSON_RATE else "MISS",
        note=f"{rate(rows, seconds)}; plain DuckDB to Arrow {rate(rows, base)}; "
        + cpu_split(samples["http_ndjson"]),
        details={"quanta": spread(samples["http_ndjson"]),
                 "runs": [s.details for s in samples["http_ndjson"]]},
    ))
    json_rate = json_rows / median(json_samples)
    json_seconds = rows / json_rate  # extrapolated to the whole port
    ratio = json_seconds / seconds
    out.append(Row(
        "serving HTTP NDJSON vs Python json.dumps", seconds, json_seconds, ratio,
        f">= {NDJSON_VS_PYTHON:g}", at_least(ratio, NDJSON_VS_PYTHON),
        note=f"{rate(rows, seconds)} vs {rate(json_rate, 1)} (Python, {json_rows:,}-row "
        "sample, extrapolated)",
        details={"python_json": spread(json_samples), "python_json_rows": json_rows,
                 "python_json_rows_per_s": round(json_rate)},
    ))
    return out


def memory_rows(product: Product, samples: dict[str, list[Sample]], idle: int) -> list[Row]:
    out = []
    for name, title in (("http_ndjson", "NDJSON"), ("http_arrow", "Arrow IPC")):
        growth = max(s.details["rss_growth_mb"] for s in samples[name])
        peak = max(s.details["rss_peak_mb"] for s in samples[name])
        seconds = median(samples[name])
        out.append(Row(
            f"serving server RSS growth, {title} stream of {scale(product.rows)} rows",
            seconds, None, None, f"< {RSS_MB} MB", "PASS" if growth < RSS_MB else "MISS",
            note=f"+{growth:.1f} MB during the stream (worst of {len(samples[name])}); "
            f"peak {peak:.0f} MB, idle {idle / 2**20:.0f} MB before the first stream",
            details={"growth_mb": [s.details["rss_growth_mb"] for s in samples[name]],
                     "peak_mb": peak, "idle_mb": round(idle / 2**20, 1)},
        ))
    return out


# --- 2. small queries ------------------------------------------------------------------------


def point_sql(number: int) -> str:
    return f"SELECT * FROM bench.plays WHERE play_id = '{play_id(number)}'"


def small_http(product: Product, server: ServerProcess, settings: Settings,
               count: int) -> tuple[list[float], Usage]:
    """``count`` sequential one-row queries over one keep-alive connection (after warm-up)."""
    rng = random.Random(11)
    latencies: list[float] = []
    with http_client(server, product.token) as http:
        def one(number: int) -> float:
            start = time.perf_counter()
            response = http.post(QUERY_PATH, json={"sql": point_sql(number)},
                                 headers={"Accept": NDJSON})
            elapsed = time.perf_counter() - start
            if response.status_code != 200 or response.content.count(b"\n") != 1:
                raise RuntimeError(f"point query: HTTP {response.status_code} "
                                   f"{response.text[:200]}")
            return elapsed

        for _ in range(WARMUP):
            one(rng.randint(1, product.rows))
        with Monitor(server) as usage:
            latencies = [one(rng.randint(1, product.rows)) for _ in range(count)]
    settings.log(f"small queries over HTTP: p50 {percentile(latencies, 0.5) * 1e3:.1f} ms, "
                 f"p99 {percentile(latencies, 0.99) * 1e3:.1f} ms")
    return latencies, usage


def sidecar_overhead(product: Product, settings: Settings, count: int) -> Row:
    """The sidecar's own cost per one-row query, in this process (see serving_overhead)."""
    rng = random.Random(5)
    queries = [point_sql(rng.randint(1, product.rows)) for _ in range(count)]
    result = measure(product.mesh, product.token, PORT, product.files, queries)
    stages = result.stages_p50
    top = sorted(((v, k) for k, v in stages.items()
                  if k not in ("engine", "total", "overhead")), reverse=True)[:5]
    settings.log(f"sidecar overhead p50 {result.overhead_p50:.2f} ms (sidecar "
                 f"{result.sidecar_p50:.2f} ms, engine in it {result.engine_in_sidecar_p50:.2f} "
                 f"ms, plain DuckDB {result.plain_p50:.2f} ms); stages {stages}")
    return Row(
        "serving sidecar overhead per query (p50)", result.sidecar_p50 / 1e3,
        result.plain_p50 / 1e3, None, f"< {OVERHEAD_MS:g} ms",
        at_most(result.overhead_p50, OVERHEAD_MS),
        note=f"{result.overhead_p50:.2f} ms (paired vs plain DuckDB "
        f"{result.paired_difference_p50:.2f} ms); " + ", ".join(f"{k} {v:.2f}" for v, k in top),
        details=asdict(result),
    )


def latency_rows(latencies: list[float], usage: Usage, overhead: Row) -> list[Row]:
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    sidecar_ms = overhead.details["sidecar_p50"]
    details = {"requests": len(latencies), "p50_ms": round(p50 * 1e3, 3),
               "p90_ms": round(percentile(latencies, 0.9) * 1e3, 3),
               "p99_ms": round(p99 * 1e3, 3), "max_ms": round(max(latencies) * 1e3, 3),
               "server_cpu_ms_per_request": round(usage.server_cpu_s / len(latencies) * 1e3, 3),
               "client_cpu_ms_per_request": round(usage.client_cpu_s / len(latencies) * 1e3, 3)}
    note = (f"{len(latencies)} sequential requests; in-process sidecar p50 {sidecar_ms:.2f} ms, "
            f"server CPU {details['server_cpu_ms_per_request']:.2f} ms/request")
    return [
        Row("serving small query over HTTP (p50)", p50, None, None, f"< {P50_MS:g} ms",
            at_most(p50 * 1e3, P50_MS), note=f"{p50 * 1e3:.2f} ms; {note}", details=details),
        Row("serving small query over HTTP (p99)", p99, None, None, f"< {P99_MS:g} ms",
            at_most(p99 * 1e3, P99_MS), note=f"{p99 * 1e3:.2f} ms", details=details),
    ]


# --- 3. load -------------------------------------------------------------------------------


@dataclass
class Outcome:
    latencies: list[float] = field(default_factory=list)
    kinds: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def mixed_query(rng: random.Random, rows: int) -> tuple[str, str, str, Callable[[bytes], bool]]:
    """One small query of four kinds: kind, SQL, Accept, and a check of the body."""
    kind = rng.randrange(4)
    number = rng.randint(1, rows)
    if kind == 0:
        return "point_ndjson", point_sql(number), NDJSON, lambda b: b.count(b"\n") == 1
    if kind == 1:
        return "point_arrow", point_sql(number), ARROW, \
            lambda b: pa.ipc.open_stream(b).read_all().num_rows == 1
    if kind == 2:
        last = min(rows, number + 99)
        sql = (f"SELECT play_id, country, ms_played FROM bench.plays WHERE play_id BETWEEN "
               f"'{play_id(number)}' AND '{play_id(last)}' ORDER BY play_id")
        return "range_csv", sql, CSV, lambda b: b.count(b"\n") == last - number + 2
    last = min(rows, number + 999)
    sql = (f"SELECT country, count(*) AS plays, sum(ms_played) AS ms FROM bench.plays WHERE "
           f"play_id BETWEEN '{play_id(number)}' AND '{play_id(last)}' GROUP BY country")
    return "aggregate_ndjson", sql, NDJSON, lambda b: sum(
        json.loads(line)["plays"] for line in b.splitlines()) == last - number + 1


def load(product: Product, server: ServerProcess, settings: Settings, seconds: float) -> Row:
    outcomes = [Outcome() for _ in range(CLIENTS)]
    start = threading.Barrier(CLIENTS + 1)
    stop_at: list[float] = []

    def client(index: int) -> None:
        outcome = outcomes[index]
        rng = random.Random(100 + index)
        with http_client(server, product.token) as http:
            start.wait(timeout=120)
            while time.perf_counter() < stop_at[0]:
                kind, sql, accept, check = mixed_query(rng, product.rows)
                began = time.perf_counter()
                try:
                    response = http.post(QUERY_PATH, json={"sql": sql},
                                         headers={"Accept": accept})
                    ok = response.status_code == 200 and check(response.content)
                    if not ok:
                        outcome.errors.append(f"{kind}: HTTP {response.status_code} "
                                              f"{response.text[:160]}")
                except Exception as exc:  # any failure of a request counts as an error
                    outcome.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
                outcome.latencies.append(time.perf_counter() - began)
                outcome.kinds[kind] = outcome.kinds.get(kind, 0) + 1

    threads = [threading.Thread(target=client, args=(i,), name=f"load-{i}", daemon=True)
               for i in range(CLIENTS)]
    for thread in threads:
        thread.start()
    with Monitor(server, interval=0.05) as usage:
        stop_at.append(time.perf_counter() + seconds)
        start.wait(timeout=120)
        began = time.perf_counter()
        for thread in threads:
            thread.join(seconds + 120)
        elapsed = time.perf_counter() - began
    if any(t.is_alive() for t in threads):
        raise RuntimeError("load clients did not finish in time")
    latencies = [x for o in outcomes for x in o.latencies]
    errors = [e for o in outcomes for e in o.errors]
    kinds: dict[str, int] = {}
    for outcome in outcomes:
        for kind, number in outcome.kinds.items():
            kinds[kind] = kinds.get(kind, 0) + number
    per_second = len(latencies) / elapsed
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    settings.log(f"load: {len(latencies):,} requests in {elapsed:.1f}s ({per_second:.0f}/s), "
                 f"p50 {p50 * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms, {len(errors)} errors")
    return Row(
        f"serving load, {CLIENTS} clients x {seconds:g}s mixed small queries", p50, None, None,
        "0 errors", "PASS" if not errors and latencies else "MISS",
        note=f"{per_second:.0f} req/s, p50 {p50 * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms, "
        f"{len(errors)} errors of {len(latencies):,}",
        details={"requests": len(latencies), "seconds": round(elapsed, 2),
                 "requests_per_s": round(per_second, 1), "p50_ms": round(p50 * 1e3, 3),
                 "p99_ms": round(p99 * 1e3, 3), "max_ms": round(max(latencies) * 1e3, 3),
                 "kinds": kinds, "errors": len(errors), "first_errors": errors[:5],
                 **usage.details()},
    )


# --- the workload ----------------------------------------------------------------------------


@dataclass
class AuditState:
    """The audit log after the run: records, the newest sequence number, and the head's."""

    records: int
    last_seq: int
    head_seq: int | None


def audit_state(mesh: Path) -> AuditState:
    ctx = MeshContext(mesh)
    try:
        folder = ctx.mesh.storage_root / "audit"
    finally:
        ctx.close()
    file, head = folder / "audit.ndjson", folder / "head.json"
    if not file.exists():
        return AuditState(0, 0, None)
    records, last = 0, b""
    with open(file, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            records += chunk.count(b"\n")
            last = (last + chunk)[-65536:]
    last_seq = int(json.loads(last.rstrip(b"\n").rsplit(b"\n", 1)[-1])["seq"]) if records else 0
    head_seq = int(json.loads(head.read_text())["seq"]) if head.exists() else None
    return AuditState(records, last_seq, head_seq)


def audit_row(before: AuditState, after: AuditState, served: int,
              server: ServerProcess) -> Row:
    """Every served request left an audit record; say whether head.json caught up."""
    logged = after.records - before.records
    if logged < served:
        raise RuntimeError(f"audit log has {logged:,} new records for {served:,} requests")
    log = server.log_tail(100_000).splitlines()
    failures = [line for line in log if line.startswith("Traceback")]
    last_error = next((line for line in reversed(log) if "Error" in line), "")
    note = (f"{logged:,} records for {served:,} requests (+1 in-process); head.json at seq "
            f"{after.head_seq} of {after.last_seq}; server exit code {server.exit_code}")
    if failures:
        note += f"; server log: {len(failures)} traceback(s), last: {last_error[:80]}"
    return Row("serving audit log after the run", None, None, None, "-", "INFO", note=note,
               details={"records": logged, "served_requests": served,
                        "last_seq": after.last_seq, "head_seq": after.head_seq,
                        "server_exit_code": server.exit_code,
                        "server_tracebacks": len(failures), "server_last_error": last_error})


def run(settings: Settings) -> list[Row]:
    rows = ROWS or (QUICK_ROWS if settings.quick else FULL_ROWS)
    small = 200 if settings.quick else 500
    seconds = 10.0 if settings.quick else 60.0
    with tempfile.TemporaryDirectory(prefix="quanta-bench-serving-") as tmp:
        product = build_product(Path(tmp), rows, settings)
        overhead = sidecar_overhead(product, settings, small)
        before = audit_state(product.mesh)
        server = ServerProcess(product.mesh, Path(tmp) / "server.log")
        with server:
            settings.log(f"server pid {server.pid}: {server.http}, {server.flight}")
            latencies, usage = small_http(product, server, settings, small)
            idle = server.rss_bytes()
            samples = full_reads(product, server, settings)
            json_samples, json_rows = json_baseline(product, settings)
            loaded = load(product, server, settings, seconds)
        served = (WARMUP + small + len(SERVED_READS) * settings.repeats
                  + loaded.details["requests"])
        audited = audit_row(before, audit_state(product.mesh), served, server)
        settings.log(audited.note)
    result = [
        *throughput_rows(product, samples, json_samples, json_rows),
        *latency_rows(latencies, usage, overhead),
        overhead,
        *memory_rows(product, samples, idle),
        loaded,
        audited,
    ]
    for row in result:
        row.details.setdefault("rows", rows)
        row.details.setdefault("build_s", round(product.build_s, 3))
    return result
