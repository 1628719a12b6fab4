"""`quanta serve` as its own process: serves, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from conftest import _loopback_port, copy_fixture
from quanta.context import MeshContext


def test_serve_answers_then_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    mesh = copy_fixture("secure", tmp_path)
    ctx = MeshContext(mesh)
    assert all(r.ok for r in ctx.build())
    token, _ = ctx.sidecar.tokens.create("alice")
    port, flight_port = _loopback_port(), _loopback_port()
    exe = Path(sys.executable).parent / "quanta"
    server = subprocess.Popen(
        [str(exe), "serve", "--mesh", str(mesh), "--port", str(port), "--flight-port",
         str(flight_port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        for _ in range(3):
            response = httpx.post(f"http://127.0.0.1:{port}/api/v1/query",
                                  json={"sql": "SELECT count(*) AS n FROM people.plays"},
                                  headers={"Authorization": f"Bearer {token}"})
            assert response.text.strip() == '{"n":5}'
    finally:
        os.kill(server.pid, signal.SIGTERM)
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "serving mesh 'secure'" in out
    log = ctx.sidecar.audit
    head = json.loads(log.head_file.read_text())
    records = log.tail(100)
    assert head["seq"] == records[-1]["seq"]  # the last batch was made durable on the way out
    assert [r["outcome"] for r in records[-3:]] == ["ok", "ok", "ok"]
    assert log.verify().ok


def test_serve_on_a_busy_port_says_so(tmp_path: Path) -> None:
    import socket

    mesh = copy_fixture("secure", tmp_path)
    exe = Path(sys.executable).parent / "quanta"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for args in (["--port", str(port), "--flight-port", str(_loopback_port())],
                     ["--port", str(_loopback_port()), "--flight-port", str(port)]):
            done = subprocess.run([str(exe), "serve", "--mesh", str(mesh), *args],
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 1
            assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
            assert "Traceback" not in done.stderr
