"""The knowledge graph: entities (nodes, by name) and relations (undirected edges) with RAGFlow's attributes.

A node holds ``entity_name``, ``entity_type``, ``description``, ``source_id`` (the documents it came from),
``pagerank`` and ``rank`` (its degree); an edge ``src_id``/``tgt_id`` (the names, sorted), ``description``,
``keywords``, ``weight`` and ``source_id``. Descriptions gathered from several places are joined with
``GRAPH_FIELD_SEP`` (RAGFlow's ``<SEP>``). The graph's own ``source_id`` lists the documents merged into it:
a re-run skips them. Serialized as networkx's node-link form, which is also what the API returns.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

GRAPH_FIELD_SEP = "<SEP>"
#: The API shows the best nodes by PageRank and the heaviest edges between them (RAGFlow's cut-offs).
SHOWN_NODES = 256
SHOWN_EDGES = 128

Attrs = dict[str, Any]
EdgeKey = tuple[str, str]


def edge_key(a: str, b: str) -> EdgeKey:
    """Relations are undirected: the pair of names, sorted."""
    return (a, b) if a <= b else (b, a)


def entity_id(name: str) -> str:
    """The id of an entity's record in the store and the index (16 hex, stable for the name)."""
    return hashlib.blake2b(f"entity:{name}".encode(), digest_size=8).hexdigest()


def relation_id(a: str, b: str) -> str:
    """The id of a relation's record (stable for the pair, whichever way it is named)."""
    first, second = edge_key(a, b)
    return hashlib.blake2b(f"relation:{first}\x00{second}".encode(), digest_size=8).hexdigest()


def join_descriptions(*descriptions: str) -> str:
    """Descriptions joined with ``<SEP>``, each distinct part once, in the order met."""
    parts: dict[str, None] = {}
    for description in descriptions:
        for part in description.split(GRAPH_FIELD_SEP):
            if part.strip():
                parts.setdefault(part.strip(), None)
    return GRAPH_FIELD_SEP.join(parts)


def description_parts(description: str) -> list[str]:
    return [part for part in description.split(GRAPH_FIELD_SEP) if part.strip()]


def _merge_sources(*lists: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(source for sources in lists for source in sources))


@dataclass
class GraphChange:
    """What a merge or a removal touched: names of nodes and keys of edges added or changed, and removed."""

    nodes: set[str] = field(default_factory=set)
    edges: set[EdgeKey] = field(default_factory=set)
    removed_nodes: set[str] = field(default_factory=set)
    removed_edges: set[EdgeKey] = field(default_factory=set)

    def add(self, other: GraphChange) -> None:
        self.nodes |= other.nodes
        self.edges |= other.edges
        self.removed_nodes |= other.removed_nodes
        self.removed_edges |= other.removed_edges
        self.nodes -= self.removed_nodes
        self.edges -= self.removed_edges


