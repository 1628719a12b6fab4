"""The data product container: one product packaged, unpacked and run as its own unit.

- ``bundle``: ``package`` writes a self-contained bundle, ``unpack`` opens one (checked
  against its ``quanta.lock``) and returns the root of its one-product mesh.
- ``endpoints``: where units serve, registered in a catalog given by URL, with heartbeats.
- ``unit``: ``quanta serve --product``: a sidecar for one product, registered while it listens.
- ``planner`` and ``federation``: ``quanta.connect(catalog=...)`` reads products served by
  separate units and joins them here.

Names load on first use: opening a bundle needs neither SQLAlchemy nor the servers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quanta.container.bundle import Packaged, package, read_lock, unpack, verify
    from quanta.container.lock import BundleError, BundleLock

_HOMES = {"Packaged": "bundle", "package": "bundle", "read_lock": "bundle",
          "unpack": "bundle", "verify": "bundle", "BundleError": "lock", "BundleLock": "lock"}

__all__ = ["BundleError", "BundleLock", "Packaged", "package", "read_lock", "unpack", "verify"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'quanta.container' has no attribute {name!r}")
    return getattr(importlib.import_module(f"quanta.container.{home}"), name)
