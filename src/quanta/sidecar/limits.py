"""Per-query limits: time, rows, bytes; from mesh.yaml, narrowed per principal or group."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from quanta.errors import QuantaError
from quanta.sidecar.principals import Principal
from quanta.spec.durations import parse_duration
from quanta.spec.models import LimitsSpec, ServingSpec


class LimitExceeded(QuantaError):
    """A query went past one of its limits and was stopped."""

    code = "limit_exceeded"


@dataclass(frozen=True)
class QueryLimits:
    """The limits one query runs under."""

    timeout: float | None = None
    max_rows: int | None = None
    max_bytes: int | None = None


def limits_for(serving: ServingSpec, principal: Principal) -> QueryLimits:
    """Mesh limits, overridden by the principal's groups, then by the principal itself."""
    layers: list[LimitsSpec] = [serving.limits]
    layers += [serving.principal_limits[f"group:{g}"] for g in sorted(principal.groups)
               if f"group:{g}" in serving.principal_limits]
    if principal.name in serving.principal_limits:
        layers.append(serving.principal_limits[principal.name])
    timeout = max_rows = max_bytes = None
    for layer in layers:
        if layer.timeout is not None:
            timeout = parse_duration(layer.timeout).total_seconds()
        max_rows = layer.max_rows if layer.max_rows is not None else max_rows
        max_bytes = layer.max_bytes if layer.max_bytes is not None else max_bytes
    return QueryLimits(timeout, max_rows, max_bytes)


class Watchdog:
    """One thread that runs callbacks at deadlines (query timeouts), instead of a timer each."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int]] = []
        self._pending: dict[int, Callable[[], object]] = {}
        self._wake = threading.Condition()
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def after(self, seconds: float | None, callback: Callable[[], object]) -> Alarm | None:
        """Call ``callback`` in ``seconds`` unless cancelled; None when there is no limit."""
        if not seconds:
            return None
        with self._wake:
            alarm = Alarm(self, next(self._ids))
            self._pending[alarm.id] = callback
            heapq.heappush(self._heap, (time.monotonic() + seconds, alarm.id))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="quanta-watchdog",
                                                daemon=True)
                self._thread.start()
            self._wake.notify()
        return alarm

    def cancel(self, alarm_id: int) -> None:
        with self._wake:
            self._pending.pop(alarm_id, None)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._heap:
                    self._wake.wait()
                deadline, alarm_id = self._heap[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                heapq.heappop(self._heap)
                callback = self._pending.pop(alarm_id, None)
            if callback is not None:
                with contextlib.suppress(Exception):  # the query may have just finished
                    callback()


@dataclass(frozen=True)
class Alarm:
    """A scheduled callback; ``cancel()`` when the work finished in time."""

    watchdog: Watchdog
    id: int

    def cancel(self) -> None:
        self.watchdog.cancel(self.id)


WATCHDOG = Watchdog()
