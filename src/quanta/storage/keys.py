"""The mesh's secret for keyed hashing (pseudonymizing masks), created on first use."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

from quanta.storage.files import create_atomic


def mask_key(storage_root: Path) -> str:
    """The mesh's 256-bit mask key, as hex (the first process to ask creates it)."""
    file = storage_root / "security" / "mask.key"
    if not file.exists():
        file.parent.mkdir(parents=True, exist_ok=True)
        create_atomic(file, secrets.token_hex(32).encode())  # the first writer wins
        file.chmod(0o600)
    return file.read_text().strip()


def key_id(key: str) -> str:
    """A short public name of a key, to tell whether stored pseudonyms used it."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]
