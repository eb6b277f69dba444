"""``use_kg``: the knowledge graph's answer to a question, as the pseudo-chunk retrieval and chats put first
(``shared.rag.graphrag.search`` holds RAGFlow's scoring and formatting; this module finds the candidates)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from shared.ids import new_id
from shared.ports.chat_model import ChatModel, ChatModelError, ChatOptions
from shared.ports.embedder import Embedder
from shared.ports.search import ChunkKind, SearchIndex, SearchQuery
from shared.rag.graphrag.graph import KnowledgeGraph
from shared.rag.graphrag.search import (
    CANDIDATES,
    DOCUMENT_NAME,
    SIMILARITY_THRESHOLD,
    GraphMatches,
    best_reports,
    es_similarity,
    parse_rewrite,
    rank,
    render,
    rewrite_messages,
    type_samples,
)
from shared.services.knowledge import GraphStore

logger = logging.getLogger(__name__)


class GraphSearch:
    def __init__(self, graphs: GraphStore, index: Callable[[], SearchIndex]) -> None:
        self._graphs = graphs
        self._index = index

    def related_content(
        self, tenant_id: str, dataset_ids: Sequence[str], question: str, model: ChatModel, embedder: Embedder
    ) -> dict[str, Any] | None:
        """The graphs' entities, relations and community report for ``question`` as one retrieval chunk
        ("Related content in Knowledge Graph"); None when the datasets have no graph or it has nothing to say.

        The model's rewrite of the question is best-effort, as RAGFlow's: when it fails or answers nonsense,
        the question itself is the entity searched for. An embedding failure is raised (EmbeddingError).
        """
        views = {d: view for d in dataset_ids if (view := self._graphs.view(d)) is not None}
        if not views:
            return None
        graph = _combined([v.graph for v in views.values()])
        answer_types, names = self._rewrite(question, graph, model)
        matches = GraphMatches()
        for candidate in self._search(tenant_id, list(views), embedder.embed_query(", ".join(names)), "entity"):
            name = views[candidate.dataset_id].entities.get(candidate.chunk_id)
            if name is not None:
                matches.entities[name] = max(matches.entities.get(name, 0.0), _similarity(candidate.vector_score))
        for candidate in self._search(tenant_id, list(views), embedder.embed_query(question), "relation"):
            key = views[candidate.dataset_id].relations.get(candidate.chunk_id)
            if key is not None:
                matches.relations[key] = max(matches.relations.get(key, 0.0), _similarity(candidate.vector_score))
        matches.entities = {n: s for n, s in matches.entities.items() if s >= SIMILARITY_THRESHOLD}
        matches.relations = {k: s for k, s in matches.relations.items() if s >= SIMILARITY_THRESHOLD}
        entities, relations = rank(graph, matches, answer_types)
        reports = [r for d in views for r in self._graphs.records.records(d, "community_report")]
        text = render(entities, relations, best_reports(reports, [name for name, _ in entities]))
        if not text:
            return None
        return {
            "id": new_id(),
            "content": text,
            "content_ltks": "",
            "document_id": "",
            "document_keyword": DOCUMENT_NAME,
            "dataset_id": list(views),
            "kb_id": list(views),
            "image_id": "",
            "important_keywords": [],
            "questions": [],
            "positions": [],
            "similarity": 1.0,
            "term_similarity": 0.0,
            "vector_similarity": 1.0,
        }

    @staticmethod
    def _rewrite(question: str, graph: KnowledgeGraph, model: ChatModel) -> tuple[list[str], list[str]]:
        try:
            answer = model.complete(rewrite_messages(question, type_samples(graph)), ChatOptions(temperature=0.1))
        except ChatModelError as exc:
            logger.warning("use_kg: the question could not be rewritten (%s); searching for it as it is", exc)
            return [], [question]
        parsed = parse_rewrite(answer.text)
        if parsed is None or not parsed[1]:
            return (parsed[0] if parsed else []), [question]
        return parsed

    def _search(self, tenant_id: str, dataset_ids: list[str], vector: Any, kind: ChunkKind) -> list[Any]:
        query = SearchQuery(tenant_id, dataset_ids, vector=[float(x) for x in vector], top_k=CANDIDATES, kind=kind)
        return [c for c in self._index().search(query) if c.vector_score is not None]


def _similarity(cosine: float | None) -> float:
    return es_similarity(cosine) if cosine is not None else 0.0


def _combined(graphs: Sequence[KnowledgeGraph]) -> KnowledgeGraph:
    """One graph over several datasets' (entities of the same name merged); the graph itself for one."""
    if len(graphs) == 1:
        return graphs[0]
    combined = KnowledgeGraph()
    for graph in graphs:
        combined.merge(KnowledgeGraph.from_node_link(graph.to_node_link()))  # merged copies: cached views stay
    return combined
