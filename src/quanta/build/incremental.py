"""Incremental builds: read only an input's new rows, and add their output to the last release.

A product declaring ``incremental: {strategy, input, watermark}`` is built in one of two ways:

- **full**: every row of every input, as any product (the first build, ``--full``, or when
  something the kept rows were made from changed: the interface, the major version, the
  transform or inputs, the masked columns or their key);
- **incremental**: the input is read from its watermark on (rows whose watermark column is
  above the highest value the last release read), the transform runs on those rows only, and
  their output is added to the previous release's data files, which are kept as they are.
  ``merge`` also replaces rows of the previous release whose primary key reappears: only the
  data files that hold such a key (file statistics first, then a look at their key column)
  are rewritten. Rows older than the retention are dropped from kept files the same way.

Either way the release records the watermark, so a full rebuild and a run of incremental
builds over the same source rows release the same rows (``_recorded_at`` aside).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow.parquet as pq

from quanta.build import stability
from quanta.build.schema import RECORDED_AT, arrow_schema
from quanta.engine.duckdb import DuckDBSession, literal, quote
from quanta.errors import QuantaError
from quanta.inputs import connector_for
from quanta.inputs.base import Since
from quanta.quality.incremental import PortParts, value_bounds
from quanta.spec.models import SEMVER, IncrementalSpec, OutputPort, ProductSpec
from quanta.storage import InputRead, ProductStorage, Release, schema_hash
from quanta.storage.keys import key_id, mask_key
from quanta.storage.manifest import Watermark
from quanta.storage.stats import column_bounds, may_overlap

# types whose values order rows the same way in the engine and in the sources
_ORDERED = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL", "VARCHAR", "DATE",
            "TIMESTAMP", "UUID")


class WatermarkError(QuantaError):
    """The watermark column cannot say which rows are new."""

    code = "watermark_invalid"


@dataclass(frozen=True)
class Plan:
    """How one build reads and writes: from every row, or from new rows onto ``previous``."""

    declared: IncrementalSpec | None
    transform: str = ""
    checks: str = ""
    previous: Release | None = None
    since: Since | None = None
    reason: str = ""

    @property
    def incremental(self) -> bool:
        """True when the build adds to ``previous`` instead of replacing it."""
        return self.previous is not None

    @property
    def checks_reusable(self) -> bool:
        """The previous release passed the same checks, so its results hold for its rows."""
        if self.previous is None or self.declared is None:
            return False
        mark = self.previous.watermarks.get(self.declared.input)
        return mark is not None and mark.checks == self.checks

    def since_for(self, input_name: str) -> Since | None:
        """The watermark to read input ``input_name`` from (None: every row)."""
        if self.declared is not None and self.declared.input == input_name:
            return self.since
        return None


def plan(spec: ProductSpec, folder: Path, storage: ProductStorage, storage_root: Path,
         previous: Release | None, full: bool) -> Plan:
    """Decide whether this build of ``spec`` may be incremental, and from which watermark."""
    declared = spec.incremental
    if declared is None:
        return Plan(None)
    source = spec.input(declared.input)
    if source is None or not connector_for(source).reads_since:
        raise QuantaError(
            f"input '{declared.input}' of {spec.key} cannot be read incrementally",
            hint="name a declared input of type file, sqlite, postgres or product in "
            "incremental.input", code="incremental_unsupported")
    transform, checks = transform_digest(spec, folder), checks_digest(spec)

    def whole(reason: str) -> Plan:
        return Plan(declared, transform, checks, reason=f"full build: {reason}")

    if full:
        return whole("asked for (--full)")
    if previous is None:
        return whole("no release yet")
    since = f"since release {previous.release}"
    mark = previous.watermarks.get(declared.input)
    if mark is None:
        return whole(f"release {previous.release} recorded no watermark of '{declared.input}'")
    if (mark.column, mark.strategy) != (declared.watermark, declared.strategy):
        return whole(f"the incremental declaration changed {since}")
    if mark.transform != transform:
        return whole(f"the transform or the inputs changed {since}")
    if mark.value is None:
        return whole(f"release {previous.release} read no rows")
    if _major(previous.interface_version) != _major(spec.version):
        return whole(f"new major version {spec.version}")
    if stability.changes(previous, spec):
        return whole(f"the interface changed {since}")
    for port in spec.outputs:
        problem = _port_problem(spec, port, previous, storage, storage_root)
        if problem:
            return whole(f"port '{port.name}': {problem}")
    try:
        start = Since(mark.column, mark.value, mark.type)
    except ValueError:
        return whole(f"release {previous.release} recorded an unknown watermark type")
    return Plan(declared, transform, checks, previous, start,
                reason=f"incremental: {declared.input}.{mark.column} > {mark.value}")


def _port_problem(spec: ProductSpec, port: OutputPort, previous: Release,
                  storage: ProductStorage, storage_root: Path) -> str | None:
    """Why the previous release's files of ``port`` cannot be kept, if they cannot."""
    written = previous.ports.get(port.name)
    if written is None or written.schema_hash != schema_hash(arrow_schema(port)):
        return "its schema changed"
    hashed = spec.hash_masked(port)
    if set(written.pseudonyms) != set(hashed):
        return "the columns pseudonymized by hash masks changed"
    if hashed and written.key_id != key_id(mask_key(storage_root)):
        return "the mask key changed"
    folder = storage.port_path(port.name)
    for item in written.files:
        try:
            if (folder / item.path).stat().st_size == item.size:
                continue
        except FileNotFoundError:
            pass
        return f"data file {item.path} of release {previous.release} is missing or changed"
    return None


