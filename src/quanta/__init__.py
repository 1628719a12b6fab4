"""quanta: a self-serve data mesh platform.

The public API: ``MeshContext`` (open a mesh, build, query), the spec models in
``quanta.spec``, and the errors in ``quanta.errors``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from quanta.context import MeshContext
    from quanta.sdk import connect

__all__ = ["MeshContext", "__version__", "connect"]


def __getattr__(name: str) -> Any:
    # Imported lazily so that `import quanta` (and the CLI's start-up) stays fast.
    if name == "MeshContext":
        from quanta.context import MeshContext

        return MeshContext
    if name == "connect":
        from quanta.sdk import connect

        return connect
    raise AttributeError(name)
