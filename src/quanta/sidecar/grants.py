"""Grants made with ``quanta grant`` (beside those a product declares in its spec)."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from quanta.address import Address
from quanta.errors import QuantaError
from quanta.sidecar.principals import Principal
from quanta.storage.files import write_atomic
from quanta.storage.locks import file_lock


@dataclass(frozen=True)
class AccessGrant:
    """``subject`` may read ``product`` (one ``port`` or all) for ``purpose`` (or any)."""

    id: str
    subject: str
    product: str
    port: str | None
    purpose: str | None
    created_at: str
    expires_at: str | None = None

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and datetime.fromisoformat(self.expires_at) <= now

    def allows(self, principal: Principal, address: Address, purpose: str | None,
               now: datetime) -> bool:
        """True when this grant lets ``principal`` read ``address`` for ``purpose`` now."""
        return (
            self.subject in principal.subjects()
            and self.product == address.product_key
            and self.port in (None, address.port)
            and (self.purpose is None or self.purpose == purpose)
            and not self.expired(now)
        )


class GrantStore:
    """Grants of one mesh, in ``<storage>/security/grants.json``."""

    def __init__(self, storage_root: Path) -> None:
        self.file = storage_root / "security" / "grants.json"
        self._cache: tuple[int, list[AccessGrant]] | None = None

    def grants(self) -> list[AccessGrant]:
        """Every grant on record (expired ones included)."""
        try:
            mtime = self.file.stat().st_mtime_ns
        except FileNotFoundError:
            return []
        if self._cache and self._cache[0] == mtime:
            return self._cache[1]
        grants = [AccessGrant(**g) for g in json.loads(self.file.read_text())]
        self._cache = (mtime, grants)
        return grants

    def _save(self, grants: list[AccessGrant]) -> None:
        write_atomic(self.file, json.dumps([asdict(g) for g in grants], indent=2).encode())

    def grant(self, subject: str, address: Address, purpose: str | None = None,
              expires_in: timedelta | None = None) -> AccessGrant:
        """Record a grant; it holds for new queries at once."""
        now = datetime.now(UTC)
        record = AccessGrant(
            id=secrets.token_hex(4), subject=subject, product=address.product_key,
            port=address.port, purpose=purpose, created_at=now.isoformat(),
            expires_at=(now + expires_in).isoformat() if expires_in else None,
        )
        with file_lock(self.file):
            self._save([*self.grants(), record])
        return record

    def revoke(self, subject: str, address: Address, purpose: str | None = None
               ) -> list[AccessGrant]:
        """Remove matching grants; return them."""
        with file_lock(self.file):
            grants = self.grants()
            gone = [g for g in grants if g.subject == subject
                    and g.product == address.product_key
                    and (address.port is None or g.port == address.port)
                    and (purpose is None or g.purpose == purpose)]
            if gone:
                self._save([g for g in grants if g not in gone])
        if not gone:
            raise QuantaError(
                f"no grant of {address} to {subject}" + (f" for {purpose}" if purpose else ""),
                hint="see the grants with 'quanta grants'", code="grant_not_found",
            )
        return gone
