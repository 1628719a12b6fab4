"""A build killed with SIGKILL at any point leaves the previous release intact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from quanta.context import MeshContext

ROWS = 300_000


def big_orders(mesh: Path, rows: int, start: int = 0) -> None:
    lines = ["order_id,customer_id,amount,ordered_at"]
    lines += [f"o{i},c{i % 997},{(i % 5000) / 100:.2f},2026-11-01 10:00:00"
              for i in range(start, start + rows)]
    (mesh / "domains/shop/orders/orders.csv").write_text("\n".join(lines) + "\n")


def start_build(mesh: Path) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).parent / "quanta"
    return subprocess.Popen([str(exe), "build", "shop.orders", "--mesh", str(mesh)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_sigkill_halfway_keeps_previous_release_and_next_build_succeeds(tiny_mesh: Path) -> None:
    big_orders(tiny_mesh, ROWS)
    ctx = MeshContext(tiny_mesh)
    [first] = ctx.build(["shop.orders"])
    assert first.ok
    big_orders(tiny_mesh, ROWS + 1000)

    timed = start_build(tiny_mesh)
    began = time.monotonic()
    assert timed.wait(timeout=120) == 0
    full = time.monotonic() - began
    # the timed build made release 2; kill later builds at several points of their life
    assert [r.release for r in ctx.releases("shop.orders")] == [1, 2]
    expected = ctx.query("SELECT count(*), sum(amount) FROM shop.orders").table.to_pylist()

    killed = 0
    for fraction in (0.35, 0.55, 0.7, 0.8, 0.9, 0.97):
        process = start_build(tiny_mesh)
        time.sleep(full * fraction)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            killed += 1
        process.wait(timeout=60)
        latest = ctx.storage("shop.orders").latest()
        assert latest is not None
        # either the kill came first (latest is still 2) or the build finished (3, 4, ...)
        now = ctx.query("SELECT count(*), sum(amount) FROM shop.orders").table.to_pylist()
        assert now == expected
        ctx.storage("shop.orders").verify(latest)
        assert ctx.read("shop.orders@1").table.num_rows == ROWS
    assert killed >= 3

    [after] = MeshContext(tiny_mesh).build(["shop.orders"])
    assert after.ok, after.error
    assert ctx.query("SELECT count(*) FROM shop.orders").table.column(0)[0].as_py() == ROWS + 1000
