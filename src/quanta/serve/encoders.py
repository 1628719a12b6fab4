"""Encode a query stream as bytes for HTTP: Arrow IPC, NDJSON, CSV or Parquet."""

from __future__ import annotations

import base64
import io
import json
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
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
# Chunks of an answer; memoryviews hand Arrow buffers on without copying them into bytes
# (Starlette sends any bytes-like chunk)
Chunk = bytes | memoryview
SMALL_BATCH = 64
# JSON encoding is the slow part of an NDJSON answer; polars releases the GIL, so encoding
# on a few threads while the engine reads the next batch keeps more of the machine busy
ENCODERS = 2
_POOL = ThreadPoolExecutor(max_workers=ENCODERS, thread_name_prefix="quanta-encode")


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


def encode(stream: QueryStream, media: str) -> Iterator[Chunk]:
    """The stream's bytes in ``media``; errors after the first byte end the body early."""
    if media == NDJSON:
        return _ndjson(stream)
    if media == ARROW:
        return _arrow(stream)
    return _written(stream, pacsv.CSVWriter if media == CSV else pq.ParquetWriter)


END_OF_STREAM = b"\xff\xff\xff\xff\x00\x00\x00\x00"


def _arrow(stream: QueryStream) -> Iterator[Chunk]:
    """The Arrow IPC stream format, one encapsulated message per batch (one copy each)."""
    yield stream.schema.serialize().to_pybytes()
    for batch in stream:
        yield memoryview(batch.serialize())
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


def _ndjson(stream: QueryStream) -> Iterator[Chunk]:
    sent = False
    try:
        for chunk in _in_order(stream, _ndjson_batch):
            sent = sent or bool(chunk)
            yield chunk
    except QuantaError as exc:
        if not sent:
            raise  # nothing sent yet: the client gets a proper error status
        # the status line is gone; the last line tells the client why the body ends here
        yield (json.dumps({"error": exc.to_dict()}) + "\n").encode()


def _ndjson_batch(batch: pa.RecordBatch) -> Chunk:
    import polars as pl

    if batch.num_rows == 0:
        return b""
    if batch.num_rows <= SMALL_BATCH:
        # for a few rows, plain json is quicker than starting polars
        return "".join(json.dumps(row, default=_json_value, separators=(",", ":")) + "\n"
                       for row in batch.to_pylist()).encode()
    frame = pl.from_arrow(_text_for_binary(batch))
    assert isinstance(frame, pl.DataFrame)
    # Each row encoded by polars' JSON writer (the same bytes write_ndjson writes), the lines
    # one Arrow string array whose value buffer is the whole body. write_ndjson into a BytesIO
    # passes every piece through a new Python bytes object and a growing buffer: 10M rows
    # over HTTP took 5.7 s that way, 5.4 s this way (benchmarks/README.md, serving).
    lines = frame.select(pl.concat_str(pl.struct(pl.all()).struct.json_encode(), pl.lit("\n")))
    array = lines.to_series().to_arrow(compat_level=pl.CompatLevel.oldest())
    if not isinstance(array, pa.LargeStringArray) or array.null_count:
        buffer = io.BytesIO()  # not expected; the plain way is always right
        frame.write_ndjson(buffer)
        return buffer.getvalue()
    return memoryview(_values(array))


def _values(array: pa.LargeStringArray) -> pa.Buffer:
    """The bytes of every value of ``array``, back to back (a slice of its value buffer)."""
    offsets = memoryview(array.buffers()[1]).cast("q")
    start, end = offsets[array.offset], offsets[array.offset + len(array)]
    return array.buffers()[2].slice(start, end - start)


def _in_order(batches: Iterable[pa.RecordBatch], encode_one: Callable[[pa.RecordBatch], Chunk],
              ahead: int = ENCODERS) -> Iterator[Chunk]:
    """Encode batches on the encoder threads while the next ones are read; bytes in order.

    At most ``ahead`` batches wait to be sent, so memory stays bounded. When reading fails,
    the batches read before the failure are still sent, then the error is raised.
    """
    pending: deque[Future[Chunk]] = deque()
    reading = iter(batches)
    failure: Exception | None = None
    try:
        for batch in reading:
            pending.append(_POOL.submit(encode_one, batch))
            while len(pending) > ahead:
                yield pending.popleft().result()
    except GeneratorExit:  # the client went away
        for future in pending:
            future.cancel()
        close = getattr(reading, "close", None)
        if close is not None:
            close()
        raise
    except Exception as exc:  # re-raised below, once what was read is sent
        failure = exc
    while pending:
        yield pending.popleft().result()
    if failure is not None:
        raise failure


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
             ) -> Iterator[Chunk]:
    """Feed batches to a writer (Arrow IPC, CSV, Parquet); hand out its bytes as they come."""
    sink = _Sink()
    writer = open_writer(sink, stream.schema)
    yield sink.take()
    for batch in stream:
        writer.write_batch(batch)
        yield sink.take()
    writer.close()
    yield sink.take()
