"""Encode a query stream as bytes for HTTP: Arrow IPC, NDJSON, CSV or Parquet."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from quanta.errors import QuantaError
from quanta.sidecar import QueryStream

ARROW = "application/vnd.apache.arrow.stream"
NDJSON = "application/x-ndjson"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
MEDIA_TYPES = (ARROW, NDJSON, CSV, PARQUET)
SMALL_BATCH = 64


def choose(accept: str | None) -> str:
    """The media type to answer with, from an Accept header (NDJSON when anything goes)."""
    if not accept:
        return NDJSON
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media in MEDIA_TYPES:
            return media
        if media in ("*/*", "application/*", "application/json"):
            return NDJSON
    raise QuantaError(
        f"cannot answer in {accept}", hint=f"accept one of: {', '.join(MEDIA_TYPES)}",
        code="not_acceptable",
    )


def encode(stream: QueryStream, media: str) -> Iterator[bytes]:
    """The stream's bytes in ``media``; errors after the first byte end the body early."""
    if media == NDJSON:
        return _ndjson(stream)
    if media == ARROW:
        return _arrow(stream)
    return _written(stream, pacsv.CSVWriter if media == CSV else pq.ParquetWriter)


END_OF_STREAM = b"\xff\xff\xff\xff\x00\x00\x00\x00"


def _arrow(stream: QueryStream) -> Iterator[bytes]:
    """The Arrow IPC stream format, one encapsulated message per batch (one copy each)."""
    yield stream.schema.serialize().to_pybytes()
    for batch in stream:
        yield batch.serialize().to_pybytes()
    yield END_OF_STREAM


class _Sink(io.RawIOBase):
    """A write-only buffer handed out in chunks."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        return data


def _ndjson(stream: QueryStream) -> Iterator[bytes]:
    import polars as pl

    sent = False
    try:
        for batch in stream:
            sent = sent or batch.num_rows > 0
            if 0 < batch.num_rows <= SMALL_BATCH:
                # for a few rows, plain json is quicker than starting polars
                yield "".join(json.dumps(row, default=_json_value, separators=(",", ":")) + "\n"
                              for row in batch.to_pylist()).encode()
            elif batch.num_rows:
                frame = pl.from_arrow(_text_for_binary(batch))
                buffer = io.BytesIO()
                frame.write_ndjson(buffer)  # type: ignore[union-attr]
                yield buffer.getvalue()
    except QuantaError as exc:
        if not sent:
            raise  # nothing sent yet: the client gets a proper error status
        # the status line is gone; the last line tells the client why the body ends here
        yield (json.dumps({"error": exc.to_dict()}) + "\n").encode()


def _json_value(value: object) -> object:
    """How the NDJSON answer writes values JSON has no type for (as polars does)."""
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)  # decimals stay exact, as text


def _text_for_binary(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Binary columns as base64 text: JSON has no bytes."""
    binary = [i for i, f in enumerate(batch.schema)
              if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)
              or pa.types.is_fixed_size_binary(f.type) or pa.types.is_binary_view(f.type)]
    for i in binary:
        values = [None if v is None else base64.b64encode(v).decode()
                  for v in batch.column(i).to_pylist()]
        batch = batch.set_column(i, batch.schema.field(i).name, pa.array(values, pa.string()))
    return batch


def _written(stream: QueryStream, open_writer: Callable[[Any, pa.Schema], Any]
             ) -> Iterator[bytes]:
    """Feed batches to a writer (Arrow IPC, CSV, Parquet); hand out its bytes as they come."""
    sink = _Sink()
    writer = open_writer(sink, stream.schema)
    yield sink.take()
    for batch in stream:
        writer.write_batch(batch)
        yield sink.take()
    writer.close()
    yield sink.take()
