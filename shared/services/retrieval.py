"""POST /api/v1/retrieval: candidates from the search index, RAGFlow's hybrid score, chunks from the store."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shared.errors import DataError
from shared.ports.chat_model import ChatModel
from shared.ports.embedder import EmbeddingError
from shared.ports.metadata import MetadataStore
from shared.ports.reranker import Reranker, RerankError
from shared.ports.search import Candidate, SearchIndex, SearchQuery
from shared.rag.highlight import highlight as highlight_terms
from shared.rag.metadata import filter_documents
from shared.rag.rerankers import reranker_for_tenant
from shared.rag.scoring import ScoredChunk, rank
from shared.rag.text_analysis import analyze_query
from shared.repos.datasets import NAMES_VERSION, DatasetRepository
from shared.repos.documents import DocumentRepository, Record, document_pk
from shared.repos.tenants import Tenant, TenantRepository
from shared.schemas.retrieval import RetrievalRequest
from shared.services.ingestion import EmbedderFactory
from shared.services.models import ModelAccess

#: RAGFlow reranks only the best candidates by the plain hybrid score; the others keep a rerank score of 0.
RERANK_LIMIT = 64

RerankerFactory = Callable[[Tenant, str], Reranker]

if TYPE_CHECKING:
    from shared.ports.embedder import Embedder
    from shared.services.graph_search import GraphSearch


class RetrievalService:
    def __init__(
        self,
        *,
        store: MetadataStore,
        datasets: DatasetRepository,
        documents: DocumentRepository,
        tenants: TenantRepository,
        index: Callable[[], SearchIndex],
        embedder_for: EmbedderFactory,
        models: ModelAccess,
        reranker_for: RerankerFactory = reranker_for_tenant,
        chat_model_for: Callable[[Tenant, str | None], ChatModel] | None = None,
        graph_search: Callable[[], GraphSearch] | None = None,
    ) -> None:
        self._store = store
        self._datasets = datasets
        self._documents = documents
        self._tenants = tenants
        self._index = index
        self._embedder_for = embedder_for
        self._models = models
        self._reranker_for = reranker_for
        self._chat_model_for = chat_model_for
        self._graph_search = graph_search

    def retrieve(self, tenant_id: str, request: RetrievalRequest) -> dict[str, Any]:
        """Chunks of the tenant's datasets most similar to the question, RAGFlow's shape."""
        datasets = []
        for dataset_id in request.dataset_ids:
            dataset = self._datasets.get(tenant_id, dataset_id)
            if dataset is None:
                raise DataError(f"You don't own the dataset {dataset_id}.")
            datasets.append(dataset)
        if len({d["embedding_model"] for d in datasets}) != 1:
            raise DataError("Datasets use different embedding models.")
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            raise DataError("Tenant not found")
        reranker = None
        if request.rerank_id:
            self._models.check(tenant, request.rerank_id, "rerank")
            try:
                reranker = self._reranker_for(tenant, request.rerank_id)
            except RerankError as exc:
                raise DataError(exc.message) from exc
        question = request.question
        if request.keyword or request.cross_languages:
            question = self._expand_question(tenant, request)

        documents = self._documents_in_scope(datasets, request)
        if documents is not None and not documents:
            return {"chunks": [], "doc_aggs": [], "total": 0}

        try:
            embedder = self._embedder_for(datasets[0]["embedding_model"], tenant)
            vector = [float(x) for x in embedder.embed_query(request.question)]  # the user's own words
        except EmbeddingError as exc:
            raise DataError(f"Embedding failed: {exc.message}") from exc
        candidates = self._index().search(
            SearchQuery(
                tenant_id=tenant_id,
                dataset_ids=request.dataset_ids,
                text=question,
                vector=vector,
                document_ids=list(documents) if documents is not None else None,
                top_k=request.top_k,
            )
        )
        pagerank = {d["id"]: int(d.get("pagerank") or 0) for d in datasets}
        rerank_scores = None
        if reranker is not None and candidates:
            rerank_scores = self._rerank(reranker, request, candidates)
        ranking = rank(
            candidates,
            request.vector_similarity_weight,
            rerank_scores=rerank_scores,
            pagerank=pagerank,
            min_similarity=request.similarity_threshold,
        )
        start = (request.page - 1) * request.page_size
        page = ranking.page(start, start + request.page_size)
        ranked = ranking.documents()
        names = self._document_names(ranked, datasets)
        chunks = self._render(page, names, request)
        counts = Counter(document_id for document_id, _ in ranked)
        doc_aggs = [
            {"doc_name": names.get(doc_id, ""), "doc_id": doc_id, "count": count}
            for doc_id, count in counts.most_common()
        ]
        if request.use_kg:
            related = self._related_in_graph(tenant, request, embedder)
            if related is not None:
                chunks.insert(0, related)  # as RAGFlow: first, outside total and doc_aggs
        return {"chunks": chunks, "doc_aggs": doc_aggs, "total": len(ranking)}

    def _related_in_graph(self, tenant: Tenant, request: RetrievalRequest, embedder: Embedder) -> dict[str, Any] | None:
        """``use_kg``: the datasets' knowledge graphs' pseudo-chunk, the question rewritten by the tenant's chat
        model (as RAGFlow asks its default one)."""
        from shared.ports.chat_model import ChatModelConfigError

        if self._graph_search is None:
            return None
        if not tenant.llm_id or self._chat_model_for is None:
            raise DataError("`use_kg` needs a chat model; none is configured for this tenant.")
        try:
            model = self._chat_model_for(tenant, None)
            return self._graph_search().related_content(
                tenant.id, request.dataset_ids, request.question, model, embedder
            )
        except ChatModelConfigError as exc:
            raise DataError(exc.message) from exc
        except EmbeddingError as exc:
            raise DataError(f"Embedding failed: {exc.message}") from exc

    def _expand_question(self, tenant: Tenant, request: RetrievalRequest) -> str:
        """RAGFlow's ``cross_languages`` (the question translated, for keyword matching in other languages) and
        ``keyword`` (keywords the chat model extracts, appended) — both need the tenant's chat model."""
        from shared.ports.chat_model import ChatMessage, ChatModelError, ChatOptions
        from shared.rag.prompting import keyword_messages

        if not tenant.llm_id or self._chat_model_for is None:
            raise DataError("`keyword` and `cross_languages` need a chat model; none is configured for this tenant.")
        question = request.question
        try:
            model = self._chat_model_for(tenant, None)
            options = ChatOptions(temperature=0.2)
            if request.cross_languages:
                languages = ", ".join(request.cross_languages)
                translated = model.complete(
                    [
                        ChatMessage(
                            "system",
                            f"Translate the user's text into each of these languages: {languages}. Answer with the "
                            "translations only, one per line.",
                        ),
                        ChatMessage("user", question),
                    ],
                    options,
                ).text
                question = "\n".join([question, *[t.strip() for t in translated.splitlines() if t.strip()]])
            if request.keyword:
                keywords = model.complete(keyword_messages(request.question, 8), options).text
                question = f"{question} {keywords.replace(',', ' ')}"
        except ChatModelError as exc:
            raise DataError(exc.message) from exc
        return question

    def _rerank(
        self, reranker: Reranker, request: RetrievalRequest, candidates: Sequence[Candidate]
    ) -> dict[str, float]:
        """The rerank model's relevance for the best ``RERANK_LIMIT`` candidates by the plain hybrid score."""
        best = rank(candidates, request.vector_similarity_weight).page(0, RERANK_LIMIT)
        stored = {
            c["id"]: c
            for c in self._store.batch_get([(document_pk(s.document_id), f"CHUNK#{s.chunk_id}") for s in best])
        }
        ids = [s.chunk_id for s in best if s.chunk_id in stored]  # deleted since the index answered: skipped
        if not ids:
            return {}
        try:
            scores = reranker.rerank(request.question, [str(stored[i].get("content") or "") for i in ids])
        except RerankError as exc:
            raise DataError(exc.message) from exc
        if len(scores) != len(ids):
            raise DataError(f"The rerank model {request.rerank_id} gave an unreadable answer.")
        return {i: min(1.0, max(0.0, float(score))) for i, score in zip(ids, scores, strict=True)}

    def _documents_in_scope(self, datasets: Sequence[Record], request: RetrievalRequest) -> dict[str, Record] | None:
        """The documents retrieval may return: None means every document of the datasets."""
        if request.document_ids:
            found: dict[str, Record] = {}
            for document_id in request.document_ids:
                record = next(
                    (r for d in datasets if (r := self._documents.get(d["id"], document_id)) is not None), None
                )
                if record is None:
                    raise DataError(f"The datasets don't own the document {document_id}")
                found[document_id] = record
            return found
        condition = request.metadata_condition
        if condition is None or condition.is_empty:
            return None
        docs = {r["id"]: r for d in datasets for r in self._documents.list_all(d["id"])}
        keep = filter_documents(condition, ((i, r.get("meta_fields") or {}) for i, r in docs.items()))
        return {i: docs[i] for i in keep}

    def _document_names(self, documents: Sequence[tuple[str, str]], datasets: Sequence[Record]) -> dict[str, str]:
        """Names of ``documents`` ((document id, dataset id) pairs)."""
        versions = {d["id"]: int(d.get(NAMES_VERSION) or 0) for d in datasets}
        return self._documents.names(dict(documents), versions)

    def _render(
        self, page: Sequence[ScoredChunk], names: Mapping[str, str], request: RetrievalRequest
    ) -> list[dict[str, Any]]:
        stored = {
            c["id"]: c
            for c in self._store.batch_get([(document_pk(s.document_id), f"CHUNK#{s.chunk_id}") for s in page])
        }
        terms = [t.term for t in analyze_query(request.question)] if request.highlight else []
        out = []
        for s in page:
            chunk = stored.get(s.chunk_id)
            if chunk is None:  # deleted since the index answered (the index may lag the store)
                continue
            item = {
                "id": s.chunk_id,
                "content": chunk["content"],
                "content_ltks": chunk["content"].lower(),
                "document_id": s.document_id,
                "document_keyword": names.get(s.document_id, ""),
                "dataset_id": s.dataset_id,
                "kb_id": s.dataset_id,
                "image_id": chunk.get("image_id", ""),
                "important_keywords": list(chunk.get("important_keywords") or []),
                "questions": list(chunk.get("questions") or []),
                "positions": list(chunk.get("positions") or []),
                "similarity": s.similarity,
                "term_similarity": s.term_similarity,
                "vector_similarity": s.vector_similarity,
            }
            if request.highlight:
                item["highlight"] = highlight_terms(chunk["content"], terms)
            out.append(item)
        return out