def _major(version: str) -> str:
    match = SEMVER.match(version)
    return match.group(1) if match else version


def transform_digest(spec: ProductSpec, folder: Path) -> str:
    """Digest of what turns input rows into output rows: the transform (its code too), the
    inputs and the incremental declaration. Kept rows were made with it; a change rebuilds."""
    digest = hashlib.sha256()
    parts = [spec.transform, *spec.inputs, spec.incremental]
    for part in parts:
        digest.update(part.model_dump_json().encode() if part else b"-")
        digest.update(b"\0")
    code = spec.transform.file
    if code and (folder / code).is_file():
        digest.update((folder / code).read_bytes())
    return digest.hexdigest()[:16]


def checks_digest(spec: ProductSpec) -> str:
    """Digest of the quality checks: the previous release's results count only under them."""
    checks = [c.model_dump(mode="json") for c in spec.quality]
    return hashlib.sha256(json.dumps(checks, sort_keys=True).encode()).hexdigest()[:16]


def measure(session: DuckDBSession, plan: Plan, inputs: dict[str, InputRead]
            ) -> dict[str, Watermark]:
    """The watermark of the incremental input after this build's read, by input name (none
    for other products); ``inputs`` then shows the rows read and where reading began."""
    declared = plan.declared
    if declared is None:
        return {}
    name, column = declared.input, declared.watermark
    table = quote(name)
    types = dict(session.rows(f"SELECT column_name, column_type FROM (DESCRIBE {table})"))
    if column not in types:
        raise WatermarkError(
            f"input '{name}' has no column '{column}' to take the watermark from",
            hint=f"columns: {', '.join(types) or 'none'}; set incremental.watermark to one "
            "that grows with new rows (an event time or an id)")
    kind = str(types[column])
    if not kind.startswith(_ORDERED):
        raise WatermarkError(
            f"the watermark column '{column}' of input '{name}' has type {kind}, which "
            "cannot tell new rows from old ones",
            hint="use a timestamp, date, number or text column that grows with new rows")
    high, rows, nulls = session.rows(
        f"SELECT CAST(max({quote(column)}) AS VARCHAR), count(*), "
        f"count(*) - count({quote(column)}) FROM {table}")[0]
    if nulls:
        raise WatermarkError(
            f"{nulls} row(s) of input '{name}' have no {column}; incremental builds would "
            "never read them", hint="fill the column in the source, or choose a watermark "
            "column that is always set")
    since = plan.since
    if since is not None and rows and kind != since.type:
        raise WatermarkError(
            f"the watermark column '{column}' of input '{name}' is {kind} now, but was "
            f"{since.type} when release {plan.previous.release if plan.previous else '?'} "
            "read it", hint="rebuild from every row: quanta build --full")
    after = since.value if since else None
    inputs[name] = inputs[name].model_copy(update={"rows": rows, "after": after})
    if high is None and since is not None:  # nothing new: the mark stays where it was
        high, kind = since.value, since.type
    return {name: Watermark(column=column, type=kind, value=high, after=after,
                            strategy=declared.strategy, transform=plan.transform,
                            checks=plan.checks)}


