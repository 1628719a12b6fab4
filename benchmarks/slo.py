"""SLO evaluation: every product's SLOs over 30 days of synthetic history, mesh-wide.

A made-up mesh of 1,000 products (200 with ``--quick``), each promising all six SLOs
(freshness, interval of change, timeliness, completeness, check pass rate, availability),
with 30 days (and a few before the window) of releases: one every 1 to 12 hours with jitter,
an outage now and then, late events, releases with a failed check or missing values; and
500,000 reads (100,000 quick) spread Zipf-like over the products, a few failing on the
platform's side and a few by the reader's own mistake. About 180 releases per product.

- **quanta**: ``quanta.observe.slo.evaluate`` (what ``quanta slo`` runs per product) over
  the facts held in memory (``History`` and ``AccessLog``, as ``slo_report`` builds them from
  storage), for every product: measured value, attainment, error budget and the breaches
  with their causes.
- **baseline**: the same attainment figures from a DuckDB SQL query (window functions and a
  GROUP BY per SLO) over the same facts as Arrow tables: no causes, no objects, the plain
  columnar way. Both must agree on every product's attainment of every SLO.
- **target**: mesh-wide evaluation under 1 s (``quanta slo`` on a mesh of this size answers
  in about a second once its facts are read). The ratio is baseline s / quanta s.

An INFO row times reading the facts of the reads: ``read_access_log`` on an audit file of
the same reads against DuckDB's ``read_json`` of the same file.
"""

from __future__ import annotations

import json
import random
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from benchmarks.common import Row, Settings, at_most, interleave, median, spread, timed
from quanta.observe.access import AccessLog, Read, read_access_log
from quanta.observe.history import History, ReleaseFacts
from quanta.observe.slo import DEFAULT_OBJECTIVE, ProductSlos, evaluate
from quanta.spec.durations import parse_duration
from quanta.spec.loader import SpecDocument
from quanta.spec.mesh import Product
from quanta.spec.models import ProductSpec
from quanta.storage import CheckResult

PRODUCTS, QUICK_PRODUCTS = 1_000, 200
READS, QUICK_READS = 500_000, 100_000
WINDOW = timedelta(days=30)
TARGET_S = 1.0
SLO_NAMES = ("freshness", "interval_of_change", "timeliness", "completeness",
             "check_pass_rate", "availability")
CALLER_ERROR = "query failed: Binder Error: column x not found"
PLATFORM_ERROR = "query failed: IO Error: could not read file"


@dataclass
class Facts:
    """The synthetic mesh: products with their declared SLOs, histories and reads."""

    now: datetime
    products: list[Product]
    histories: dict[str, History]
    access: AccessLog


def _spec(domain: str, name: str, slos: dict[str, Any]) -> Product:
    tree = {
        "apiVersion": "quanta/v1", "name": name, "domain": domain, "kind": "source-aligned",
        "version": "1.0.0", "owner": {"team": domain}, "description": "A synthetic product.",
        "inputs": [{"name": "raw", "type": "file", "path": "raw.csv"}],
        "transform": {"type": "sql", "file": "transform.sql"},
        "outputs": [{"name": "rows", "event_time": "at", "primary_key": ["id"], "fields": [
            {"name": "id", "type": "string", "description": "Id"},
            {"name": "at", "type": "timestamp", "description": "When"}]}],
        "slos": slos,
    }
    return Product(ProductSpec.model_validate(tree), SpecDocument(Path("dataproduct.yaml"),
                                                                  tree))


