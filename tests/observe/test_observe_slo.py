"""SLOs evaluated from real builds and reads: attainment, error budgets and breaches with their
causes for freshness, interval of change, timeliness, completeness, check pass rate and
availability; damaged records are skipped with a warning."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from quanta.context import MeshContext
from quanta.errors import QuantaError
from quanta.observe import SloResult, parse_window, slo_report
from quanta.spec.mesh import load_mesh
from quanta.storage import ProductStorage, RunLog

HEADER = "order_id,customer_id,amount,ordered_at\n"
SPEC_TAIL = """quality:
  - {check: not_null, columns: [order_id, customer_id], severity: warn}
  - {check: unique, columns: [order_id]}
  - {check: range, column: amount, min: 0, max: 10000}
slos: {freshness: 1d, interval_of_change: 1d, timeliness: 1h, completeness: 0.99,
       check_pass_rate: 0.9, availability: 0.99}
policies:
  - {type: grant, to: ["*"]}
"""


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class History:
    root: Path
    now: datetime
    commits: list[datetime]


def declare_slos(root: Path) -> None:
    """shop.orders promising every SLO; its not_null check only warns, so a release can
    hold nulls and show them in its completeness metric."""
    spec = root / "domains/shop/orders/dataproduct.yaml"
    text = spec.read_text()
    spec.write_text(text[:text.index("quality:")] + SPEC_TAIL)


@pytest.fixture
def history(tiny_mesh: Path) -> History:
    """Four releases of shop.orders and one failed build, placed on a timeline of ten days.

    Builds run seconds apart, so after building, each release manifest's committed_at is
    rewritten (in this tmp copy, through ProductStorage.amend) to a moment of the timeline,
    and so is the failed run's record: a history with gaps without waiting days. Each
    release's data is written so that its newest event is a known time before that moment.
    """
    declare_slos(tiny_mesh)
    now = datetime.now(UTC).replace(microsecond=0)
    commits = [now - timedelta(days=10), now - timedelta(days=9), now - timedelta(days=5),
               now - timedelta(hours=2)]
    source = tiny_mesh / "domains/shop/orders/orders.csv"
    ctx = MeshContext(tiny_mesh)
    rows = [  # newest event 3h before release 1: late for 'timeliness: 1h'
        f"{HEADER}o1,c1,10.50,{stamp(commits[0] - timedelta(hours=5))}\n"
        f"o2,c2,20.00,{stamp(commits[0] - timedelta(hours=3))}\n",
        # release 2: a null customer (completeness 2/3, one of three checks failing)
        f"o3,,5.25,{stamp(commits[1] - timedelta(minutes=10))}\n",
        f"o4,c3,7.00,{stamp(commits[2] - timedelta(minutes=10))}\n",
        f"o5,c1,1.00,{stamp(commits[3] - timedelta(minutes=10))}\n",
    ]
    data = ""
    for number, part in enumerate(rows, start=1):
        data += part
        source.write_text(data)
        [result] = ctx.build(["shop.orders"])
        assert result.release is not None and result.release.release == number, result.error
        if number == 2:
            source.write_text(data + "o1,c9,1.00,2026-01-01 00:00:00\n")  # duplicate key
            [failed] = ctx.build(["shop.orders"])
            assert failed.error is not None and failed.error.code == "checks_failed"
            moved = failed.run.model_copy(update={
                "started_at": commits[1] + timedelta(days=2),
                "ended_at": commits[1] + timedelta(days=2, seconds=1)})
            RunLog(ctx.mesh.storage_root).record(moved)
            data = data.replace("o3,,", "o3,c2,")  # the null is mended for release 3
    storage = ProductStorage(ctx.mesh.storage_root, "shop.orders")
    for number, moment in enumerate(commits, start=1):
        storage.amend(storage.release(number).model_copy(update={"committed_at": moment}))
    ctx.close()
    return History(tiny_mesh, now, commits)


def by_name(root: Path, now: datetime, **options: object) -> dict[str, SloResult]:
    report = slo_report(load_mesh(root), ["shop.orders"], now=now, **options)  # type: ignore[arg-type]
    return {s.slo: s for s in report.products[0].slos}


def test_freshness_is_the_share_of_time_a_recent_release_was_served(history: History) -> None:
    slos = by_name(history.root, history.now)
    fresh = slos["freshness"]
    # measured over the ten days since release 1; stale from one day after releases 2 and 3
    # until the next release: 3d and 3d 22h
    stale = timedelta(days=3) + timedelta(days=3, hours=22)
    assert fresh.total == timedelta(days=10).total_seconds()
    assert fresh.attainment == pytest.approx(1 - stale / timedelta(days=10), abs=1e-6)
    assert fresh.measured == timedelta(hours=2).total_seconds()
    assert fresh.status == "breached" and fresh.budget_left is not None
    assert fresh.budget_left < 0  # far more than 1% of the time stale
    first, second = fresh.breaches
    day2, day5 = (f"{m:%Y-%m-%d %H:%M}" for m in history.commits[1:3])
    assert first.cause.startswith(f"no release between {day2} and {day5} (4d; freshness 1d)")
    assert "1 build failed meanwhile (the last: checks_failed)" in first.cause
    assert first.release == 2 and first.start == history.commits[1] + timedelta(days=1)
    assert "failed meanwhile" not in second.cause and "(4d 22h; freshness 1d)" in second.cause


def test_interval_of_change_counts_each_gap_between_releases(history: History) -> None:
    interval = by_name(history.root, history.now)["interval_of_change"]
    assert (interval.good, interval.total) == (1, 3)  # 1d is on time, 4d and 4d 22h are not
    assert interval.measured == timedelta(days=4, hours=22).total_seconds()
    assert [b.cause for b in interval.breaches] == [
        "release 3 came 4d after release 2 (interval of change 1d); 1 build failed meanwhile "
        "(the last: checks_failed)",
        "release 4 came 4d 22h after release 3 (interval of change 1d)",
    ]
    # a product that stops changing breaches without a next release
    later = by_name(history.root, history.now + timedelta(days=3))["interval_of_change"]
    assert later.total == 4 and later.breaches[-1].cause == (
        "no release for 3d 2h since release 4 (interval of change 1d)")


def test_timeliness_compares_commit_with_the_newest_event(history: History) -> None:
    timely = by_name(history.root, history.now)["timeliness"]
    assert (timely.good, timely.total, timely.attainment) == (3, 4, 0.75)
    assert timely.measured == timedelta(minutes=10).total_seconds()
    [late] = timely.breaches
    newest = history.commits[0] - timedelta(hours=3)
    assert late.cause == (f"release 1: its newest event ({newest:%Y-%m-%d %H:%M}) was 3h old "
                          "when released (timeliness 1h)")
    assert late.release == 1


def test_completeness_and_check_pass_rate_judge_each_release(history: History) -> None:
    slos = by_name(history.root, history.now)
    complete, checks = slos["completeness"], slos["check_pass_rate"]
    assert (complete.good, complete.total) == (3, 4) and complete.measured == 1.0
    assert [b.cause for b in complete.breaches] == [
        "release 2: completeness 66.67% < 99% (not_null_order_id_customer_id: 1 of 3 rows)"]
    assert (checks.good, checks.total) == (3, 4)
    assert [b.cause for b in checks.breaches] == [
        "check not_null_order_id_customer_id failed in release 2 (pass rate 66.67% < 90%)"]
    assert complete.status == checks.status == "breached"
    # a window that starts after release 2 was replaced sees only good releases (release 3,
    # served when the window opened, and release 4)
    recent = by_name(history.root, history.now, window=timedelta(days=4))
    assert recent["completeness"].total == 2 and recent["completeness"].status == "met"
    assert recent["completeness"].budget_left == 1.0


def test_availability_counts_platform_failures_not_the_readers_mistakes(history: History
                                                                        ) -> None:
    ctx = MeshContext(history.root)
    ana = ctx.principal("ana")
    for _ in range(3):
        ctx.query("SELECT count(*) FROM shop.orders", principal=ana)
    with pytest.raises(QuantaError):  # the reader's typo: not the product's failure
        ctx.query("SELECT no_such_column FROM shop.orders", principal=ana)
    with pytest.raises(QuantaError):  # no grant on daily_totals: a denial, not a failure
        ctx.query("SELECT * FROM shop.daily_totals", principal=ana)
    storage = ProductStorage(ctx.mesh.storage_root, "shop.orders")
    [data_file] = storage.data_files(storage.latest(), "orders")  # type: ignore[arg-type]
    data_file.write_bytes(data_file.read_bytes() + b"tampered")
    with pytest.raises(QuantaError, match="SHA-256"):
        ctx.query("SELECT count(*) FROM shop.orders", principal=ana)
    ctx.close()

    available = by_name(history.root, datetime.now(UTC))["availability"]
    assert (available.good, available.total) == (3, 4)
    assert available.target == 0.99 and available.status == "breached"
    [failed] = available.breaches
    assert failed.cause.startswith("1 read failed with integrity failures (a data file differs "
                                   "from its release) (integrity_failed), the last at ")
    assert "does not match its recorded SHA-256" in failed.cause


def test_unmeasurable_slos_say_why(tiny_mesh: Path) -> None:
    declare_slos(tiny_mesh)
    before = {s.slo: s for s in slo_report(load_mesh(tiny_mesh)).products[2].slos}
    assert {s.status for s in before.values()} == {"unmeasured"}
    assert before["freshness"].note == "no release yet: build it (quanta build shop.orders)"
    assert before["availability"].note == "no reads in the window yet"

    ctx = MeshContext(tiny_mesh)
    assert all(r.ok for r in ctx.build())
    ctx.close()
    report = slo_report(load_mesh(tiny_mesh))
    after = {s.slo: s for s in report.products[2].slos}
    assert after["freshness"].status == "met" and after["freshness"].budget_left == 1.0
    assert after["interval_of_change"].note == (
        "1 release so far; an interval needs 2")
    assert after["availability"].status == "unmeasured"
    assert report.products[0].slos == []  # shop.customers_py promises nothing
    assert not report.warnings
    with pytest.raises(QuantaError) as objective:
        slo_report(load_mesh(tiny_mesh), objective=1.0)
    assert objective.value.code == "objective_invalid"


def test_damaged_run_records_and_manifests_are_skipped_with_a_warning(history: History
                                                                      ) -> None:
    storage_root = history.root / ".quanta"
    (storage_root / "runs" / "20260101T000000000000Z-shop.orders-abcdef.json").write_text(
        '{"run_id": "torn')
    (storage_root / "products/shop/orders/releases/000005.json").write_text("{}")
    report = slo_report(load_mesh(history.root), ["shop.orders"], now=history.now)
    assert len(report.products[0].releases) == 4
    text = "\n".join(report.warnings)
    assert "run record 20260101T000000000000Z-shop.orders-abcdef.json skipped" in text
    assert "shop.orders release 5 skipped" in text


def test_window_and_objective_are_checked() -> None:
    assert parse_window("7d") == timedelta(days=7)
    with pytest.raises(QuantaError, match="not a duration") as bad:
        parse_window("a month")
    assert bad.value.code == "window_invalid"
    with pytest.raises(QuantaError) as zero:
        parse_window("0d")
    assert zero.value.code == "window_invalid"
