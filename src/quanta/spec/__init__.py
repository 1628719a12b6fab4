"""Spec models of mesh.yaml and dataproduct.yaml, and their loader."""

from quanta.spec.mesh import MESH_FILE, PRODUCT_FILE, Mesh, Product, find_mesh_root, load_mesh
from quanta.spec.models import MeshSpec, OutputPort, ProductSpec

__all__ = [
    "MESH_FILE", "PRODUCT_FILE", "Mesh", "MeshSpec", "OutputPort", "Product", "ProductSpec",
    "find_mesh_root", "load_mesh",
]