def synthetic_facts(products: int, reads: int, seed: int = 13) -> Facts:
    """Products promising every SLO, their releases and reads (the same for the same seed)."""
    rng = random.Random(seed)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    start = now - WINDOW - timedelta(days=2)
    found = Facts(now, [], {}, AccessLog())
    failed = CheckResult(name="not_null_id", check="not_null", port="rows", severity="warn",
                         passed=False, failing_rows=12, total_rows=1_000,
                         dimension="completeness")
    for number in range(products):
        period = rng.choice((1, 2, 3, 4, 6, 8, 12))
        slos = {"freshness": f"{period * 2}h", "interval_of_change": f"{period * 2}h",
                "timeliness": rng.choice(("30m", "1h", "2h")), "completeness": 0.99,
                "check_pass_rate": 0.9, "availability": rng.choice((0.99, 0.995, 0.999))}
        product = _spec(f"domain{number % 40}", f"product{number}", slos)
        found.products.append(product)
        history = History(product.key)
        moment, release = start, 0
        while moment < now:
            release += 1
            bad = rng.random() < 0.004
            metrics = {"completeness": 0.988 if bad else 1.0,
                       "check_pass_rate": 2 / 3 if bad else 1.0}
            late = rng.random() < 0.004
            lag = timedelta(minutes=rng.choice((150, 200)) if late else rng.randint(2, 28))
            history.releases.append(ReleaseFacts(
                release, moment, {"rows": 1_000 * release}, metrics,
                (failed,) if bad else (), moment - lag))
            gap = period * rng.uniform(0.7, 1.3) * (4 if rng.random() < 0.003 else 1)
            moment += timedelta(hours=gap)
        found.histories[product.key] = history
    keys = [p.key for p in found.products]
    weights = [1 / (rank + 1) ** 0.8 for rank in range(len(keys))]
    chosen = rng.choices(keys, weights=weights, k=reads)
    seconds = WINDOW.total_seconds()
    moments = sorted(now - timedelta(seconds=rng.random() * seconds) for _ in range(reads))
    for moment, key in zip(moments, chosen, strict=True):
        roll = rng.random()
        outcome, message = (("error", PLATFORM_ERROR) if roll < 0.002 else
                            ("error", CALLER_ERROR) if roll < 0.01 else ("ok", None))
        found.access.reads.append(Read(
            time=moment, principal=f"reader{rng.randrange(500)}", mode="http",
            outcome=outcome, snapshot={key: 1}, rows=100,
            error_code="query_failed" if message else None, error_message=message))
    return found


def evaluate_all(facts: Facts) -> dict[str, ProductSlos]:
    """What ``quanta slo`` computes once the facts are read: every product's SLOs (the
    reads grouped by product anew each time, as a fresh report does)."""
    since = facts.now - WINDOW
    access = AccessLog(facts.access.reads)
    return {p.key: evaluate(p, facts.histories[p.key], access, since=since, now=facts.now,
                            objective=DEFAULT_OBJECTIVE)
            for p in facts.products}


def tables(facts: Facts) -> dict[str, pa.Table]:
    """The same facts as plain columns (epoch seconds) for the baseline."""
    slos: dict[str, list[Any]] = {"product": [], **{name: [] for name in SLO_NAMES}}
    releases: dict[str, list[Any]] = {"product": [], "committed": [], "completeness": [],
                                      "check_pass_rate": [], "newest_event": []}
    for product in facts.products:
        declared = product.spec.slos
        slos["product"].append(product.key)
        for name in SLO_NAMES:
            value = getattr(declared, name)
            if name in ("freshness", "interval_of_change", "timeliness"):
                value = parse_duration(value).total_seconds()
            slos[name].append(float(value))
        for release in facts.histories[product.key].releases:
            releases["product"].append(product.key)
            releases["committed"].append(release.committed_at.timestamp())
            releases["completeness"].append(release.metrics.get("completeness"))
            releases["check_pass_rate"].append(release.metrics.get("check_pass_rate"))
            releases["newest_event"].append(release.newest_event.timestamp()
                                            if release.newest_event else None)
    reads: dict[str, list[Any]] = {"product": [], "read_at": [], "good": [], "counted": []}
    for read in facts.access.reads:
        caller = (read.error_message or "").removeprefix("query failed: ").startswith(
            ("Binder Error", "Parser Error", "Catalog Error", "Conversion Error"))
        for key in read.snapshot:
            reads["product"].append(key)
            reads["read_at"].append(read.time.timestamp())
            reads["good"].append(read.outcome == "ok")
            reads["counted"].append(read.outcome == "ok" or (read.outcome == "error"
                                                              and not caller))
    return {"slos": pa.table(slos), "releases": pa.table(releases), "reads": pa.table(reads)}


