"""The decentralized runtime: each product reacts to its own triggers; no central scheduler.

``quanta run`` holds one :class:`~quanta.runtime.runner.ProductRunner` per product it runs. A
runner watches the mesh's event log (upstream releases, manual triggers), its own sources and
its own clock, and builds its product in a process of its own when one of the product's
triggers fires. Nothing computes a DAG of the mesh up front: a downstream product rebuilds
because its upstream announced a release, and waits while one of its own inputs is building.
"""

from quanta.runtime.runner import MeshRuntime, RuntimeReport
from quanta.runtime.triggers import Pending, pending_reasons

__all__ = ["MeshRuntime", "Pending", "RuntimeReport", "pending_reasons"]
