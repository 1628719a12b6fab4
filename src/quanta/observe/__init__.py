"""Mesh experience plane: observability of products from what the mesh records.

No daemon collects anything: facts come from release manifests and run records in storage
(``quanta.observe.history``) and from the sidecar's audit log (``quanta.observe.access``).
On them, ``slo_report`` evaluates each product's declared SLOs over a window with error
budgets and the causes of breaches, ``usage_report`` counts readers and reads per day,
``observe_product`` measures both of one product in one pass (for its discovery document), and
``MeshMetrics`` (``quanta.observe.metrics``, which needs ``prometheus_client``) serves both
live read counters and recorded facts to Prometheus.
"""

from quanta.observe.access import AccessLog, Read, read_access_log
from quanta.observe.history import History, ReleaseFacts, product_history, read_runs
from quanta.observe.product import ProductObservation, observe_product
from quanta.observe.slo import (
    DEFAULT_OBJECTIVE,
    DEFAULT_WINDOW,
    Breach,
    ProductSlos,
    SloReport,
    SloResult,
    parse_window,
    slo_report,
)
from quanta.observe.usage import DayUsage, ProductUsage, UsageReport, usage_report

__all__ = [
    "DEFAULT_OBJECTIVE", "DEFAULT_WINDOW", "AccessLog", "Breach", "DayUsage", "History",
    "ProductObservation", "ProductSlos", "ProductUsage", "Read", "ReleaseFacts", "SloReport",
    "SloResult", "UsageReport", "observe_product", "parse_window", "product_history",
    "read_access_log", "read_runs", "slo_report", "usage_report",
]
