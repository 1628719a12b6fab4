"""What a product's runner remembers between polls and across restarts.

Kept per product in ``<storage root>/runtime/<product>.json`` (atomic replace): the last event
it handled, when it last tried a build, and its failures, so that a restarted runner resumes
pending triggers, keeps backing off a flaky source and never repeats a build that failed for
good from the same spec, code and inputs.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from quanta.storage.files import write_atomic
from quanta.storage.manifest import Record


class ProductState(Record):
    """The runner's memory of one product."""

    cursor: int = 0
    last_attempt: datetime | None = None
    failures: int = 0
    retry_at: datetime | None = None
    failed_identity: str | None = None
    last_error: dict[str, Any] | None = None


def state_file(storage_root: Path, key: str) -> Path:
    return storage_root / "runtime" / f"{key}.json"


def read_state(storage_root: Path, key: str) -> ProductState:
    """The product's runner state; a fresh one when none was kept or it is damaged (the
    runner then re-reads the whole event log, which is idempotent)."""
    try:
        return ProductState.model_validate_json(state_file(storage_root, key).read_bytes())
    except (OSError, ValidationError):
        return ProductState()


def write_state(storage_root: Path, key: str, state: ProductState) -> None:
    write_atomic(state_file(storage_root, key), state.model_dump_json(indent=2).encode())
