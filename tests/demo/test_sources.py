"""Tests for the Daff Inc. operational source data generator."""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from statistics import mean, median
from typing import Any

import pytest

from quanta.demo.sources import (
    COUNTRIES,
    DEVICES,
    GENRES,
    PLANS,
    PLAYS_WINDOW_END,
    PLAYS_WINDOW_START,
    SourceSummary,
    generate_sources,
)

EVENTS = 20_000


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> SourceSummary:
    return generate_sources(tmp_path_factory.mktemp("daff"), events=EVENTS, seed=7)


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def _artists(summary: SourceSummary) -> list[dict[str, str]]:
    with summary.artists_csv.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _tracks(summary: SourceSummary) -> list[dict[str, Any]]:
    with summary.tracks_ndjson.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _plays(summary: SourceSummary) -> list[tuple[Any, ...]]:
    return _rows(summary.player_db, "SELECT * FROM plays ORDER BY rowid")


def _accounts(summary: SourceSummary) -> dict[str, tuple[Any, ...]]:
    rows = _rows(summary.subscriptions_db, "SELECT * FROM accounts")
    return {row[0]: row for row in rows}


def _contents(summary: SourceSummary) -> dict[str, Any]:
    return {
        "artists.csv": summary.artists_csv.read_bytes(),
        "tracks.ndjson": summary.tracks_ndjson.read_bytes(),
        "plays": _plays(summary),
        "accounts": _rows(summary.subscriptions_db, "SELECT * FROM accounts ORDER BY listener_id"),
        "plan_prices": _rows(summary.subscriptions_db, "SELECT * FROM plan_prices ORDER BY plan"),
    }


def test_layout(summary: SourceSummary) -> None:
    root = summary.root
    assert root.name == "sources"
    assert summary.player_db == root / "player.db"
    assert summary.subscriptions_db == root / "subscriptions.db"
    assert summary.artists_csv == root / "catalog" / "artists.csv"
    assert summary.tracks_ndjson == root / "catalog" / "tracks.ndjson"
    assert all(p.is_file() for p in summary.paths)
    assert not list(root.rglob("*.tmp"))
    assert _artists(summary)[0].keys() == {"artist_id", "name", "country", "genre", "signed_on"}
    assert list(_tracks(summary)[0]) == [
        "track_id", "artist_id", "title", "duration_ms", "released_on", "explicit"]
    columns = [r[1:3] for r in _rows(summary.player_db, "PRAGMA table_info(plays)")]
    assert columns == [("play_id", "TEXT"), ("listener_id", "TEXT"), ("track_id", "TEXT"),
                       ("played_at", "TEXT"), ("ms_played", "INTEGER"), ("device", "TEXT"),
                       ("country", "TEXT")]
    columns = [r[1:3] for r in _rows(summary.subscriptions_db, "PRAGMA table_info(accounts)")]
    assert [name for name, _ in columns] == [
        "listener_id", "email", "birth_date", "country", "plan", "signed_up_at", "cancelled_at",
        "marketing_consent"]


def test_deterministic(summary: SourceSummary, tmp_path: Path) -> None:
    again = generate_sources(tmp_path / "same", events=EVENTS, seed=7)
    assert again.row_counts() == summary.row_counts()
    assert _contents(again) == _contents(summary)

    other = _contents(generate_sources(tmp_path / "other", events=EVENTS, seed=8))
    first = _contents(summary)
    assert all(other[name] != first[name] for name in ("artists.csv", "tracks.ndjson", "plays",
                                                        "accounts"))
    assert other["plan_prices"] == first["plan_prices"]


