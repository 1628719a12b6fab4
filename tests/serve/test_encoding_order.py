"""NDJSON is encoded on worker threads; the body must still be every row, in order."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pyarrow as pa
import pytest

from quanta.errors import QuantaError
from quanta.serve.encoders import _in_order, _ndjson_batch


def batches(count: int, rows: int = 500) -> Iterator[pa.RecordBatch]:
    for number in range(count):
        yield pa.record_batch({"n": pa.array(range(number * rows, (number + 1) * rows))})


def test_rows_come_out_in_order_whatever_the_encoding_time() -> None:
    def slow_first(batch: pa.RecordBatch) -> bytes:
        if batch.column(0)[0].as_py() % 1000 == 0:
            time.sleep(0.01)  # every other batch takes longer to encode
        return _ndjson_batch(batch)

    body = b"".join(_in_order(batches(20), slow_first))
    assert [json.loads(line)["n"] for line in body.splitlines()] == list(range(10_000))


def test_a_failure_after_some_batches_sends_them_then_raises() -> None:
    def failing() -> Iterator[pa.RecordBatch]:
        yield from batches(3)
        raise QuantaError("limit reached", code="limit_exceeded")

    sent: list[bytes] = []
    with pytest.raises(QuantaError, match="limit reached"):
        for chunk in _in_order(failing(), _ndjson_batch):
            sent.append(chunk)
    assert len(b"".join(sent).splitlines()) == 1_500


def test_a_client_going_away_closes_the_source() -> None:
    closed: list[bool] = []

    def source() -> Iterator[pa.RecordBatch]:
        try:
            yield from batches(50)
        except GeneratorExit:
            closed.append(True)
            raise

    body = _in_order(source(), _ndjson_batch)
    next(body)
    body.close()
    assert closed == [True]
