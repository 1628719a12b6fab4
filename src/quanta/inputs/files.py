"""``type: file`` inputs: csv, parquet, json and ndjson files, or globs of them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb

from quanta.engine.duckdb import DuckDBSession, literal, quote
from quanta.errors import InputError
from quanta.inputs.base import InputContext, Since
from quanta.spec.models import FileInput
from quanta.storage import InputRead

_FORMATS = {
    ".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet",
    ".json": "json", ".ndjson": "ndjson", ".jsonl": "ndjson",
}


def resolve_files(folder: Path, pattern: str) -> list[Path]:
    """Files matching ``pattern`` (a path or glob relative to ``folder``), sorted."""
    base = Path(pattern)
    if base.is_absolute():
        anchor, rel = Path(base.anchor), str(base.relative_to(base.anchor))
    else:
        anchor, rel = folder, pattern
    if any(ch in rel for ch in "*?["):
        return sorted(p.resolve() for p in anchor.glob(rel) if p.is_file())
    path = (anchor / rel).resolve()
    return [path] if path.is_file() else []


def fingerprint(files: list[Path]) -> str:
    """A cheap identity of the files' current contents: names, sizes and modification times."""
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        digest.update(f"{file.name}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


class FileConnector:
    type = "file"
    reads_since = True

    def load(self, session: DuckDBSession, spec: FileInput, context: InputContext,
             since: Since | None = None) -> InputRead:
        files = resolve_files(context.product_folder, spec.path)
        if not files:
            raise InputError(
                f"input '{spec.name}': no file matches '{spec.path}'",
                hint=f"paths are relative to {context.product_folder}; check the path or glob",
            )
        fmt = spec.format or _FORMATS.get(files[0].suffix.lower())
        if fmt is None:
            raise InputError(
                f"input '{spec.name}': cannot tell the format of {files[0].name}",
                hint="add 'format: csv|parquet|json|ndjson' to the input",
            )
        listing = "[" + ", ".join(literal(str(f)) for f in files) + "]"
        if fmt == "csv":
            options = [f"header = {'true' if spec.header else 'false'}"]
            if spec.delimiter:
                options.append(f"delim = {literal(spec.delimiter)}")
            source = f"read_csv({listing}, {', '.join(options)})"
        elif fmt == "parquet":
            source = f"read_parquet({listing})"
        else:
            layout = "newline_delimited" if fmt == "ndjson" else "auto"
            source = f"read_json({listing}, format = {literal(layout)})"
        try:
            # a view, read once by the transform; the session may read these files (and no
            # others) after it is locked
            where = f" WHERE {since.condition()}" if since else ""
            session.execute(
                f"CREATE TEMP VIEW {quote(spec.name)} AS SELECT * FROM {source}{where}")
            for file in files:
                session.allow_file(file)
        except duckdb.Error as exc:
            raise InputError(
                f"input '{spec.name}': cannot read {fmt} from {files[0].name}: "
                f"{str(exc).splitlines()[0]}",
                hint=f"check that the file is valid {fmt}, or set 'format:'",
            ) from None
        return InputRead(type="file", fingerprint=fingerprint(files))