def test_regenerating_replaces_files(tmp_path: Path) -> None:
    generate_sources(tmp_path, events=EVENTS, seed=1)
    again = generate_sources(tmp_path, events=EVENTS // 2, seed=2)
    assert len(_plays(again)) == EVENTS // 2
    assert sorted(p.name for p in again.root.rglob("*") if p.is_file()) == [
        "artists.csv", "player.db", "subscriptions.db", "tracks.ndjson"]


def test_row_counts(summary: SourceSummary) -> None:
    assert summary.row_counts() == {"plays": EVENTS, "artists": 200, "tracks": 2_000,
                                    "accounts": 500}
    assert len(_plays(summary)) == summary.plays
    assert len(_artists(summary)) == summary.artists
    assert len(_tracks(summary)) == summary.tracks
    assert len(_accounts(summary)) == summary.accounts
    assert _rows(summary.subscriptions_db, "SELECT * FROM plan_prices ORDER BY plan") == [
        ("family", 1799, "USD"), ("free", 0, "USD"), ("premium", 1099, "USD"),
        ("student", 599, "USD")]


def test_sizes_scale_with_events(tmp_path: Path) -> None:
    bigger = generate_sources(tmp_path, events=150_000, seed=3)
    assert bigger.row_counts() == {"plays": 150_000, "artists": 200, "tracks": 2_000,
                                   "accounts": 3_000}
    with pytest.raises(ValueError):
        generate_sources(tmp_path, events=0)


def test_referential_integrity(summary: SourceSummary) -> None:
    artist_ids = [a["artist_id"] for a in _artists(summary)]
    tracks = _tracks(summary)
    track_ids = [t["track_id"] for t in tracks]
    accounts = _accounts(summary)
    assert len(set(artist_ids)) == len(artist_ids)
    assert len(set(track_ids)) == len(track_ids)
    assert {t["artist_id"] for t in tracks} == set(artist_ids)  # every artist has a track
    plays = _plays(summary)
    assert {p[1] for p in plays} <= accounts.keys()
    assert {p[2] for p in plays} <= set(track_ids)
    assert all(value is not None for p in plays for value in p)


def test_plays_are_coherent(summary: SourceSummary) -> None:
    plays = _plays(summary)
    play_ids = [p[0] for p in plays]
    assert len(set(play_ids)) == len(play_ids)
    assert all(re.fullmatch(r"p\d{8}", i) for i in play_ids)
    played = [datetime.strptime(p[3], "%Y-%m-%d %H:%M:%S.%f") for p in plays]
    assert all(len(p[3]) == 23 for p in plays)
    assert played == sorted(played)
    assert PLAYS_WINDOW_START <= played[0] <= played[-1] < PLAYS_WINDOW_END
    assert {p[5] for p in plays} == set(DEVICES)
    assert {p[6] for p in plays} <= set(COUNTRIES)

    accounts = _accounts(summary)
    released = {t["track_id"]: t["released_on"] for t in _tracks(summary)}
    for p in plays:
        account = accounts[p[1]]
        assert account[5] <= p[3] and (account[6] is None or p[3] < account[6])
        assert released[p[2]] <= p[3][:10]
    home = sum(p[6] == accounts[p[1]][3] for p in plays)
    assert home / len(plays) > 0.9

    hours = Counter(int(p[3][11:13]) for p in plays)
    assert sum(hours[h] for h in range(17, 24)) > sum(hours[h] for h in range(3, 10))


def test_popularity_is_skewed(summary: SourceSummary) -> None:
    plays = _plays(summary)
    top_tracks = Counter(p[2] for p in plays).most_common()
    assert top_tracks[0][1] > 20 * len(plays) / summary.tracks
    top_listeners = Counter(p[1] for p in plays).most_common()
    assert top_listeners[0][1] > 5 * top_listeners[len(top_listeners) // 2][1]


def test_ms_played_and_the_planted_wrinkle(summary: SourceSummary) -> None:
    duration = {t["track_id"]: t["duration_ms"] for t in _tracks(summary)}
    plays = _plays(summary)
    assert all(p[4] >= 0 for p in plays)
    skips = sum(p[4] < 30_000 for p in plays) / len(plays)
    assert 0.2 < skips < 0.3
    overshoot = [p for p in plays if p[4] > duration[p[2]]]
    assert 0 < len(overshoot) <= 0.001 * len(plays)
    assert len(overshoot) == round(EVENTS * 0.0005)


def test_accounts(summary: SourceSummary) -> None:
    accounts = list(_accounts(summary).values())
    emails = [a[1] for a in accounts]
    assert len(set(emails)) == len(emails)
    assert all(re.fullmatch(r"[a-z]+\.[a-z]+\d+@[a-z]+\.example", e) for e in emails)
    assert all(re.fullmatch(r"l\d{6}", a[0]) for a in accounts)
    for a in accounts:
        birth = datetime.strptime(a[2], "%Y-%m-%d")
        age = (PLAYS_WINDOW_END - birth).days / 365.25
        assert 13 <= age <= 80
        signed_up = datetime.strptime(a[5], "%Y-%m-%d %H:%M:%S")
        assert signed_up < PLAYS_WINDOW_END
        if a[6] is not None:
            assert signed_up < datetime.strptime(a[6], "%Y-%m-%d %H:%M:%S") < PLAYS_WINDOW_END
    assert {a[3] for a in accounts} <= set(COUNTRIES)
    assert {a[4] for a in accounts} == set(PLANS)
    assert {a[7] for a in accounts} == {0, 1}
    cancelled = sum(a[6] is not None for a in accounts) / len(accounts)
    assert 0.08 < cancelled < 0.22


def test_catalog(summary: SourceSummary) -> None:
    artists = _artists(summary)
    assert all(re.fullmatch(r"a\d{4}", a["artist_id"]) for a in artists)
    assert all(a["name"] and a["country"] in COUNTRIES and a["genre"] in GENRES for a in artists)
    signed = {a["artist_id"]: a["signed_on"] for a in artists}
    for t in _tracks(summary):
        assert re.fullmatch(r"t\d{6}", t["track_id"])
        assert t["title"]
        assert 90_000 <= t["duration_ms"] <= 420_000
        assert isinstance(t["explicit"], bool)
        assert signed[t["artist_id"]] <= t["released_on"] < PLAYS_WINDOW_END.strftime("%Y-%m-%d")


def _sessions(summary: SourceSummary) -> list[list[tuple[Any, ...]]]:
    """Plays grouped as listening.listener_sessions does: a play more than 30 minutes after
    the end of the listener's earlier plays opens a new session."""
    by_listener: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for p in _plays(summary):
        by_listener[p[1]].append(p)
    sessions: list[list[tuple[Any, ...]]] = []
    for plays in by_listener.values():
        ended = datetime.min
        for p in plays:  # in played_at order
            start = datetime.strptime(p[3], "%Y-%m-%d %H:%M:%S.%f")
            if start - ended > timedelta(minutes=30):
                sessions.append([])
            sessions[-1].append(p)
            ended = max(ended, start + timedelta(milliseconds=p[4]))
    return sessions


def test_plays_cluster_into_sessions(summary: SourceSummary) -> None:
    sessions = _sessions(summary)
    sizes = [len(s) for s in sessions]
    assert 5 <= mean(sizes) <= 20
    assert median(sizes) < mean(sizes) and max(sizes) > 50  # skewed, with some long sessions
    assert sum(len({p[5] for p in s}) == 1 for s in sessions) / len(sessions) > 0.8

    # Back to back: the next play starts when the previous one stops, plus up to 20 s; only
    # the planted overshoot (up to 15 s) can make a play seem to end after the next began.
    gaps = []
    for s in sessions:
        starts = [datetime.strptime(p[3], "%Y-%m-%d %H:%M:%S.%f") for p in s]
        gaps += [(b - a).total_seconds() * 1000 - p[4]
                 for a, b, p in zip(starts, starts[1:], s, strict=False)]
    assert min(gaps) > -15_000
    assert sum(0 <= g <= 20_000 for g in gaps) / len(gaps) > 0.97

    # Heavy listeners have more sessions, not longer ones.
    per_listener = Counter(s[0][1] for s in sessions)
    plays = Counter(p[1] for p in _plays(summary))
    heavy = [listener for listener, _ in plays.most_common(20)]
    light = [listener for listener, count in plays.items() if count <= median(plays.values())]
    assert mean(per_listener[h] for h in heavy) > 3 * mean(per_listener[x] for x in light)


def test_churn_depends_on_plan(summary: SourceSummary) -> None:
    accounts = list(_accounts(summary).values())

    def churn(*plans: str) -> float:
        return mean(a[6] is not None for a in accounts if a[4] in plans)

    assert churn("free") > 1.3 * churn("premium")
    assert churn("free", "student") > 1.3 * churn("premium", "family")


def test_genre_taste_depends_on_country(summary: SourceSummary) -> None:
    genre = {a["artist_id"]: a["genre"] for a in _artists(summary)}
    track_genre = {t["track_id"]: genre[t["artist_id"]] for t in _tracks(summary)}
    home = {a[0]: a[3] for a in _accounts(summary).values()}
    plays = _plays(summary)

    def share(g: str, countries: set[str]) -> float:
        mine = [p for p in plays if home[p[1]] in countries]
        return sum(track_genre[p[2]] == g for p in mine) / len(mine)

    assert share("k_pop", {"KR"}) > 2 * share("k_pop", set(COUNTRIES))
    assert share("latin", {"MX", "BR", "ES"}) > 1.5 * share("latin", set(COUNTRIES))