@dataclass
class KnowledgeGraph:
    nodes: dict[str, Attrs] = field(default_factory=dict)
    edges: dict[EdgeKey, Attrs] = field(default_factory=dict)
    source_id: list[str] = field(default_factory=list)

    # -- building -----------------------------------------------------------------------------------
    def add_node(self, name: str, attrs: Mapping[str, Any]) -> None:
        self.nodes[name] = {**attrs, "entity_name": name}

    def add_edge(self, a: str, b: str, attrs: Mapping[str, Any]) -> None:
        key = edge_key(a, b)
        self.edges[key] = {**attrs, "src_id": key[0], "tgt_id": key[1]}

    def neighbours(self) -> dict[str, list[tuple[str, float]]]:
        """Each node's neighbours with the weight of the edge to them."""
        out: dict[str, list[tuple[str, float]]] = {name: [] for name in self.nodes}
        for (a, b), attrs in self.edges.items():
            weight = float(attrs.get("weight") or 0.0)
            out.setdefault(a, []).append((b, weight))
            out.setdefault(b, []).append((a, weight))
        return out

    def merge(self, other: KnowledgeGraph) -> GraphChange:
        """Merge ``other`` into this graph in place (RAGFlow's graph_merge): descriptions joined, sources and
        keywords gathered, edge weights added. Ranks are not updated here (``update_ranks``)."""
        change = GraphChange()
        for name, attrs in other.nodes.items():
            change.nodes.add(name)
            node = self.nodes.get(name)
            if node is None:
                self.nodes[name] = dict(attrs)
                continue
            node["description"] = join_descriptions(node.get("description", ""), attrs.get("description", ""))
            node["source_id"] = _merge_sources(node.get("source_id", []), attrs.get("source_id", []))
            if not node.get("entity_type") or node["entity_type"] == "UNKNOWN":
                node["entity_type"] = attrs.get("entity_type", node.get("entity_type", ""))
        for key, attrs in other.edges.items():
            change.edges.add(key)
            edge = self.edges.get(key)
            if edge is None:
                self.edges[key] = dict(attrs)
                continue
            edge["weight"] = float(edge.get("weight") or 0.0) + float(attrs.get("weight") or 0.0)
            edge["description"] = join_descriptions(edge.get("description", ""), attrs.get("description", ""))
            edge["keywords"] = list(dict.fromkeys([*edge.get("keywords", []), *attrs.get("keywords", [])]))
            edge["source_id"] = _merge_sources(edge.get("source_id", []), attrs.get("source_id", []))
        self.source_id = _merge_sources(self.source_id, other.source_id)
        return change

    def remove_source(self, document_id: str) -> GraphChange:
        """Take a document's contribution out: it leaves every ``source_id``; what has no source left goes,
        and so do edges whose ends went. Descriptions stay as they are (they were merged, not kept apart)."""
        change = GraphChange()
        if document_id not in self.source_id:
            return change
        self.source_id = [s for s in self.source_id if s != document_id]
        for name, attrs in list(self.nodes.items()):
            sources = attrs.get("source_id", [])
            if document_id in sources:
                attrs["source_id"] = [s for s in sources if s != document_id]
                if attrs["source_id"]:
                    change.nodes.add(name)
                else:
                    del self.nodes[name]
                    change.removed_nodes.add(name)
        for key, attrs in list(self.edges.items()):
            sources = attrs.get("source_id", [])
            gone = key[0] not in self.nodes or key[1] not in self.nodes
            if document_id in sources:
                attrs["source_id"] = [s for s in sources if s != document_id]
                gone = gone or not attrs["source_id"]
                if not gone:
                    change.edges.add(key)
            if gone:
                del self.edges[key]
                change.removed_edges.add(key)
        return change

    def rename_node(self, old: str, new: str) -> None:
        """Fold node ``old`` into node ``new`` (entity resolution): attributes merged, edges moved."""
        if old == new or old not in self.nodes or new not in self.nodes:
            return
        gone = self.nodes.pop(old)
        keep = self.nodes[new]
        keep["description"] = join_descriptions(keep.get("description", ""), gone.get("description", ""))
        keep["source_id"] = _merge_sources(keep.get("source_id", []), gone.get("source_id", []))
        for key in [k for k in self.edges if old in k]:
            attrs = self.edges.pop(key)
            other = key[1] if key[0] == old else key[0]
            if other in (old, new):
                continue  # a relation between the two merged entities: dropped
            moved = edge_key(new, other)
            existing = self.edges.get(moved)
            if existing is None:
                self.add_edge(new, other, attrs)
            else:
                existing["weight"] = float(existing.get("weight") or 0.0) + float(attrs.get("weight") or 0.0)
                existing["description"] = join_descriptions(existing["description"], attrs.get("description", ""))
                existing["keywords"] = list(dict.fromkeys([*existing.get("keywords", []), *attrs.get("keywords", [])]))
                existing["source_id"] = _merge_sources(existing.get("source_id", []), attrs.get("source_id", []))

    # -- ranks ----------------------------------------------------------------------------------------
    def update_ranks(self) -> None:
        """``rank`` = degree and ``pagerank`` of every node (RAGFlow sets both after each merge)."""
        degree = dict.fromkeys(self.nodes, 0)
        for a, b in self.edges:
            degree[a] += 1
            degree[b] += 1
        scores = pagerank(list(self.nodes), [(a, b, float(e.get("weight") or 1.0)) for (a, b), e in self.edges.items()])
        for name, attrs in self.nodes.items():
            attrs["rank"] = degree[name]
            attrs["pagerank"] = scores.get(name, 0.0)

    # -- serialization ----------------------------------------------------------------------------------
    def to_node_link(self) -> dict[str, Any]:
        """networkx's node-link form (``edges="edges"``), as RAGFlow stores and returns the graph."""
        return {
            "directed": False,
            "multigraph": False,
            "graph": {"source_id": list(self.source_id)},
            "nodes": [{**attrs, "id": name} for name, attrs in self.nodes.items()],
            "edges": [{**attrs, "source": a, "target": b} for (a, b), attrs in self.edges.items()],
        }

    @staticmethod
    def from_node_link(data: Mapping[str, Any]) -> KnowledgeGraph:
        graph = KnowledgeGraph(source_id=list((data.get("graph") or {}).get("source_id") or []))
        for node in data.get("nodes") or []:
            attrs = {k: v for k, v in node.items() if k != "id"}
            graph.nodes[str(node["id"])] = attrs
        for edge in data.get("edges") or []:
            attrs = {k: v for k, v in edge.items() if k not in ("source", "target")}
            graph.edges[edge_key(str(edge["source"]), str(edge["target"]))] = attrs
        return graph