def combine(session: DuckDBSession, storage: ProductStorage, plan: Plan, port: OutputPort,
            table: str, cutoff: datetime | None) -> PortParts:
    """Turn ``table`` (the new rows' output) into what is written: the new rows plus the rows
    of the previous release's files that must be rewritten (merge: their key reappears;
    retention: some rows expired), and make a view of the whole port as it will be released.
    """
    assert plan.previous is not None and plan.declared is not None
    written = plan.previous.ports[port.name]
    folder = storage.port_path(port.name)
    files = {item.path: folder / item.path for item in written.files}
    keys = port.primary_key if plan.declared.strategy == "merge" else []
    columns = ", ".join(quote(c) for c in [*(f.name for f in port.fields), RECORDED_AT])
    affected: set[str] = set()
    new_keys = f"__new_keys_{port.name}"
    if keys:
        session.load_query(new_keys, f"SELECT DISTINCT {_list(keys)} FROM {table}")
        affected |= _files_holding(session, quote(new_keys), keys, files)
    if cutoff is not None and port.event_time:
        affected |= {name for name, path in files.items()
                     if _starts_before(path, port.event_time, cutoff)}
    if affected:
        old = "read_parquet([" + ", ".join(literal(str(files[n])) for n in sorted(affected)) + "])"
        if keys:
            _carry_recorded_at(session, port, table, old)
        kept_rows = []
        if keys:
            match = " AND ".join(f"k.{quote(k)} IS NOT DISTINCT FROM r.{quote(k)}" for k in keys)
            kept_rows.append(f"NOT EXISTS (SELECT 1 FROM {quote(new_keys)} k WHERE {match})")
        if cutoff is not None and port.event_time:
            moment = f"TIMESTAMPTZ {literal(cutoff.astimezone(UTC).isoformat())}"
            event = f"r.{quote(port.event_time)}"
            kept_rows.append(f"({event} IS NULL OR {event} >= {moment})")
        where = f" WHERE {' AND '.join(kept_rows)}" if kept_rows else ""
        session.execute(f"INSERT INTO {table} SELECT {columns} FROM {old} r{where}")
    keep = [item for item in written.files if item.path not in affected]
    kept_files = [files[item.path] for item in keep]
    view = quote(f"__release_{port.name}")
    if kept_files:
        listing = ", ".join(literal(str(f)) for f in kept_files)
        session.execute(f"CREATE TEMP VIEW {view} AS SELECT {columns} FROM read_parquet("
                        f"[{listing}]) UNION ALL SELECT {columns} FROM {table}")
    else:
        session.execute(f"CREATE TEMP VIEW {view} AS SELECT {columns} FROM {table}")
    rows = int(session.scalar(f"SELECT count(*) FROM {table}"))
    rows += sum(pq.ParquetFile(f).metadata.num_rows for f in kept_files)
    return PortParts(keep, kept_files, table, view, rows, clean_keys=bool(keys))


def _list(columns: list[str]) -> str:
    return ", ".join(quote(c) for c in columns)


def _files_holding(session: DuckDBSession, keys_table: str, keys: list[str],
                   files: dict[str, Path]) -> set[str]:
    """Names of ``files`` holding a key of ``keys_table``: those whose key ranges (from
    their statistics) can hold one, then, of those, the ones that really do."""
    bounds = value_bounds(session, keys_table, keys)
    if bounds is None:
        return set()
    candidates = {name: path for name, path in files.items()
                  if may_overlap(column_bounds(path), bounds)}
    if not candidates:
        return set()
    listing = ", ".join(literal(str(p)) for p in candidates.values())
    match = " AND ".join(f"k.{quote(k)} = r.{quote(k)}" for k in keys)
    found = session.rows(
        f"SELECT DISTINCT r.filename FROM read_parquet([{listing}], filename = true) r "
        f"WHERE EXISTS (SELECT 1 FROM {keys_table} k WHERE {match})")
    held = {Path(str(name)).name for (name,) in found}
    nulls = " OR ".join(f"{quote(k)} IS NULL" for k in keys)
    if int(session.scalar(f"SELECT count(*) FROM {keys_table} WHERE {nulls}")):
        # null keys match with IS NOT DISTINCT FROM, which statistics cannot rule out
        held |= set(candidates)
    return held


def _starts_before(path: Path, column: str, cutoff: datetime) -> bool:
    """True unless the file's statistics prove every ``column`` value is at or after
    ``cutoff`` (a date counts as its first instant, as retention does)."""
    metadata = pq.ParquetFile(path).metadata
    for group in range(metadata.num_row_groups):
        row_group = metadata.row_group(group)
        if row_group.num_rows == 0:
            continue
        for index in range(row_group.num_columns):
            chunk = row_group.column(index)
            if chunk.path_in_schema != column:
                continue
            stats = chunk.statistics
            if stats is None or not stats.has_min_max:
                return True
            low = stats.min
            if isinstance(low, date) and not isinstance(low, datetime):
                low = datetime(low.year, low.month, low.day, tzinfo=UTC)
            if not isinstance(low, datetime) or low.tzinfo is None or low < cutoff:
                return True
    return False


def _carry_recorded_at(session: DuckDBSession, port: OutputPort, table: str, old: str) -> None:
    """A merged row identical to the one it replaces keeps that row's ``_recorded_at`` (the
    rule of full builds: only new or changed rows get this release's time)."""
    names = [quote(f.name) for f in port.fields]
    keys = [quote(k) for k in port.primary_key]
    match = " AND ".join(f"n.{k} IS NOT DISTINCT FROM p.{k}" for k in keys)
    recorded = quote(RECORDED_AT)
    session.execute(
        f"UPDATE {table} AS n SET {recorded} = p.{recorded} FROM (SELECT {', '.join(keys)}, "
        f"hash({', '.join(names)}) AS __row, min({recorded}) AS {recorded} FROM {old} "
        f"GROUP BY ALL) p WHERE {match} "
        f"AND p.__row = hash({', '.join('n.' + name for name in names)})")
