"""Operational source data of Daff Inc., the fictional music streamer of the demo mesh.

Daff runs three source systems whose raw output the demo's data products consume:

- the player app, logging every play to ``player.db`` (SQLite, table ``plays``);
- the music catalog, exported as ``catalog/artists.csv`` and ``catalog/tracks.ndjson``;
- the subscription service, ``subscriptions.db`` (SQLite, ``accounts`` and ``plan_prices``).

Everything is derived from one seed, so a given ``(events, seed)`` always yields the same data.
Plays come in listening sessions: runs of back-to-back plays, mostly in the listener's local
evening, on one device. Heavy listeners have more sessions, and churn follows plan and activity.
The data is clean except for one planted wrinkle that the demo's quality checks should catch:
about 0.05% of plays report ``ms_played`` beyond the track's duration (a player bug).
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from adbc_driver_sqlite import dbapi

__all__ = ["COUNTRIES", "DEVICES", "GENRES", "PLANS", "PLAYS_WINDOW_END", "PLAYS_WINDOW_START",
           "SourceSummary", "generate_sources"]

Array = npt.NDArray[Any]


def _split(words: str) -> tuple[str, ...]:
    return tuple(w.replace("_", " ") for w in words.split())


#: Plays cover the 120 days before this instant (UTC, exclusive): the first day of the current
#: month, so the demo's data stays recent (within its products' retention) whenever it is
#: generated, and is the same all month.
PLAYS_WINDOW_END = datetime.now(UTC).replace(tzinfo=None, day=1, hour=0, minute=0, second=0,
                                             microsecond=0)
PLAYS_WINDOW_START = PLAYS_WINDOW_END - timedelta(days=120)

DAY_MS = 86_400_000
_EPOCH = datetime(1970, 1, 1)
_START_DAY = (PLAYS_WINDOW_START - _EPOCH).days
_END_DAY = (PLAYS_WINDOW_END - _EPOCH).days
_START_MS = _START_DAY * DAY_MS
_END_MS = _END_DAY * DAY_MS

COUNTRIES = _split("US GB DE SE BR MX FR JP IN KR NG ES IT CA AU")
_COUNTRY_P = np.array([24, 8, 8, 4, 9, 6, 6, 5, 8, 3, 3, 4, 4, 4, 4]) / 100
# One representative offset per country is enough to shape the daily rhythm; DST is ignored.
_UTC_OFFSET_H = np.array([-5, 0, 1, 1, -3, -6, 1, 9, 5.5, 9, 1, 1, 1, -5, 10])

GENRES = ("pop", "rock", "hip_hop", "electronic", "jazz", "classical", "folk", "latin", "k_pop",
          "indie")
_GENRE_P = np.array([20, 14, 15, 12, 5, 4, 6, 8, 5, 11]) / 100
# Local tastes: how much more a country's listeners play a genre than the world does.
_TASTE = np.ones((len(COUNTRIES), len(GENRES)))
for _c, _g, _x in (("KR", "k_pop", 5), ("JP", "k_pop", 2), ("MX", "latin", 4), ("BR", "latin", 3),
                   ("ES", "latin", 3), ("US", "hip_hop", 1.4), ("NG", "hip_hop", 1.6),
                   ("DE", "electronic", 1.6), ("SE", "electronic", 1.4), ("GB", "indie", 1.3)):
    _TASTE[COUNTRIES.index(_c), GENRES.index(_g)] = _x
_EXPLICIT_P = np.array([0.15, 0.12, 0.55, 0.08, 0.02, 0.0, 0.04, 0.2, 0.05, 0.12])
_DURATION_SCALE = np.array([1.0, 1.05, 1.0, 1.15, 1.35, 1.7, 1.0, 1.0, 0.95, 1.0])

DEVICES = ("ios", "android", "web", "desktop", "smart_speaker")
_DEVICE_P = np.array([31, 33, 11, 15, 10]) / 100

PLANS = ("free", "premium", "family", "student")
_PLAN_P = np.array([55, 28, 10, 7]) / 100
_PLAN_PRICE_CENTS = (0, 1099, 1799, 599)
# Chance of having cancelled for an average listener on each plan; the least active listeners
# cancel four times as often as the most active. About 15% of all accounts overall.
_CANCEL_P = np.array([0.21, 0.08, 0.05, 0.25])

# Sessions hold geometric numbers of plays around the listener's typical length (median
# _SESSION_PLAYS); plays follow each other with up to _PLAY_GAP_MS of silence, and a listener's
# sessions are at least _SESSION_GAP_MS (plus an exponential extra) apart.
_SESSION_PLAYS, _PLAY_GAP_MS, _SESSION_GAP_MS = 14, 20_000, 20 * 60_000

# Listening by local hour of day: quiet nights, a commute bump, and an evening peak.
_HOURLY_P = np.array([2.2, 1.4, 0.8, 0.5, 0.4, 0.5, 1.0, 2.0, 3.0, 3.0, 2.8, 2.9,
                      3.3, 3.2, 3.0, 3.1, 3.5, 4.3, 5.2, 6.0, 6.4, 6.0, 4.9, 3.4])
_HOURLY_P = _HOURLY_P / _HOURLY_P.sum()

# Word lists for names and titles; '_' stands for a space inside one entry.
_WORDS: dict[str, tuple[str, ...]] = {
    "adj": _split(
        "Velvet Electric Silent Golden Neon Paper Hollow Crimson Midnight Wild Lunar Broken Static "
        "Honey Iron Glass Quiet Restless Silver Burning Frozen Northern Tender Violet Cosmic "
        "Dusty Gentle Lucky Sleepy Secret Marble Faded Bright Savage Little Endless Copper Blue"),
    "noun": _split(
        "Harbor Fox Tide Engine Garden Signal Comet Canyon River Lantern Mirror Orchard Avenue "
        "Echo Ember Meadow Satellite Valley Window Forest Parade Cathedral Motel Atlas Horizon "
        "Arcade Lighthouse Ocean Desert Carousel Season Machine Highway Balloon Thunder Shadow"),
    "plural": _split(
        "Foxes Wolves Tides Engines Sparrows Comets Lanterns Mirrors Echoes Embers Satellites "
        "Rivers Kings Ghosts Daughters Strangers Pilots Owls Tigers Dreamers Sailors Monarchs "
        "Hearts Rebels Saints Robots Bandits Cowboys Astronauts Machines"),
    "verb": _split(
        "Chasing Dancing Falling Waiting Running Dreaming Burning Calling Holding Leaving Finding "
        "Drifting Breaking Saving Counting Kissing"),
    "place": _split(
        "Tokyo Lagos Berlin Lisbon Memphis Seoul Havana Brooklyn Paris Sunday Midnight the_Sea "
        "the_City Nowhere Home Mexico"),
    "first": _split(
        "Ada Noah Mia Liam Sofia Lucas Emma Hiroshi Priya Chloe Mateo Olivia Jonas Amara Yuna "
        "Diego Freya Arjun Lena Oscar Zoe Kofi Ines Felix Maya Leo Hana Omar Nora Elias Ava Tariq "
        "Clara Minho Isla Sven Lucia Rafael Aiko Chidi"),
    "last": _split(
        "Smith Garcia Mueller Johansson Silva Hernandez Martin Tanaka Patel Kim Okafor Lopez "
        "Rossi Tremblay Wilson Brown Schmidt Andersson Santos Dubois Sato Sharma Park Adeyemi "
        "Fernandez Bianchi Roy Taylor Nguyen Lee Jones Costa Moreau Suzuki Singh Choi Eze Romero"),
}
_ARTIST_TEMPLATES = (("The {} {}", ("adj", "plural")), ("{} {}", ("adj", "noun")),
                     ("{} and the {}", ("first", "plural")), ("{} of {}", ("plural", "place")),
                     ("{} {}", ("first", "last")), ("{} {}", ("noun", "noun")))
_TITLE_TEMPLATES = (("{} {}", ("adj", "noun")), ("{} {}", ("verb", "plural")),
                    ("{} in {}", ("noun", "place")), ("{} the {}", ("verb", "noun")),
                    ("{} {}", ("adj", "place")), ("{} Like {}", ("noun", "plural")),
                    ("{}", ("noun",)))
_EMAIL_DOMAINS = ("mail.example", "inbox.example", "post.example", "daffmail.example")


@dataclass(frozen=True, slots=True)
class SourceSummary:
    """What :func:`generate_sources` wrote: file locations and row counts."""

    root: Path
    player_db: Path
    subscriptions_db: Path
    artists_csv: Path
    tracks_ndjson: Path
    plays: int
    artists: int
    tracks: int
    accounts: int

    @property
    def paths(self) -> tuple[Path, ...]:
        """All files written, in a stable order."""
        return (self.player_db, self.subscriptions_db, self.artists_csv, self.tracks_ndjson)

    def row_counts(self) -> dict[str, int]:
        """Row counts keyed by table name."""
        return {"plays": self.plays, "artists": self.artists, "tracks": self.tracks,
                "accounts": self.accounts}


@dataclass(frozen=True, slots=True)
class _Catalog:
    artists: pa.Table
    tracks: pa.Table
    released_day: Array  # tracks are in release order
    duration_ms: Array
    genre: Array


@dataclass(frozen=True, slots=True)
class _Accounts:
    table: pa.Table
    country: Array
    device: Array
    signup_ms: Array
    end_ms: Array  # cancellation, or the end of the plays window for active accounts
    cancelled: Array
    intensity: Array  # relative plays per open day


def generate_sources(root: Path, events: int = 1_000_000, seed: int = 7) -> SourceSummary:
    """Write Daff's operational source data under ``root / "sources"``.

    ``events`` is the number of plays; catalog and account sizes scale with it. The same
    ``(events, seed)`` always produces identical files and table contents. Existing files are
    replaced, each one only once it has been fully written.
    """
    if events < 1:
        raise ValueError(f"events must be positive, got {events}")
    n_artists = min(max(200, events // 2000), 5_000)
    n_tracks = min(max(2_000, events // 100), 50_000)
    n_listeners = min(max(500, events // 50), 100_000)
    # Independent streams, so a change to one system's generator leaves the others unchanged.
    catalog_rng, accounts_rng, plays_rng = np.random.default_rng(seed).spawn(3)

    catalog = _build_catalog(catalog_rng, n_artists, n_tracks)
    accounts = _build_accounts(accounts_rng, n_listeners)
    plays = _build_plays(plays_rng, events, catalog, accounts)

    out = Path(root) / "sources"
    (out / "catalog").mkdir(parents=True, exist_ok=True)
    summary = SourceSummary(
        root=out, player_db=out / "player.db", subscriptions_db=out / "subscriptions.db",
        artists_csv=out / "catalog" / "artists.csv",
        tracks_ndjson=out / "catalog" / "tracks.ndjson",
        plays=plays.num_rows, artists=n_artists, tracks=n_tracks, accounts=n_listeners,
    )
    _write_artists_csv(summary.artists_csv, catalog.artists)
    _write_tracks_ndjson(summary.tracks_ndjson, catalog.tracks)
    plan_prices = pa.table({"plan": list(PLANS), "monthly_price_cents": list(_PLAN_PRICE_CENTS),
                            "currency": ["USD"] * len(PLANS)})
    _write_sqlite(summary.subscriptions_db, [(_PLAN_PRICES_DDL, "plan_prices", plan_prices),
                                             (_ACCOUNTS_DDL, "accounts", accounts.table)])
    _write_sqlite(summary.player_db, [(_PLAYS_DDL, "plays", plays)])
    return summary


def _build_catalog(rng: np.random.Generator, n_artists: int, n_tracks: int) -> _Catalog:
    country = rng.choice(len(COUNTRIES), n_artists, p=_COUNTRY_P)
    genre = rng.choice(len(GENRES), n_artists, p=_GENRE_P)
    # Scenes cluster geographically, which makes genre-by-country breakdowns look plausible.
    korean = (genre == GENRES.index("k_pop")) & (rng.random(n_artists) < 0.85)
    country[korean] = COUNTRIES.index("KR")
    latin = (genre == GENRES.index("latin")) & (rng.random(n_artists) < 0.8)
    latin_countries = np.array([COUNTRIES.index(c) for c in ("MX", "BR", "ES")])
    country[latin] = rng.choice(latin_countries, int(latin.sum()))
    signed_day = rng.integers(_day("1998-01-01"), _END_DAY - 153, n_artists)
    artists = pa.table({
        "artist_id": _ids("a", n_artists, 4),
        "name": _compose(rng, _ARTIST_TEMPLATES, n_artists),
        "country": pa.array(COUNTRIES).take(country),
        "genre": pa.array(GENRES).take(genre),
        "signed_on": _date_strings(signed_day),
    })

    # Every artist gets at least one track; beyond that a few prolific artists dominate.
    artist_of = np.concatenate([
        rng.permutation(n_artists),
        rng.choice(n_artists, n_tracks - n_artists, p=_zipf(rng, n_artists, 0.8)),
    ])
    track_genre = genre[artist_of]
    first_day = signed_day[artist_of]
    back_catalog = first_day + (rng.random(n_tracks) ** 0.7 * (_START_DAY - first_day))
    # A few new releases land inside the plays window, so their plays start mid-window.
    fresh = rng.random(n_tracks) < 0.06
    released = np.where(fresh, rng.integers(_START_DAY, _END_DAY, n_tracks),
                        back_catalog.astype(np.int64))
    duration = rng.lognormal(np.log(205_000), 0.25, n_tracks) * _DURATION_SCALE[track_genre]
    duration = np.clip(duration, 90_000, 420_000).astype(np.int64)
    explicit = rng.random(n_tracks) < _EXPLICIT_P[track_genre]
    titles = np.array(_compose(rng, _TITLE_TEMPLATES, n_tracks), dtype=object)

    order = np.lexsort((artist_of, released))  # track ids follow release order
    tracks = pa.table({
        "track_id": _ids("t", n_tracks, 6),
        "artist_id": artists.column("artist_id").take(artist_of[order]),
        "title": titles[order].tolist(),
        "duration_ms": duration[order],
        "released_on": _date_strings(released[order]),
        "explicit": explicit[order],
    })
    return _Catalog(artists, tracks, released[order], duration[order], track_genre[order])


def _build_accounts(rng: np.random.Generator, n: int) -> _Accounts:
    country = rng.choice(len(COUNTRIES), n, p=_COUNTRY_P)
    year = 365.25
    # Ages at the end of the window, 13..80, skewed towards listeners in their twenties.
    age_days = (13 * year + 30 + rng.beta(2.0, 4.5, n) * (67 * year - 60)).astype(np.int64)
    birth_day = _END_DAY - age_days
    # Nobody signs up before Daff launched or before turning 13.
    earliest = np.maximum(_day("2016-03-01"), birth_day + int(np.ceil(13 * year))) * 86_400
    latest = (_END_DAY - 1) * 86_400
    signup_s = earliest + (np.sqrt(rng.random(n)) * (latest - earliest)).astype(np.int64)
    plan = rng.choice(len(PLANS), n, p=_PLAN_P)
    plan[(plan == PLANS.index("student")) & (age_days > 28 * year)] = PLANS.index("premium")
    # Zipf-like listening intensity: a few heavy listeners, a long tail of light ones.
    activity_rank = rng.permutation(n)  # 0 is the most active listener
    intensity = (activity_rank + 1.0) ** -0.5
    cancelled = rng.random(n) < _CANCEL_P[plan] * (0.4 + 1.2 * activity_rank / n)
    cancel_s = signup_s + 3_600 + (rng.beta(1.3, 2.0, n) * (_END_MS // 1000 - signup_s - 3_600))
    cancel_s = cancel_s.astype(np.int64)

    first = np.array(_WORDS["first"], dtype=object)[rng.integers(0, len(_WORDS["first"]), n)]
    last = np.array(_WORDS["last"], dtype=object)[rng.integers(0, len(_WORDS["last"]), n)]
    domain = np.array(_EMAIL_DOMAINS, dtype=object)[rng.integers(0, len(_EMAIL_DOMAINS), n)]
    # A distinct number per account keeps emails unique whatever names are drawn.
    number = rng.permutation(n) + 1
    emails = [f"{f.lower()}.{s.lower()}{k}@{d}"
              for f, s, k, d in zip(first, last, number.tolist(), domain, strict=True)]
    cancelled_at = pc.if_else(pa.array(cancelled), _timestamp_strings(cancel_s * 1000),
                              pa.scalar(None, pa.string()))
    table = pa.table({
        "listener_id": _ids("l", n, 6),
        "email": emails,
        "birth_date": _date_strings(birth_day),
        "country": pa.array(COUNTRIES).take(country),
        "plan": pa.array(PLANS).take(plan),
        "signed_up_at": _timestamp_strings(signup_s * 1000),
        "cancelled_at": cancelled_at,
        "marketing_consent": (rng.random(n) < 0.38).astype(np.int64),
    })
    device = rng.choice(len(DEVICES), n, p=_DEVICE_P)
    end_ms = np.where(cancelled, cancel_s * 1000, _END_MS)
    return _Accounts(table, country, device, signup_s * 1000, end_ms, cancelled, intensity)


def _build_plays(rng: np.random.Generator, n: int, catalog: _Catalog,
                 accounts: _Accounts) -> pa.Table:
    # Whole days of the window (0..120) each account is open on; all its plays fall inside.
    # Times below are in ms since the window's start.
    first_day = -(-(np.maximum(accounts.signup_ms, _START_MS) - _START_MS) // DAY_MS)
    end_day = (np.minimum(accounts.end_ms, _END_MS) - _START_MS) // DAY_MS
    open_days = (end_day - first_day) * (end_day - first_day >= 3)
    weight = accounts.intensity * open_days
    per_listener = rng.multinomial(n, weight / weight.sum())
    listener = np.repeat(np.arange(weight.size), per_listener)  # plays grouped by listener

    # Split each listener's plays into sessions of geometric length around their own typical
    # length; the listener's first play opens their first session.
    typical = np.clip(rng.lognormal(np.log(_SESSION_PLAYS), 0.5, weight.size), 2, 80)
    opens = rng.random(n) < 1 / typical[listener]
    opens[(np.cumsum(per_listener) - per_listener)[per_listener > 0]] = True
    session = np.cumsum(opens) - 1
    s_first = np.flatnonzero(opens)
    s_last = np.append(s_first[1:] - 1, n - 1)
    s_listener = listener[s_first]
    n_sessions = s_first.size

    # Tentative session starts: an open day (churners fade out before they cancel) and a local
    # hour of the daily rhythm. A time-zone shift off the open days moves it by a whole day.
    lo, hi = first_day[s_listener], end_day[s_listener]
    position = rng.random(n_sessions)
    position = np.where(accounts.cancelled[s_listener], 1 - np.sqrt(1 - position), position)
    home = accounts.country[s_listener]
    start = ((lo + (position * (hi - lo)).astype(np.int64)) * DAY_MS
             + rng.choice(24, n_sessions, p=_HOURLY_P) * 3_600_000
             + rng.integers(0, 3_600_000, n_sessions)
             - (_UTC_OFFSET_H[home] * 3_600_000).astype(np.int64))
    lo, hi = lo * DAY_MS, hi * DAY_MS
    start += DAY_MS * (start < lo) - DAY_MS * (start >= hi)

    # Tracks by popularity and the home country's taste, among those out on the day: one
    # cumulative distribution per country, end to end; tracks are in release order, so those
    # out on a day are a prefix of each country's block. Sessions only move later below, but
    # for the rare one pulled back from the end of the open days, whose tracks are redrawn.
    released, n_tracks = catalog.released_day - _START_DAY, catalog.released_day.size
    cdf = np.cumsum((_zipf(rng, n_tracks, 0.9) * _TASTE[:, catalog.genre]).ravel())
    base = np.append(0.0, cdf[n_tracks - 1::n_tracks][:-1])

    def pick(country: Array, day: Array) -> Array:
        out = np.searchsorted(released, day, side="right")  # at least one: the back catalog
        x = base[country] + rng.random(day.size) * (cdf[country * n_tracks + out - 1]
                                                    - base[country])
        return np.minimum(np.searchsorted(cdf, x, side="right") - country * n_tracks, out - 1)

    track = pick(home[session], start[session] // DAY_MS)
    duration = catalog.duration_ms[track]
    kind = rng.random(n)
    skipped = (rng.random(n) * 30_000).astype(np.int64)
    partial = 30_000 + (rng.random(n) * (duration - 30_000)).astype(np.int64)
    ms_played = np.where(kind < 0.25, skipped, np.where(kind < 0.6, partial, duration))

    # Back to back within a session: each play starts when the previous one stops, plus a gap.
    step = ms_played + rng.integers(0, _PLAY_GAP_MS + 1, n)
    before = np.cumsum(step) - step
    offset = before - before[s_first][session]
    span = offset[s_last] + ms_played[s_last]
    gap = _SESSION_GAP_MS + rng.exponential(2 * _SESSION_GAP_MS, n_sessions).astype(np.int64)
    start = _schedule(start, span, gap, s_listener, lo, hi)
    played = start[session] + offset
    stale = np.flatnonzero(released[track] > played // DAY_MS)
    if stale.size:  # a played track still has to be out; a shorter one ends the play early
        track[stale] = pick(home[session[stale]], played[stale] // DAY_MS)
        duration = catalog.duration_ms[track]
        ms_played[stale] = np.minimum(ms_played[stale], duration[stale])
    # The planted player bug: a few plays, complete ones as far as possible, overshoot the
    # track's length.
    overshoot = np.argpartition(rng.random(n) + (ms_played < duration), round(n * 0.0005))
    overshoot = overshoot[:round(n * 0.0005)]
    ms_played[overshoot] = duration[overshoot] + rng.integers(1, 15_000, overshoot.size)

    # Mostly one device a session, the listener's usual one; mostly played at home.
    s_device = np.where(rng.random(n_sessions) < 0.85, accounts.device[s_listener],
                        rng.choice(len(DEVICES), n_sessions, p=_DEVICE_P))
    device = np.where(rng.random(n) < 0.99, s_device[session],
                      rng.choice(len(DEVICES), n, p=_DEVICE_P))
    country = np.where(rng.random(n_sessions) < 0.97, home,
                       rng.choice(len(COUNTRIES), n_sessions, p=_COUNTRY_P))[session]

    order = np.argsort(played, kind="stable")
    return pa.table({
        "play_id": _ids("p", n, 8),
        "listener_id": accounts.table.column("listener_id").take(listener[order]),
        "track_id": catalog.tracks.column("track_id").take(track[order]),
        "played_at": _timestamp_strings(_START_MS + played[order], millis=True),
        "ms_played": ms_played[order],
        "device": pa.array(DEVICES).take(device[order]),
        "country": pa.array(COUNTRIES).take(country[order]),
    })


def _schedule(start: Array, span: Array, gap: Array, listener: Array, lo: Array,
              hi: Array) -> Array:
    """Move sessions as little as needed for a listener's sessions to keep ``gap`` apart and
    within ``[lo, hi)``: later, past the previous one, then back from ``hi``. Both passes are
    running maxima, per listener, of starts relative to the sessions before (after) them."""
    def running_max(values: Array, group: Array) -> Array:  # group: non-decreasing ints
        shift = (int(values.max()) - int(values.min()) + 1) * group
        return np.maximum.accumulate(values + shift) - shift

    order = np.lexsort((start, listener))
    s, who, lo, hi = start[order], listener[order], lo[order], hi[order]
    span, length = span[order], span[order] + gap[order]
    ahead = np.cumsum(length) - length
    ahead -= ahead[np.searchsorted(who, who)]  # from the listener's first session to this one
    s = running_max(np.maximum(s, lo) - ahead, who) + ahead
    behind = np.cumsum(length[::-1])[::-1]
    last = np.searchsorted(who, who, side="right") - 1
    behind += span[last] - behind[last]  # from this session's start to the last one's end
    s = -running_max(-np.minimum(s + behind, hi)[::-1], who.max() - who[::-1])[::-1] - behind
    out = np.empty_like(start)
    out[order] = np.maximum(np.minimum(s, hi - span), lo)
    return out


def _zipf(rng: np.random.Generator, n: int, exponent: float) -> Array:
    """Zipf-like probabilities over ``n`` items whose ranks are randomly shuffled."""
    weights = (rng.permutation(n) + 1.0) ** -exponent
    return weights / weights.sum()


def _compose(rng: np.random.Generator, templates: Sequence[tuple[str, tuple[str, ...]]],
             n: int) -> list[str]:
    """Fill randomly chosen templates with randomly chosen words."""
    which = rng.integers(0, len(templates), n)
    out = np.empty(n, dtype=object)
    for k, (template, slots) in enumerate(templates):
        rows = np.flatnonzero(which == k)
        columns = [np.array(_WORDS[s], dtype=object)[rng.integers(0, len(_WORDS[s]), rows.size)]
                   for s in slots]
        out[rows] = [template.format(*words) for words in zip(*columns, strict=True)]
    return list(out)


def _ids(prefix: str, n: int, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pa.array(np.arange(1, n + 1)).cast(pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _day(iso_date: str) -> int:
    return int(np.datetime64(iso_date, "D").astype(np.int64))


def _date_strings(days: Array) -> pa.Array:
    return pa.array(np.datetime_as_string(np.asarray(days).astype("datetime64[D]")))


def _timestamp_strings(ms: Array, *, millis: bool = False) -> pa.Array:
    """Format epoch milliseconds as 'YYYY-MM-DD HH:MM:SS[.mmm]'.

    Digits are written straight into a byte buffer: several times faster than strftime on a
    million values, and the window holds few distinct dates to format the slow way.
    """
    days, tod = np.divmod(np.asarray(ms, dtype=np.int64), DAY_MS)
    unique_days, day_index = np.unique(days, return_inverse=True)
    width = 23 if millis else 19
    buf = np.empty((days.size, width), dtype=np.uint8)
    dates = np.datetime_as_string(unique_days.astype("datetime64[D]")).astype("S10")
    buf[:, :10] = dates.view(np.uint8).reshape(-1, 10)[day_index]
    buf[:, [10, 13, 16, 19][: 4 if millis else 3]] = np.frombuffer(b" ::."[: 4 if millis else 3],
                                                                  dtype=np.uint8)
    fields = [(tod // 3_600_000, 11, 2), (tod // 60_000 % 60, 14, 2), (tod // 1000 % 60, 17, 2)]
    if millis:
        fields.append((tod % 1000, 20, 3))
    for value, start, digits in fields:
        for k in range(digits):
            buf[:, start + digits - 1 - k] = ord("0") + value // 10**k % 10
    return pa.array(buf.view(f"S{width}").ravel()).cast(pa.string())


_PLAYS_DDL = """CREATE TABLE plays (
    play_id TEXT NOT NULL PRIMARY KEY, listener_id TEXT NOT NULL, track_id TEXT NOT NULL,
    played_at TEXT NOT NULL, ms_played INTEGER NOT NULL, device TEXT NOT NULL,
    country TEXT NOT NULL)"""
_PLAN_PRICES_DDL = """CREATE TABLE plan_prices (
    plan TEXT NOT NULL PRIMARY KEY, monthly_price_cents INTEGER NOT NULL, currency TEXT NOT NULL)"""
_ACCOUNTS_DDL = """CREATE TABLE accounts (
    listener_id TEXT NOT NULL PRIMARY KEY, email TEXT NOT NULL UNIQUE, birth_date TEXT NOT NULL,
    country TEXT NOT NULL, plan TEXT NOT NULL REFERENCES plan_prices (plan),
    signed_up_at TEXT NOT NULL, cancelled_at TEXT,
    marketing_consent INTEGER NOT NULL CHECK (marketing_consent IN (0, 1)))"""


def _write_sqlite(path: Path, tables: Sequence[tuple[str, str, pa.Table]]) -> None:
    """Create a fresh SQLite database at ``path`` holding ``(ddl, name, data)`` tables."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    with dbapi.connect(str(tmp), autocommit=True) as conn, conn.cursor() as cur:
        # The file only becomes visible via os.replace once complete, so durability
        # safeguards while filling it would only cost time.
        cur.execute("PRAGMA journal_mode = OFF")
        cur.fetchall()
        cur.execute("PRAGMA synchronous = OFF")
        for ddl, name, data in tables:
            cur.execute(ddl)
            cur.adbc_ingest(name, data, mode="append")
    os.replace(tmp, path)