BASELINE_SQL = """
WITH r AS (
  SELECT r.*, s.freshness, s.interval_of_change, s.timeliness, s.completeness AS c_min,
         s.check_pass_rate AS p_min,
         lead(committed) OVER (PARTITION BY r.product ORDER BY committed) AS nxt,
         greatest($since, min(committed) OVER (PARTITION BY r.product)) AS start
  FROM releases r JOIN slos s USING (product)),
served AS (SELECT * FROM r WHERE nxt IS NULL OR nxt > $since),
fresh AS (
  SELECT product, any_value($now - start) AS total,
         sum(greatest(coalesce(nxt, $now) - greatest(committed + freshness, start), 0))
           AS stale
  FROM r GROUP BY product),
intervals AS (
  SELECT product,
         count(*) FILTER (WHERE nxt > $since)
           + count(*) FILTER (WHERE nxt IS NULL AND $now - committed > interval_of_change)
           AS total,
         count(*) FILTER (WHERE nxt > $since AND nxt - committed <= interval_of_change)
           AS good
  FROM r GROUP BY product),
quality AS (
  SELECT product,
         count(newest_event) AS t_total,
         count(*) FILTER (WHERE committed - newest_event <= timeliness) AS t_good,
         count(completeness) AS c_total,
         count(*) FILTER (WHERE completeness + 1e-9 >= c_min) AS c_good,
         count(check_pass_rate) AS p_total,
         count(*) FILTER (WHERE check_pass_rate + 1e-9 >= p_min) AS p_good
  FROM served GROUP BY product),
available AS (
  SELECT product, count(*) FILTER (WHERE counted) AS total,
         count(*) FILTER (WHERE good) AS good
  FROM reads WHERE read_at >= $since GROUP BY product)
SELECT s.product,
       (f.total - f.stale) / f.total AS freshness,
       i.good / nullif(i.total, 0) AS interval_of_change,
       q.t_good / nullif(q.t_total, 0) AS timeliness,
       q.c_good / nullif(q.c_total, 0) AS completeness,
       q.p_good / nullif(q.p_total, 0) AS check_pass_rate,
       a.good / nullif(a.total, 0) AS availability
FROM slos s JOIN fresh f USING (product) JOIN intervals i USING (product)
     JOIN quality q USING (product) LEFT JOIN available a USING (product)
"""


def baseline(con: duckdb.DuckDBPyConnection, facts: Facts) -> dict[str, dict[str, float]]:
    """Every product's attainment of every SLO, in SQL."""
    since, now = (facts.now - WINDOW).timestamp(), facts.now.timestamp()
    rows = con.execute(BASELINE_SQL, {"since": since, "now": now}).fetchall()
    return {row[0]: dict(zip(SLO_NAMES, row[1:], strict=True)) for row in rows}


def agree(ours: dict[str, ProductSlos], theirs: dict[str, dict[str, float]]) -> int:
    """How many attainments both computed; raises when one differs."""
    compared = 0
    for key, product in ours.items():
        for result in product.slos:
            other = theirs[key][result.slo]
            if result.attainment is None:
                if other is not None:
                    raise RuntimeError(f"{key} {result.slo}: quanta measured nothing, the "
                                       f"baseline {other}")
                continue
            if other is None or abs(min(max(other, 0.0), 1.0) - result.attainment) > 1e-4:
                raise RuntimeError(f"{key} {result.slo}: quanta {result.attainment}, "
                                   f"baseline {other}")
            compared += 1
    return compared


