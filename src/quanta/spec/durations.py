"""Durations written the way people write them in specs: ``30s``, ``15m``, ``1h``, ``400d``."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


def parse_duration(text: str) -> timedelta:
    """Parse ``<number><unit>`` with unit s, m, h, d or w; raise ValueError with a hint."""
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(
            f"{text!r} is not a duration; write a whole number and a unit, "
            "e.g. 30s, 15m, 1h, 400d or 2w"
        )
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
