"""Helpers of the ``serving`` benchmark: a ``quanta serve`` child process and its clients.

The server runs as its own process (the installed console script), on free loopback ports, so
its RSS and CPU time can be read from ``/proc/<pid>`` while clients in this process stream
from it. It is stopped by its own pid (SIGTERM, then SIGKILL if it does not exit).
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.flight as flight

ARROW = "application/vnd.apache.arrow.stream"
NDJSON = "application/x-ndjson"
CSV = "text/csv"
QUERY_PATH = "/api/v1/query"
LOOPBACK = "127.0.0.1"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``quanta serve --mesh DIR --port P --flight-port Q`` as a child process."""

    def __init__(self, mesh: Path, log: Path, launcher: list[str] | None = None) -> None:
        self.mesh = mesh
        self.log = log
        self.launcher = launcher  # instead of the console script, e.g. [python, script.py]
        self.port = free_port()
        self.flight_port = free_port()
        while self.flight_port == self.port:
            self.flight_port = free_port()
        self.http = f"http://{LOOPBACK}:{self.port}"
        self.flight = f"grpc://{LOOPBACK}:{self.flight_port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.exit_code: int | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, "the server is not running"
        return self.process.pid

    def start(self, timeout: float = 60.0) -> ServerProcess:
        exe = Path(sys.executable).parent / "quanta"
        if self.launcher is None and not exe.exists():
            raise RuntimeError(f"console script {exe} is missing; install quanta in the venv")
        env = {k: v for k, v in os.environ.items() if k != "QUANTA_MESH"}
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [*(self.launcher or [str(exe)]), "serve", "--mesh", str(self.mesh),
                 "--host", LOOPBACK, "--port", str(self.port),
                 "--flight-port", str(self.flight_port)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"quanta serve exited with {self.process.returncode}:\n"
                                   + self.log_tail())
            try:
                if httpx.get(f"{self.http}/readyz", timeout=2).status_code == 200 and \
                        _listening(self.flight_port):
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"quanta serve was not ready within {timeout:g}s:\n"
                           + self.log_tail())

    def rss_bytes(self) -> int:
        """Resident set size now (VmRSS), in bytes."""
        with open(f"/proc/{self.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for pid {self.pid}")

    def cpu_seconds(self) -> float:
        """User plus system CPU time the server has used so far."""
        with open(f"/proc/{self.pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM to the server's pid (it flushes its audit log), SIGKILL if it hangs."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            self.exit_code = None if process is None else process.returncode
            return
        process.terminate()
        try:
            self.exit_code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            self.exit_code = process.wait(timeout)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((LOOPBACK, port)) == 0


@dataclass
class Usage:
    """What one streaming request cost: server RSS growth and CPU, client CPU."""

    rss_before: int = 0
    rss_peak: int = 0
    samples: int = 0
    server_cpu_s: float = 0.0
    client_cpu_s: float = 0.0

    @property
    def growth(self) -> int:
        return max(0, self.rss_peak - self.rss_before)

    def details(self) -> dict[str, float]:
        return {"rss_before_mb": round(self.rss_before / 2**20, 1),
                "rss_peak_mb": round(self.rss_peak / 2**20, 1),
                "rss_growth_mb": round(self.growth / 2**20, 1), "rss_samples": self.samples,
                "server_cpu_s": round(self.server_cpu_s, 3),
                "client_cpu_s": round(self.client_cpu_s, 3)}


class Monitor:
    """``with Monitor(server) as usage:`` samples the server's RSS every ``interval`` s."""

    def __init__(self, server: ServerProcess, interval: float = 0.01) -> None:
        self.server = server
        self.interval = interval
        self.usage = Usage()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
        self._cpu = self._client_cpu = 0.0

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._record()

    def _record(self) -> None:
        rss = self.server.rss_bytes()
        self.usage.rss_peak = max(self.usage.rss_peak, rss)
        self.usage.samples += 1

    def __enter__(self) -> Usage:
        self.usage.rss_before = self.usage.rss_peak = self.server.rss_bytes()
        self._cpu = self.server.cpu_seconds()
        self._client_cpu = time.process_time()
        self._thread.start()
        return self.usage

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        self._record()
        self.usage.server_cpu_s = self.server.cpu_seconds() - self._cpu
        self.usage.client_cpu_s = time.process_time() - self._client_cpu


# --- clients ---------------------------------------------------------------------------------


@dataclass
class Received:
    """A whole result as a client saw it: rows, bytes on the wire, and its first row."""

    rows: int = 0
    wire_bytes: int = 0
    first: dict[str, Any] = field(default_factory=dict)


def http_client(server: ServerProcess, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.http, headers={"Authorization": f"Bearer {token}"},
                        timeout=httpx.Timeout(600.0, connect=10.0))


def _check(response: httpx.Response) -> None:
    if response.status_code != 200:
        response.read()
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")


class _Feed(io.RawIOBase):
    """A readable file over an iterator of byte chunks (for pyarrow's IPC stream reader)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._view = memoryview(b"")
        self.received = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._view:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self.received += len(chunk)
            self._view = memoryview(chunk)
        size = min(len(buffer), len(self._view))
        buffer[:size] = self._view[:size]
        self._view = self._view[size:]
        return size


def http_arrow(client: httpx.Client, sql: str) -> Received:
    """POST the query asking for Arrow IPC; decode the stream batch by batch as it arrives."""
    got = Received()
    with client.stream("POST", QUERY_PATH, json={"sql": sql}, headers={"Accept": ARROW}) as r:
        _check(r)
        feed = _Feed(r.iter_raw())
        reader = pa.ipc.open_stream(io.BufferedReader(feed, 1 << 20))
        for batch in reader:
            if not got.rows and batch.num_rows:
                got.first = batch.slice(0, 1).to_pylist()[0]
            got.rows += batch.num_rows
        got.wire_bytes = feed.received
    return got


def http_ndjson(client: httpx.Client, sql: str) -> Received:
    """POST the query asking for NDJSON; count lines and bytes as they arrive."""
    got = Received()
    head = b""
    with client.stream("POST", QUERY_PATH, json={"sql": sql}, headers={"Accept": NDJSON}) as r:
        _check(r)
        for chunk in r.iter_raw():
            got.wire_bytes += len(chunk)
            got.rows += chunk.count(b"\n")
            if len(head) < 4096:
                head += chunk[:4096]
    if head:
        first = json.loads(head.split(b"\n", 1)[0])
        if "error" in first and len(first) == 1:
            raise RuntimeError(f"the stream failed: {first['error']}")
        got.first = first
    return got


def flight_read(server: ServerProcess, token: str, sql: str) -> Received:
    """do_get with a JSON ticket; read the stream batch by batch."""
    client = flight.FlightClient(server.flight)
    try:
        options = flight.FlightCallOptions(
            headers=[(b"authorization", f"Bearer {token}".encode())], timeout=600)
        reader = client.do_get(flight.Ticket(json.dumps({"sql": sql}).encode()), options)
        got = Received()
        for batch in reader.to_reader():
            if not got.rows and batch.num_rows:
                got.first = batch.slice(0, 1).to_pylist()[0]
            got.rows += batch.num_rows
            got.wire_bytes += batch.nbytes
        return got
    finally:
        client.close()