def shown(node_link: Mapping[str, Any]) -> dict[str, Any]:
    """The graph as the API shows it: the top nodes by PageRank, and the heaviest edges between them
    (self-loops left out)."""
    out = dict(node_link)
    if "nodes" in out:
        nodes = sorted(out["nodes"], key=lambda n: n.get("pagerank", 0), reverse=True)[:SHOWN_NODES]
        out["nodes"] = nodes
        if "edges" in out:
            names = {n["id"] for n in nodes}
            edges = [
                e for e in out["edges"] if e["source"] != e["target"] and e["source"] in names and e["target"] in names
            ]
            out["edges"] = sorted(edges, key=lambda e: e.get("weight", 0), reverse=True)[:SHOWN_EDGES]
    return out


def pagerank(
    nodes: list[str],
    edges: Iterable[tuple[str, str, float]],
    *,
    alpha: float = 0.85,
    max_iter: int = 100,
    tol: float = 1.0e-6,
) -> dict[str, float]:
    """PageRank of an undirected weighted graph, as networkx computes it (``nx.pagerank`` with its defaults:
    each edge counts both ways, dangling nodes spread their rank uniformly); power iteration in numpy."""
    n = len(nodes)
    if n == 0:
        return {}
    index = {name: i for i, name in enumerate(nodes)}
    rows: list[int] = []
    cols: list[int] = []
    weights: list[float] = []
    for a, b, weight in edges:
        i, j = index[a], index[b]
        rows += [i, j] if i != j else [i]
        cols += [j, i] if i != j else [i]
        weights += [weight, weight] if i != j else [weight]
    src = np.asarray(rows, dtype=np.int64)
    dst = np.asarray(cols, dtype=np.int64)
    w = np.asarray(weights, dtype=np.float64)
    out_weight = np.bincount(src, weights=w, minlength=n)
    dangling = out_weight == 0
    share = np.divide(w, out_weight[src], out=np.zeros_like(w), where=out_weight[src] > 0)
    x = np.full(n, 1.0 / n)
    for _ in range(max_iter):
        previous = x
        spread = np.bincount(dst, weights=previous[src] * share, minlength=n)
        x = alpha * (spread + previous[dangling].sum() / n) + (1.0 - alpha) / n
        if np.abs(x - previous).sum() < n * tol:
            break
    return {name: float(x[i]) for name, i in index.items()}
