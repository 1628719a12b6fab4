"""The product graph: which product reads which, with fast, loop-proof closures.

Nodes are numbered once; each direction keeps a list of neighbour numbers per node, so a
closure is a breadth-first walk over small integers with a ``bytearray`` of visited nodes.
A mesh whose inputs form a cycle is refused by the spec loader, but the walk never relies
on that: every node is visited at most once, whatever the graph.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

from quanta.errors import NotFoundError
from quanta.spec.mesh import Mesh

Direction = Literal["upstream", "downstream"]


class ProductGraph:
    """A directed graph of products; an edge ``(a, b)`` says b reads a."""

    def __init__(self, nodes: Sequence[str], edges: Iterable[tuple[str, str]]) -> None:
        self.nodes = list(dict.fromkeys(nodes))
        self.index = {name: number for number, name in enumerate(self.nodes)}
        down: list[set[int]] = [set() for _ in self.nodes]
        up: list[set[int]] = [set() for _ in self.nodes]
        for source, target in edges:
            a, b = self.index.get(source), self.index.get(target)
            if a is None or b is None or a == b:
                continue  # a link to an unknown product is a spec problem, reported elsewhere
            down[a].add(b)
            up[b].add(a)
        self._down = [sorted(s) for s in down]
        self._up = [sorted(s) for s in up]

    @classmethod
    def from_mesh(cls, mesh: Mesh) -> ProductGraph:
        """The graph of a mesh's declared product inputs."""
        edges = [(address.product_key, key) for key, product in mesh.products.items()
                 for _, address in product.upstream()]
        return cls(sorted(mesh.products), edges)

    def __len__(self) -> int:
        return len(self.nodes)

    @property
    def edge_count(self) -> int:
        return sum(len(targets) for targets in self._down)

    def upstream(self, key: str, depth: int | None = None) -> dict[str, int]:
        """Every product ``key`` reads, directly or not: product → distance (1 = direct)."""
        return self.closure(key, "upstream", depth)

    def downstream(self, key: str, depth: int | None = None) -> dict[str, int]:
        """Every product reading ``key``, directly or not: product → distance."""
        return self.closure(key, "downstream", depth)

    def direct(self, key: str, direction: Direction) -> list[str]:
        """The products one step away from ``key``."""
        adjacency = self._up if direction == "upstream" else self._down
        return [self.nodes[n] for n in adjacency[self._number(key)]]

    def closure(self, key: str, direction: Direction, depth: int | None = None
                ) -> dict[str, int]:
        """Products reachable from ``key`` in ``direction`` within ``depth`` steps (default
        unlimited), each with its shortest distance; ``key`` itself is not included."""
        adjacency = self._up if direction == "upstream" else self._down
        start = self._number(key)
        seen = bytearray(len(self.nodes))
        seen[start] = 1
        found: dict[str, int] = {}
        nodes = self.nodes
        frontier = [start]
        distance = 0
        while frontier and (depth is None or distance < depth):
            distance += 1
            following: list[int] = []
            for number in frontier:
                for neighbour in adjacency[number]:
                    if not seen[neighbour]:
                        seen[neighbour] = 1
                        following.append(neighbour)
            for number in following:
                found[nodes[number]] = distance
            frontier = following
        return found

    def _number(self, key: str) -> int:
        try:
            return self.index[key]
        except KeyError:
            raise NotFoundError(
                f"no product '{key}' in the lineage graph",
                hint=f"products: {', '.join(self.nodes[:20]) or 'none'}"
                + (" …" if len(self.nodes) > 20 else ""), code="product_not_found",
            ) from None
