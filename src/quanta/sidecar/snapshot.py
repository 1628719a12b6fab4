"""Snapshots: which release of each product a query reads, pinned by ``as_of``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from quanta.errors import NotFoundError, QueryError
from quanta.storage import ProductStorage, Release

MAJOR = re.compile(r"^v(\d{1,6})$")


@dataclass(frozen=True)
class AsOf:
    """A point in system time: a release number of one product, or a moment for all; or the
    newest release of one major interface version (``v1``), served beside a newer major
    while consumers move."""

    release: int | None = None
    moment: datetime | None = None
    major: int | None = None

    @classmethod
    def parse(cls, text: str | int | None) -> AsOf | None:
        """``N`` (a release number), ``vN`` (the newest release of major version N) or an ISO
        8601 timestamp (UTC unless it says otherwise)."""
        if text is None or text == "":
            return None
        if isinstance(text, int) or str(text).isdigit():
            return cls(release=int(text))
        major = MAJOR.match(str(text))
        if major:
            return cls(major=int(major.group(1)))
        try:
            moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        except ValueError:
            raise QueryError(
                f"as_of {text!r} is neither a release number nor a timestamp",
                hint="e.g. --as-of 3, --as-of v1 or --as-of 2026-11-01T12:00:00Z",
                code="as_of_invalid",
            ) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return cls(moment=moment)


def pin(storage: ProductStorage, as_of: AsOf | None, products_in_query: int) -> Release:
    """The release of ``storage``'s product that a query at ``as_of`` reads."""
    if as_of is None:
        release = storage.latest()
    elif as_of.major is not None:
        if products_in_query > 1:
            raise QueryError(
                "as_of as a major version is ambiguous when a query reads several products",
                hint="read one product per query, or pin the whole query with a timestamp",
                code="as_of_ambiguous",
            )
        release = _newest_of_major(storage, as_of.major)
    elif as_of.release is not None:
        if products_in_query > 1:
            raise QueryError(
                "as_of as a release number is ambiguous when a query reads several products",
                hint="pin the whole query with a timestamp, e.g. --as-of 2026-11-01T12:00:00Z",
                code="as_of_ambiguous",
            )
        release = storage.release(as_of.release)
    else:
        assert as_of.moment is not None
        release = storage.release_as_of(as_of.moment)
        if release is None:
            first = storage.release_numbers()
            raise NotFoundError(
                f"{storage.key} had no release at {as_of.moment.isoformat()}",
                hint="its first release came later" if first else "build it first",
                code="release_not_found",
            )
    if release is None:
        raise NotFoundError(
            f"{storage.key} has no release yet", hint=f"build it: quanta build {storage.key}",
            code="release_not_found",
        )
    return release


def major_of(version: str) -> int:
    """The major number of a semantic version (0 when it does not parse)."""
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def _newest_of_major(storage: ProductStorage, major: int) -> Release:
    releases = storage.releases()
    for release in reversed(releases):
        if major_of(release.interface_version) == major:
            return release
    majors = sorted({major_of(r.interface_version) for r in releases})
    raise NotFoundError(
        f"{storage.key} has no release of major version {major}",
        hint=f"majors with releases: {', '.join(f'v{m}' for m in majors) or 'none'}",
        code="release_not_found",
    )
