"""A product's life cycle state: draft → active → deprecated (with a sunset and a replacement)
→ retired; reactivation brings a deprecated or retired product back to active.

Kept beside the product's releases in ``lifecycle.json`` (atomic replace), with the history of
transitions; read on every query, so it is cached by modification time.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Literal

from pydantic import Field

from quanta.storage.files import write_atomic
from quanta.storage.manifest import Record

State = Literal["draft", "active", "deprecated", "retired"]
# the states each state may move to (deprecated → deprecated: a new sunset or replacement)
MOVES: dict[str, frozenset[str]] = {
    "draft": frozenset({"active"}),
    "active": frozenset({"deprecated"}),
    "deprecated": frozenset({"deprecated", "retired", "active"}),
    "retired": frozenset({"active"}),
}


class Transition(Record):
    """One change of state, and who made it."""

    state: State
    at: datetime
    by: str
    reason: str | None = None


class Lifecycle(Record):
    """Where a product is in its life, and how it got there."""

    state: State = "active"
    sunset: date | None = Field(None, description="deprecated: the day reads stop")
    replacement: str | None = Field(None, description="the address consumers should move to")
    reason: str | None = None
    history: list[Transition] = Field(default_factory=list)

    def notice(self, product: str) -> str | None:
        """What a reader of a draft, deprecated or retired product is told; None when
        active."""
        if self.state == "active":
            return None
        if self.state == "draft":
            return (f"{product} is a draft: only its owners read it, and it is not listed "
                    "in discovery until it is activated")
        instead = f"; use {self.replacement}" if self.replacement else ""
        why = f" ({self.reason})" if self.reason else ""
        if self.state == "retired":
            return f"{product} is retired{why}{instead}"
        when = f"; sunset {self.sunset.isoformat()}" if self.sunset else ""
        return f"{product} is deprecated{why}{when}{instead}"


_cache: dict[str, tuple[int, Lifecycle]] = {}
ACTIVE = Lifecycle()


def read_lifecycle(file: Path) -> Lifecycle:
    """The state recorded in ``file`` (active when there is none)."""
    try:
        mtime = file.stat().st_mtime_ns
    except FileNotFoundError:
        return ACTIVE
    cached = _cache.get(str(file))
    if cached and cached[0] == mtime:
        return cached[1]
    state = Lifecycle.model_validate_json(file.read_bytes())
    _cache[str(file)] = (mtime, state)
    return state


def write_lifecycle(file: Path, state: Lifecycle) -> None:
    write_atomic(file, state.model_dump_json(indent=2).encode())
