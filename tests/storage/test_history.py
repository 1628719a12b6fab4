"""Release history: which releases a rule keeps, and how storage answers for expired ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from quanta.errors import NotFoundError
from quanta.storage import ProductStorage, Release
from quanta.storage.history import (
    ExpiredRelease,
    HistoryRule,
    ReleaseExpiredError,
    plan,
    write_tombstone,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def made(number: int, day: float, version: str = "1.0.0") -> Release:
    """Release ``number``, committed ``day`` days after T0."""
    at = T0 + timedelta(days=day)
    return Release(product="shop.orders", release=number, interface_version=version,
                   committed_at=at, recorded_at=at, run_id=f"run{number}", ports={})


def tombstone(release: Release, expired_at: datetime = T0 + 100 * DAY) -> ExpiredRelease:
    return ExpiredRelease(product=release.product, release=release.release,
                          interface_version=release.interface_version,
                          committed_at=release.committed_at, expired_at=expired_at,
                          vacuum="v1", rule="keep 2 newest")


TEN = [made(n, n) for n in range(1, 11)]  # release n committed on day n


def test_keep_n_keeps_the_newest() -> None:
    chosen = plan(TEN, [], HistoryRule(keep=3), {}, T0 + 30 * DAY)
    assert sorted(chosen.kept) == [8, 9, 10]
    assert sorted(chosen.expired) == list(range(1, 8))
    assert chosen.kept[10].startswith("the latest")


def test_max_age_counts_from_when_a_release_was_superseded() -> None:
    # release 1 was committed 30 days ago but was current until 2 days ago: an as_of read of
    # 3 days ago needs it
    releases = [made(1, 0), made(2, 28)]
    now = T0 + 30 * DAY
    assert plan(releases, [], HistoryRule(max_age=3 * DAY), {}, now).expired == []
    assert plan(releases, [], HistoryRule(max_age=DAY), {}, now).expired == [1]


def test_with_both_rules_a_release_goes_only_when_neither_keeps_it() -> None:
    now = T0 + 10 * DAY + DAY / 2  # release n was superseded on day n + 1
    rule = HistoryRule(keep=2, max_age=4 * DAY)  # superseded after day 6.5: 6..9
    assert sorted(plan(TEN, [], rule, {}, now).kept) == [6, 7, 8, 9, 10]
    rule = HistoryRule(keep=6, max_age=DAY)
    assert sorted(plan(TEN, [], rule, {}, now).kept) == [5, 6, 7, 8, 9, 10]


def test_pins_majors_and_the_latest_are_never_expired() -> None:
    releases = [made(1, 1), made(2, 2), made(3, 3, "2.0.0"), made(4, 4, "2.1.0"),
                made(5, 5, "3.0.0")]
    chosen = plan(releases, [], HistoryRule(keep=1, max_age=DAY), {3: ["shop.daily_totals"]},
                  T0 + 90 * DAY)
    assert chosen.kept == {5: "the latest; one of the 1 newest",
                           4: "the newest of v2",
                           3: "pinned by shop.daily_totals",
                           2: "the newest of v1"}
    assert chosen.expired == [1]


def test_without_a_rule_every_release_is_kept() -> None:
    chosen = plan(TEN, [], HistoryRule(), {}, T0 + 900 * DAY)
    assert not chosen.expired and len(chosen.kept) == 10
    assert plan([], [], HistoryRule(keep=1), {}, T0).kept == {}


def test_supersession_counts_expired_successors(tmp_path: Path) -> None:
    # release 1 is pinned, 2 expired long ago: 1 was superseded by 2's commit, not 3's
    releases = [made(1, 1), made(3, 50)]
    chosen = plan(releases, [tombstone(made(2, 2))], HistoryRule(max_age=5 * DAY), {},
                  T0 + 52 * DAY)
    assert chosen.expired == [1]


# --- storage ----------------------------------------------------------------------------------


@pytest.fixture
def storage(tmp_path: Path) -> ProductStorage:
    store = ProductStorage(tmp_path, "shop.orders")
    for release in TEN[:5]:
        store.commit(release)
    return store


def test_expired_releases_leave_listings_and_reads_name_the_oldest(
        storage: ProductStorage) -> None:
    for release in TEN[:3]:
        storage.expire(tombstone(release))
    assert storage.release_numbers() == [4, 5]
    assert [r.release for r in storage.releases()] == [4, 5]
    assert storage.latest() is not None and storage.latest().release == 5
    assert storage.oldest() is not None and storage.oldest().release == 4
    assert [t.release for t in storage.expired_releases()] == [1, 2, 3]
    with pytest.raises(ReleaseExpiredError) as info:
        storage.release(2)
    assert info.value.code == "release_expired"
    assert isinstance(info.value, NotFoundError)
    assert "shop.orders release 2 expired on 2026-04-11" in info.value.message
    assert "the oldest available is release 4" in info.value.message
    assert "quanta versions shop.orders" in (info.value.hint or "")
    with pytest.raises(NotFoundError, match="has no release 9") as missing:
        storage.release(9)
    assert "releases 4..5" in (missing.value.hint or "")


def test_as_of_a_moment_of_an_expired_release_is_refused_not_answered_wrongly(
        storage: ProductStorage) -> None:
    storage.expire(tombstone(TEN[0]))
    storage.expire(tombstone(TEN[2]))  # 2 stays (say, pinned): a gap at 3
    assert storage.release_as_of(T0) is None  # before the first release ever
    with pytest.raises(ReleaseExpiredError, match=r"at 2026-01-02.* is release 1, which "
                       r"expired .*the oldest available is release 2"):
        storage.release_as_of(T0 + 1.5 * DAY)
    assert storage.release_as_of(T0 + 2.5 * DAY).release == 2
    with pytest.raises(ReleaseExpiredError, match="is release 3"):
        storage.release_as_of(T0 + 3.5 * DAY)
    assert storage.release_as_of(T0 + 9 * DAY).release == 5


def test_a_tombstone_decides_even_while_the_manifest_is_still_there(
        storage: ProductStorage) -> None:
    # a vacuum killed between writing the tombstone and removing the manifest
    write_tombstone(storage.expired_folder, tombstone(TEN[0]))
    assert (storage.release_folder / "000001.json").exists()
    assert storage.release_numbers() == [2, 3, 4, 5]
    with pytest.raises(ReleaseExpiredError):
        storage.release(1)
    storage.expire(tombstone(TEN[0]))  # finishing is idempotent
    assert not (storage.release_folder / "000001.json").exists()
    assert [t.release for t in storage.expired_releases()] == [1]
