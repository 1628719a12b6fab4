"""Mesh experience plane: lineage of products and columns, impact analysis, OpenLineage.

``MeshLineage`` answers lineage questions about a loaded mesh; ``ProductGraph`` holds the
product graph with fast closures; ``quanta.lineage.openlineage`` emits build events (it is
imported by the build runner only, so reading lineage does not load the OpenLineage client).
"""

from quanta.lineage.columns import ColumnSource, PortColumns
from quanta.lineage.graph import ProductGraph
from quanta.lineage.mesh import (
    Impact,
    Link,
    MeshLineage,
    Origin,
    PortColumnLineage,
    ProductLineage,
    Source,
)
from quanta.lineage.ports import product_lineage

__all__ = [
    "ColumnSource", "Impact", "Link", "MeshLineage", "Origin", "PortColumnLineage",
    "PortColumns", "ProductGraph", "ProductLineage", "Source", "product_lineage",
]
