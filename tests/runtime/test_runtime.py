"""The decentralized runtime: products react to their own triggers, from the event log."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml

from conftest import cli
from quanta.build.runner import Builder
from quanta.runtime import MeshRuntime
from quanta.runtime.runner import RuntimeEvent
from quanta.runtime.state import read_state
from quanta.spec.mesh import load_mesh
from quanta.storage import ProductStorage, RunLog
from quanta.storage.events import EventLog
from quanta.storage.locks import BuildLock

STORAGE = ".quanta"


def releases(mesh: Path, key: str) -> list[int]:
    return ProductStorage(mesh / STORAGE, key).release_numbers()


def run_once(mesh: Path, **options: object) -> tuple[list[RuntimeEvent], MeshRuntime]:
    seen: list[RuntimeEvent] = []
    runtime = MeshRuntime(mesh, poll=0.1, listener=seen.append, **options)  # type: ignore[arg-type]
    runtime.run(once=True)
    return seen, runtime


def edit_spec(folder: Path, **changes: object) -> None:
    file = folder / "dataproduct.yaml"
    spec = yaml.safe_load(file.read_text())
    spec.update(changes)
    file.write_text(yaml.safe_dump(spec, sort_keys=False))


def append_order(mesh: Path, line: str) -> None:
    source = mesh / "domains/shop/orders/orders.csv"
    with open(source, "a") as handle:
        handle.write(line + "\n")


def test_first_run_builds_each_product_once_upstream_first(tiny_mesh: Path) -> None:
    events, _ = run_once(tiny_mesh)
    released = [(e.product, e.kind) for e in events if e.kind in ("released", "failed")]
    assert sorted(released) == [("shop.customers_py", "released"),
                                ("shop.daily_totals", "released"), ("shop.orders", "released")]
    started = [e.product for e in events if e.kind == "started"]
    assert started[0] == "shop.orders", "downstream products wait for their own input"
    assert all(releases(tiny_mesh, k) == [1] for k in
               ("shop.orders", "shop.daily_totals", "shop.customers_py"))
    # the release of the upstream product was announced in the event log
    log = EventLog(tiny_mesh / STORAGE).read()
    announced = {(e.product, e.release) for e in log if e.kind == "release"}
    assert ("shop.orders", 1) in announced
    downstream = next(e for e in log if e.product == "shop.daily_totals")
    assert downstream.inputs == {"shop.orders": 1}
    # nothing pending afterwards: a second run does nothing
    again, _ = run_once(tiny_mesh)
    assert again == []
    assert releases(tiny_mesh, "shop.orders") == [1]


def test_source_change_flows_downstream_once(tiny_mesh: Path) -> None:
    run_once(tiny_mesh)
    append_order(tiny_mesh, "o9,c1,7.50,2026-11-03 09:00:00")
    status = {p.product: p for p in MeshRuntime(tiny_mesh).status()}
    assert status["shop.orders"].reasons == ["source 'raw_orders' changed"]
    assert not status["shop.daily_totals"].due, "downstream waits for the upstream release"
    events, _ = run_once(tiny_mesh)
    started = {e.product: e.message for e in events if e.kind == "started"}
    assert started["shop.orders"] == "source 'raw_orders' changed"
    assert started["shop.daily_totals"] == "upstream shop.orders has release 2"
    assert releases(tiny_mesh, "shop.orders") == [1, 2]
    assert releases(tiny_mesh, "shop.daily_totals") == [1, 2]
    latest = ProductStorage(tiny_mesh / STORAGE, "shop.daily_totals").latest()
    assert latest is not None and latest.inputs["orders"].release == 2


def test_stale_trigger_does_not_rebuild_from_the_same_inputs(tiny_mesh: Path) -> None:
    run_once(tiny_mesh)
    mesh = load_mesh(tiny_mesh)
    builder = Builder(mesh)
    # a trigger that arrives again (e.g. replayed after a crash) finds nothing new
    result = builder.build_one(mesh.product("shop.daily_totals"), skip_unchanged=True)
    assert result.ok and result.release is None and result.run.outcome == "unchanged"
    assert releases(tiny_mesh, "shop.daily_totals") == [1]
    runs = RunLog(tiny_mesh / STORAGE).runs("shop.daily_totals")
    assert runs[-1].outcome == "unchanged" and runs[-1].release == 1


def test_changed_code_rebuilds(tiny_mesh: Path) -> None:
    run_once(tiny_mesh)
    sql = tiny_mesh / "domains/shop/orders/transform.sql"
    sql.write_text(sql.read_text() + "\n-- a comment changes the code\n")
    status = {p.product: p for p in MeshRuntime(tiny_mesh).status()}
    assert status["shop.orders"].reasons == ["spec or code changed"]


def test_manual_trigger_forces_a_build_and_manual_only_ignores_upstream(
        tiny_mesh: Path) -> None:
    edit_spec(tiny_mesh / "domains/shop/daily_totals", triggers=[{"on": "manual"}])
    events, _ = run_once(tiny_mesh)
    assert "shop.daily_totals" not in {e.product for e in events}, \
        "a manual-only product is not built until asked"
    result = cli("trigger", "shop.daily_totals", cwd=tiny_mesh)
    assert result.exit_code == 0, result.output
    assert "triggered shop.daily_totals" in result.output
    events, _ = run_once(tiny_mesh, products=["shop.daily_totals"])
    assert [(e.product, e.kind) for e in events if e.kind != "started"] == [
        ("shop.daily_totals", "released")]
    assert "triggered by" in next(e.message for e in events if e.kind == "started")
    # the trigger was handled (the runner's cursor moved past it): it does not fire again
    trigger_seq = max(e.seq for e in EventLog(tiny_mesh / STORAGE).read() if e.kind == "trigger")
    assert read_state(tiny_mesh / STORAGE, "shop.daily_totals").cursor >= trigger_seq
    again, _ = run_once(tiny_mesh, products=["shop.daily_totals"])
    assert again == []
    # upstream changes do not rebuild it either
    append_order(tiny_mesh, "o9,c1,7.50,2026-11-03 09:00:00")
    events, _ = run_once(tiny_mesh)
    assert "shop.daily_totals" not in {e.product for e in events}
    assert releases(tiny_mesh, "shop.daily_totals") == [1]


def test_interval_trigger_records_unchanged_runs(tiny_mesh: Path) -> None:
    edit_spec(tiny_mesh / "domains/shop/orders", triggers=[{"every": "1s"}])
    run_once(tiny_mesh, products=["shop.orders"])
    time.sleep(1.1)
    status = {p.product: p for p in MeshRuntime(tiny_mesh).status()}
    assert status["shop.orders"].reasons == ["every 1s"]
    events, _ = run_once(tiny_mesh, products=["shop.orders"])
    assert [e.kind for e in events] == ["started", "unchanged"]
    assert releases(tiny_mesh, "shop.orders") == [1]


def test_terminal_failure_is_not_retried_until_inputs_change(tiny_mesh: Path) -> None:
    run_once(tiny_mesh)
    append_order(tiny_mesh, "o9,c1,not-a-number,2026-11-03 09:00:00")
    events, _ = run_once(tiny_mesh)
    assert [(e.product, e.kind) for e in events] == [("shop.orders", "started"),
                                                     ("shop.orders", "failed")]
    assert "decimal" in events[-1].message
    status = {p.product: p for p in MeshRuntime(tiny_mesh).status()}
    assert status["shop.orders"].held is not None and not status["shop.orders"].due
    assert run_once(tiny_mesh)[0] == [], "the same failure is not repeated"
    # downstream keeps its release, built from the last good upstream release
    assert releases(tiny_mesh, "shop.daily_totals") == [1]
    source = tiny_mesh / "domains/shop/orders/orders.csv"
    source.write_text(source.read_text().replace("not-a-number", "8.00"))
    events, _ = run_once(tiny_mesh)
    assert ("shop.orders", "released") in [(e.product, e.kind) for e in events]
    assert releases(tiny_mesh, "shop.daily_totals") == [1, 2]


def test_a_held_lock_refuses_a_second_build(tiny_mesh: Path) -> None:
    mesh = load_mesh(tiny_mesh)
    lock = BuildLock(mesh.storage_root, "shop.orders")
    assert lock.acquire()
    try:
        result = Builder(mesh).build_one(mesh.product("shop.orders"))
        assert result.error is not None and result.error.code == "build_locked"
        assert f"pid {os.getpid()}" in result.error.message
        status = {p.product: p for p in MeshRuntime(tiny_mesh).status()}
        assert status["shop.orders"].held == f"being built by process {os.getpid()}"
    finally:
        lock.release()
    assert Builder(mesh).build_one(mesh.product("shop.orders")).release is not None


def test_event_log_survives_a_torn_append(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    log.append("release", "a.b", release=1)
    with open(log.file, "ab") as handle:
        handle.write(b'{"seq": 2, "at": "2026-')  # a crash mid-append
    assert [e.seq for e in log.read()] == [1]
    event = log.append("trigger", "a.b", by="ana")
    assert event.seq == 2
    assert [(e.seq, e.kind) for e in log.read()] == [(1, "release"), (2, "trigger")]
    assert [e.seq for e in log.read(after=1)] == [2]


def test_triggers_command_explains_each_product(tiny_mesh: Path) -> None:
    result = cli("triggers", cwd=tiny_mesh)
    assert result.exit_code == 0, result.output
    assert "no release yet" in result.output and "shop.orders" in result.output
    result = cli("run", "--once", "--poll", "0.1", cwd=tiny_mesh)
    assert result.exit_code == 0, result.output
    assert "3 release(s), 0 failure(s)" in result.output
    result = cli("triggers", "--json", cwd=tiny_mesh)
    assert '"pending": false' in result.output and '"pending": true' not in result.output


@pytest.mark.parametrize("bad", ["fast", "0x", "-1s"])
def test_bad_runtime_settings_are_spec_errors(tiny_mesh: Path, bad: str) -> None:
    edit_spec(tiny_mesh / "domains/shop/orders", runtime={"timeout": bad})
    result = cli("run", "--once", cwd=tiny_mesh)
    assert result.exit_code == 1
    assert "dataproduct.yaml" in result.output and "duration" in result.output


def test_demo_reacts_to_appended_events(demo_mesh: Path, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "daff"
    shutil.copytree(demo_mesh, folder, symlinks=True)
    before = {k: releases(folder, k)[-1] for k in load_mesh(folder).products}
    plays = ProductStorage(folder / STORAGE, "listening.play_events").latest()
    assert plays is not None
    result = cli("demo", str(folder), "--append-events", "250")
    assert result.exit_code == 0, result.output
    assert "appended 250 plays" in result.output
    events, _ = run_once(folder)
    assert not [e for e in events if e.kind == "failed"], events
    after = {k: releases(folder, k)[-1] for k in load_mesh(folder).products}
    rebuilt = {k for k in after if after[k] > before[k]}
    assert rebuilt == {"listening.play_events", "listening.listener_sessions",
                       "artists.artist_popularity", "royalties.monthly_statements",
                       "marketing.churn_features"}, rebuilt
    latest = ProductStorage(folder / STORAGE, "listening.play_events").latest()
    assert latest is not None and latest.rows == plays.rows + 250
    # each downstream product built once, after the releases it reads
    started = [e.product for e in events if e.kind == "started"]
    assert len(started) == len(set(started)) == 5
    assert started.index("marketing.churn_features") > started.index(
        "listening.listener_sessions")


def test_append_events_needs_a_demo(tmp_path: Path) -> None:
    result = cli("demo", str(tmp_path), "--append-events", "10")
    assert result.exit_code == 1 and "holds no demo mesh" in result.output


def test_a_running_runtime_picks_up_new_and_broken_specs(tiny_mesh: Path) -> None:
    import shutil
    import threading

    run_once(tiny_mesh)
    seen: list[RuntimeEvent] = []
    runtime = MeshRuntime(tiny_mesh, poll=0.1, listener=seen.append)
    stop = threading.Event()
    thread = threading.Thread(target=runtime.run, kwargs={"stop": stop, "grace": 10})
    thread.start()
    try:
        # a spec that does not load: the runtime keeps going with the last good mesh
        broken = tiny_mesh / "domains/shop/broken"
        broken.mkdir()
        (broken / "dataproduct.yaml").write_text("name: broken\nkind: nonsense\n")
        deadline = time.monotonic() + 20
        while not any(e.product == "mesh" for e in seen) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert any("still running the last good ones" in e.message for e in seen), seen
        shutil.rmtree(broken)
        # a new product is built without a restart
        copy = tiny_mesh / "domains/shop/daily_copy"
        shutil.copytree(tiny_mesh / "domains/shop/daily_totals", copy)
        spec = copy / "dataproduct.yaml"
        spec.write_text(spec.read_text().replace("name: daily_totals", "name: daily_copy"))
        while not releases(tiny_mesh, "shop.daily_copy") and time.monotonic() < deadline + 30:
            time.sleep(0.1)
        assert releases(tiny_mesh, "shop.daily_copy") == [1], seen
        assert any(e.kind == "reloaded" and "new: shop.daily_copy" in e.message for e in seen)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()


def test_event_log_reads_only_what_was_appended_and_tails_a_long_log(tmp_path: Path) -> None:
    writer, reader = EventLog(tmp_path), EventLog(tmp_path)
    for number in range(1, 1001):
        writer.append("release", f"d.p{number % 7}", release=number)
    assert writer.file.stat().st_size > 64 * 1024, "longer than the tail a writer reads"
    assert [e.seq for e in reader.read(after=998)] == [999, 1000]
    assert writer.append("trigger", "d.p1", by="ana").seq == 1001
    assert [e.seq for e in reader.read(after=999)] == [1000, 1001]
    assert len(reader.read()) == 1001 == len(EventLog(tmp_path).read())
    reader.file.write_bytes(b"")  # replaced: read again from the start
    assert reader.read() == []
    assert writer.append("trigger", "d.p1").seq == 1