def audit_file(facts: Facts, folder: Path) -> Path:
    """The reads as the sidecar's audit log would hold them."""
    file = folder / "audit" / "audit.ndjson"
    file.parent.mkdir(parents=True)
    with open(file, "w", encoding="utf-8") as handle:
        for number, read in enumerate(facts.access.reads, start=1):
            record: dict[str, Any] = {"time": read.time.isoformat(), "principal": read.principal,
                      "mode": read.mode, "outcome": read.outcome, "snapshot": read.snapshot,
                      "products": sorted(read.snapshot), "rows": read.rows, "seq": number,
                      "query_sha256": "0" * 64, "hash": "0" * 64, "prev": "0" * 64}
            if read.error_code:
                record["error"] = {"code": read.error_code, "message": read.error_message}
            handle.write(json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n")
    return file


def run(settings: Settings) -> list[Row]:
    products = QUICK_PRODUCTS if settings.quick else PRODUCTS
    reads = QUICK_READS if settings.quick else READS
    started = time.perf_counter()
    facts = synthetic_facts(products, reads)
    releases = sum(len(h.releases) for h in facts.histories.values())
    data = tables(facts)
    con = duckdb.connect()
    for name, table in data.items():
        con.register(name, table)
    settings.log(f"{products:,} products, {releases:,} releases, {reads:,} reads over "
                 f"{WINDOW.days} days; made in {time.perf_counter() - started:.1f}s")
    compared = agree(evaluate_all(facts), baseline(con, facts))
    repeats = max(settings.repeats, 5)
    samples = interleave({"quanta": lambda: timed(lambda: evaluate_all(facts)),
                          "duckdb": lambda: timed(lambda: baseline(con, facts))},
                         repeats, warmup=True)
    ours, theirs = median(samples["quanta"]), median(samples["duckdb"])
    statuses = [s.status for p in evaluate_all(facts).values() for s in p.slos]
    breached = sum(s == "breached" for s in statuses)
    settings.log(f"evaluation: quanta {ours * 1e3:.0f} ms, duckdb {theirs * 1e3:.0f} ms; "
                 f"{compared:,} attainments agree; {breached:,} of {len(statuses):,} SLOs "
                 "breached")
    rows = [Row(
        f"slo: evaluate 6 SLOs x {products:,} products, 30 days", ours, theirs,
        theirs / ours if ours else None, f"< {TARGET_S:g} s", at_most(ours, TARGET_S),
        f"{releases:,} releases, {reads:,} reads; {compared:,} attainments equal to the SQL "
        f"baseline's; {breached:,} SLOs breached (with causes); ratio = duckdb / quanta",
        details={"quanta": spread(samples["quanta"]), "duckdb": spread(samples["duckdb"]),
                 "products": products, "releases": releases, "reads": reads,
                 "per_product_ms": ours / products * 1e3})]

    with tempfile.TemporaryDirectory(prefix="quanta-bench-slo-") as folder:
        file = audit_file(facts, Path(folder))
        parse = interleave({
            "quanta": lambda: timed(lambda: read_access_log(Path(folder))),
            "duckdb": lambda: timed(lambda: con.execute(
                "SELECT count(*) FROM read_json(?, format='newline_delimited')",
                [str(file)]).fetchall()),
        }, max(2, settings.repeats // 2))
        mine, other = median(parse["quanta"]), median(parse["duckdb"])
        settings.log(f"access log of {reads:,} records ({file.stat().st_size / 1e6:.0f} MB): "
                     f"quanta {mine:.2f}s, duckdb read_json {other:.2f}s")
        rows.append(Row(
            f"slo: read an audit log of {reads:,} reads", mine, other,
            other / mine if mine else None, "-", "INFO",
            f"read_access_log (Python json per line) vs DuckDB read_json; the mesh-wide "
            f"report pays it once, {mine / reads * 1e6:.1f} us per record",
            details={"quanta": spread(parse["quanta"]), "duckdb": spread(parse["duckdb"]),
                     "bytes": file.stat().st_size}))
    con.close()
    return rows