def _write_artists_csv(path: Path, artists: pa.Table) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(artists.column_names)
        writer.writerows(zip(*(c.to_pylist() for c in artists.columns), strict=True))
    os.replace(tmp, path)


def _write_tracks_ndjson(path: Path, tracks: pa.Table) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(row) + "\n" for row in tracks.to_pylist())
    os.replace(tmp, path)


@dataclass(frozen=True, slots=True)
class AppendedPlays:
    """What ``append_plays`` added to the player's database."""

    player_db: Path
    count: int
    first_id: str
    last_id: str
    total: int


def append_plays(root: Path, count: int, seed: int | None = None) -> AppendedPlays:
    """Append ``count`` new plays to the demo's player database, as the player backend would:
    new play ids after the last one, played in the minutes up to now by existing listeners of
    existing tracks (each new play copies a random earlier play's listener, track, device,
    country and length). One transaction: the source never holds half a batch."""
    if count < 1:
        raise ValueError(f"count must be positive, got {count}")
    player_db = Path(root) / "sources" / "player.db"
    if not player_db.is_file():
        raise FileNotFoundError(player_db)
    rng = np.random.default_rng(seed)
    con = sqlite3.connect(player_db)
    try:
        last_id, last_at, rows = con.execute(
            "SELECT max(play_id), max(played_at), count(*) FROM plays").fetchone()
        next_number = int(last_id[1:]) + 1 if last_id else 1
        picks = [int(r) for r in rng.integers(1, max(rows, 1) + 1, count)]
        columns = "listener_id, track_id, ms_played, device, country"
        sampled = [con.execute(f"SELECT {columns} FROM plays WHERE rowid = ?", (r,)).fetchone()
                   for r in picks]
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        last_ms = (int(np.datetime64(last_at.replace(" ", "T"), "ms").astype(np.int64))
                   if last_at else now_ms - count * 1000)
        start = max(now_ms - count * 1000, last_ms + 1)
        spacing = max(1, (now_ms - start) // count)
        played = _timestamp_strings(start + np.arange(count, dtype=np.int64) * spacing,
                                    millis=True).to_pylist()
        new = [(f"p{next_number + i:08d}", s[0], s[1], played[i], s[2], s[3], s[4])
               for i, s in enumerate(sampled) if s is not None]
        with con:
            con.executemany("INSERT INTO plays (play_id, listener_id, track_id, ms_played, "
                            "device, country, played_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                            [(p[0], p[1], p[2], p[4], p[5], p[6], p[3]) for p in new])
        return AppendedPlays(player_db, len(new), new[0][0], new[-1][0], rows + len(new))
    finally:
        con.close()
