"""The knowledge builds' steps: a dataset's knowledge graph (GraphRAG) and RAPTOR summaries.

A build is a task (``shared.services.knowledge``) that runs prepare → document (once per document) → finish
(``shared.pipeline.BUILD_STEPS``): on AWS as a Step Functions execution (a Map over the documents, then the
merge step), locally in the in-process worker (``run_task``). Steps take the task's small JSON state and
return the next; they check first that their task is still the dataset's current one, and report progress
on the task record as RAGFlow's task executor does (timestamped lines, ``[ERROR]`` on failure).

Knowledge graph: ``document`` extracts one document's subgraph with the chat model into the build's work
area; ``finish`` merges the subgraphs into the dataset's graph, ranks it (PageRank), optionally resolves
entities and writes community reports, embeds what is new, and commits it all at once — a model that fails
anywhere leaves the stored graph as it was. Incremental: documents already in the graph are skipped.

RAPTOR: ``document`` builds a document's summary tree and stores the summaries as its chunks (marked
``raptor``), replacing older ones; a document whose chunks did not change since is skipped. Tabular files
are skipped, as RAGFlow does.

Steps are idempotent, so a retried step or a build resumed after a crash redoes no finished work: a
document's subgraph stays in the work area until the merge, RAPTOR chunks carry the digest of what they
summarize, and the model's answers a step waits longest for — each block's extraction, each community's
report, each RAPTOR summary — are kept in the work area as they come, so a step cut short (a Lambda that
ran out of time, then retried; a killed server) carries on where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import numpy as np

from shared.catalog import ModelCatalog
from shared.ids import http_date, now_ms
from shared.ports.blobs import BlobNotFound, BlobStore
from shared.ports.chat_model import (
    ChatMessage,
    ChatModel,
    ChatModelConfigError,
    ChatModelError,
    ChatOptions,
)
from shared.ports.embedder import Embedder, EmbeddingConfigError, EmbeddingError
from shared.ports.events import EventPublisher
from shared.ports.metadata import Condition, ConditionFailed
from shared.ports.search import SearchIndex
from shared.ports.workflow import BuildTask, Workflow
from shared.rag.graphrag.extraction import BlockAnswer, ExtractionSettings, GraphExtractor, text_blocks
from shared.rag.graphrag.graph import GraphChange, KnowledgeGraph, entity_id, relation_id
from shared.rag.vectors import decode_vector, encode_vector
from shared.repos.datasets import DatasetRepository
from shared.repos.documents import DocumentRepository, Record
from shared.repos.knowledge import BuildTaskRepository
from shared.repos.tenants import Tenant, TenantRepository
from shared.schemas.parser_config import GraphragConfig, RaptorConfig
from shared.services.events import dataset_task_event
from shared.services.ingestion import EmbedderFactory, StepFailed, TaskSuperseded, to_indexed
from shared.services.knowledge import (
    COMMIT_ATTEMPTS,
    GraphStore,
    build_work_prefix,
    entity_record,
    is_finished,
    records_written,
    relation_record,
    relation_text,
    stamp,
)

logger = logging.getLogger(__name__)

ChatModelFactory = Callable[[Tenant, str | None], ChatModel]
#: The fields of a build's state every step needs (a Map iteration gets them plus its document).
BUILD_TASK_FIELDS: Final = ("tenant_id", "dataset_id", "task_id", "task_type")
#: Documents processed at once by the local worker (the Step Functions Map runs as many).
DOCUMENT_CONCURRENCY: Final = 4
#: Blocks of one document sent to the model at once.
BLOCK_CONCURRENCY: Final = 4
#: Per-document lines listed in progress_msg before the rest are counted.
LISTED_DOCUMENTS: Final = 5
#: Texts per embedding request.
EMBED_BATCH: Final = 64
#: Formats RAPTOR skips (RAGFlow's structured files): their rows don't summarize into prose.
TABULAR_SUFFIXES: Final = frozenset({"xlsx", "xls", "csv", "tsv"})
#: Writes of a task's progress tried before giving up (concurrent document steps write the same record).
REPORT_ATTEMPTS: Final = 100
#: progress_msg is kept under this many characters (a store item is bounded; DynamoDB's at 400 KB): its
#: first lines and the latest ones stay, the middle is cut.
PROGRESS_MSG_LIMIT: Final = 32_000
#: Chat models without a known context are given this many tokens; known ones at most the cap.
DEFAULT_CONTEXT_TOKENS: Final = 8192
MAX_CONTEXT_TOKENS: Final = 32768

# Progress of a graph build: received, documents (first..last), merged, resolved, communities, done.
_GRAPH_DOCUMENTS = (0.05, 0.75)
_RAPTOR_DOCUMENTS = (0.05, 0.95)


@dataclass
class _Context:
    """What a step works with: the dataset, its tenant, and (built on first use) the models."""

    dataset: Record
    tenant: Tenant
    model_id: str


def bounded(message: str) -> str:
    """``message`` cut to ``PROGRESS_MSG_LIMIT`` characters: the first lines (the task's start) and as many
    of the last as fit, with a line saying how many were left out."""
    if len(message) <= PROGRESS_MSG_LIMIT:
        return message
    lines = message.split("\n")
    head = lines[:3]
    budget = PROGRESS_MSG_LIMIT - sum(len(line) + 1 for line in head) - 64
    tail: list[str] = []
    for line in reversed(lines[3:]):
        budget -= len(line) + 1
        if budget < 0:
            break
        tail.append(line)
    skipped = len(lines) - len(head) - len(tail)
    return "\n".join([*head, f"… {skipped} lines left out …", *reversed(tail)])


def _listed(template: str, ids: Sequence[str]) -> list[str]:
    lines = [template.format(id) for id in ids[:LISTED_DOCUMENTS]]
    if len(ids) > LISTED_DOCUMENTS:
        lines.append(f"… and {len(ids) - LISTED_DOCUMENTS} more documents likewise.")
    return lines


def _graphrag_config(dataset: Record) -> GraphragConfig:
    raw = dict((dataset.get("parser_config") or {}).get("graphrag") or {})
    defaults = GraphragConfig()
    method = raw.get("method")
    types = raw.get("entity_types")
    return GraphragConfig(
        use_graphrag=True,
        entity_types=[str(t) for t in types] if isinstance(types, list) and types else defaults.entity_types,
        method=method if method in ("light", "general") else defaults.method,
        community=bool(raw.get("community", defaults.community)),
        resolution=bool(raw.get("resolution", defaults.resolution)),
    )


def _raptor_config(dataset: Record) -> RaptorConfig:
    raw = dict((dataset.get("parser_config") or {}).get("raptor") or {})
    defaults = RaptorConfig()

    def number(name: str, default: float, cast: type[int] | type[float]) -> Any:
        value = raw.get(name, default)
        return cast(value) if isinstance(value, int | float) and not isinstance(value, bool) else default

    prompt = raw.get("prompt")
    return RaptorConfig(
        use_raptor=True,
        prompt=prompt if isinstance(prompt, str) and prompt.strip() else defaults.prompt,
        max_token=number("max_token", defaults.max_token, int),
        threshold=number("threshold", defaults.threshold, float),
        max_cluster=max(1, number("max_cluster", defaults.max_cluster, int)),
        random_seed=max(0, number("random_seed", defaults.random_seed, int)),
    )


def is_tabular(document: Record) -> bool:
    return str(document.get("suffix") or "").lower() in TABULAR_SUFFIXES or document.get("chunk_method") == "table"


class KnowledgeBuilder:
    def __init__(
        self,
        *,
        datasets: DatasetRepository,
        documents: DocumentRepository,
        tenants: TenantRepository,
        tasks: BuildTaskRepository,
        graphs: GraphStore,
        blobs: BlobStore,
        index: Callable[[], SearchIndex],
        workflow: Callable[[], Workflow],
        embedder_for: EmbedderFactory,
        chat_model_for: ChatModelFactory,
        catalog: ModelCatalog,
        events: Callable[[], EventPublisher] | None = None,
    ) -> None:
        self._datasets = datasets
        self._documents = documents
        self._tenants = tenants
        self._tasks = tasks
        self._graphs = graphs
        self._blobs = blobs
        self._index = index
        self._workflow = workflow
        self._embedder_for = embedder_for
        self._chat_model_for = chat_model_for
        self._catalog = catalog
        self._events = events

    # == events: one per build that ends (done or failed) ==============================================
    def _emit(self, task: BuildTask, record: Record) -> None:
        """Announce the end of ``task`` (``record`` as it ended); a failure propagates so the step is retried."""
        if self._events is None:
            return
        event = dataset_task_event(
            task["task_type"],
            tenant_id=task["tenant_id"],
            dataset_id=task["dataset_id"],
            task_id=task["task_id"],
            succeeded=float(record.get("progress") or 0.0) == 1.0,
            progress_msg=str(record.get("progress_msg") or ""),
            at=int(record.get("update_time") or now_ms()),
        )
        self._events().publish(event)

    def _emit_if_ended_by(self, task: BuildTask) -> None:
        """A retried finish/fail found its task over: if the task itself ended, announce it again (same id)."""
        record = self._tasks.get(task["dataset_id"], task["task_type"])
        if record is not None and record["id"] == task["task_id"] and is_finished(record):
            self._emit(task, record)

    # == the task record ==============================================================================
    def _current(self, task: BuildTask) -> Record:
        record = self._tasks.get(task["dataset_id"], task["task_type"])
        if record is None or record["id"] != task["task_id"] or is_finished(record):
            raise TaskSuperseded(task["task_id"])
        return record

    def _report(
        self,
        task: BuildTask,
        lines: str | Sequence[str] = (),
        *,
        progress: float | None = None,
        document_done: bool = False,
        finished: bool = False,
        **fields: Any,
    ) -> Record:
        """Append timestamped lines and set fields, as long as the task is still current (optimistic
        writes: concurrent steps of the same build re-read and retry)."""
        lines = [lines] if isinstance(lines, str) else list(lines)
        for attempt in range(REPORT_ATTEMPTS):
            if attempt:
                time.sleep(random.uniform(0, 0.005 * attempt))  # concurrent steps: let the others write first
            record = self._current(task)
            changes = dict(fields)
            if lines:
                previous = record.get("progress_msg") or ""
                added = "\n".join(stamp(line) for line in lines)
                changes["progress_msg"] = bounded(f"{previous}\n{added}" if previous else added)
            value = progress
            if document_done:
                done = int(record.get("documents_done") or 0) + 1
                total = max(1, int(record.get("documents_total") or 1))
                low, high = _GRAPH_DOCUMENTS if task["task_type"] == "graphrag" else _RAPTOR_DOCUMENTS
                changes["documents_done"] = done
                value = low + (high - low) * min(1.0, done / total)
            if value is not None:
                changes["progress"] = round(value, 4)
            now = now_ms()
            changes.update(seq=int(record["seq"]) + 1, update_time=now, update_date=http_date(now))
            try:
                return self._tasks.update(record, changes, finished=finished)
            except ConditionFailed:
                continue
        raise TaskSuperseded(task["task_id"])

    def _note(self, task: BuildTask, line: str) -> None:
        self._report(task, line)

    def _complete(self, task: BuildTask, lines: Sequence[str], done: str) -> None:
        record = self._current(task)
        duration = max(0.0, (now_ms() - int(record.get("begin_ms") or record["create_time"])) / 1000)
        ended = self._report(
            task,
            [*lines, f"{done} ({duration:.2f}s)"],
            progress=1.0,
            process_duration=round(duration, 6),
            finished=True,
        )
        self._blobs.delete_prefix(build_work_prefix(task["tenant_id"], task["dataset_id"], task["task_id"]))
        self._emit(task, ended)

    # == models =======================================================================================
    def _context(self, task: BuildTask) -> _Context:
        dataset = self._datasets.get(task["tenant_id"], task["dataset_id"])
        tenant = self._tenants.get(task["tenant_id"])
        if dataset is None or tenant is None:
            raise TaskSuperseded(task["task_id"])
        model_id = (dataset.get("parser_config") or {}).get("llm_id") or tenant.llm_id
        if not model_id:
            raise StepFailed("No chat model is configured for this tenant: a knowledge build needs one.")
        return _Context(dataset, tenant, str(model_id))

    def _chat_model(self, ctx: _Context) -> ChatModel:
        try:
            return self._chat_model_for(ctx.tenant, ctx.model_id)
        except ChatModelConfigError as exc:
            raise StepFailed(exc.message) from exc

    def _embedder(self, ctx: _Context) -> Embedder:
        try:
            return self._embedder_for(ctx.dataset["embedding_model"], ctx.tenant)
        except EmbeddingConfigError as exc:
            raise StepFailed(f"Embedding failed: {exc.message}") from exc

    def _context_tokens(self, model_id: str) -> int:
        info = self._catalog.find(model_id, "chat")
        if info is None or not info.max_tokens:
            return DEFAULT_CONTEXT_TOKENS
        return min(int(info.max_tokens), MAX_CONTEXT_TOKENS)

    @staticmethod
    def _embed(embedder: Embedder, texts: Sequence[str]) -> list[str]:
        """Encoded vectors of ``texts`` (a config error fails the build; a service error may be retried)."""
        out: list[str] = []
        try:
            for start in range(0, len(texts), EMBED_BATCH):
                out += [encode_vector(v) for v in embedder.embed_documents(list(texts[start : start + EMBED_BATCH]))]
        except EmbeddingConfigError as exc:
            raise StepFailed(f"Embedding failed: {exc.message}") from exc
        return out

    # == steps ========================================================================================
    def prepare(self, task: BuildTask) -> BuildTask:
        """Receive the task and list the documents to process."""
        record = self._current(task)
        now = now_ms()
        self._report(
            task,
            "Task has been received.",
            progress=0.01,
            begin_at=http_date(now),
            begin_ms=now,
            retry_count=int(record.get("retry_count") or 0) + 1,
            documents_done=0,
        )
        ctx = self._context(task)
        self._chat_model(ctx)  # a missing or misconfigured model fails the build now, not per document
        documents = self._documents.list_all(task["dataset_id"], desc=False)
        graphrag = task["task_type"] == "graphrag"
        in_graph = set(self._graphs.load(task["dataset_id"])[1].source_id) if graphrag else set()
        todo, contained, unparsed, tabular = [], [], [], []
        for document in documents:
            if document["id"] in in_graph:
                contained.append(document["id"])
            elif document["run"] != "DONE" or not document.get("chunk_count"):
                unparsed.append(document["id"])
            elif not graphrag and is_tabular(document):
                tabular.append(document["id"])
            else:
                todo.append(document["id"])
        if graphrag:
            lines = _listed("Graph already contains {}", contained)
            lines += _listed("[GraphRAG] doc:{} has no available chunks, skip generation.", unparsed)
        else:
            lines = _listed("[RAPTOR] doc:{} has no available chunks, skip.", unparsed)
            lines += _listed("[RAPTOR] doc:{} holds tabular data, skip.", tabular)
        self._report(task, lines, documents_total=len(todo))
        return {**{k: task[k] for k in BUILD_TASK_FIELDS}, "documents": todo}

    def document(self, task: BuildTask) -> BuildTask:
        """Process one document: its subgraph (graph) or its summary tree (RAPTOR)."""
        self._current(task)
        if task["task_type"] == "graphrag":
            return self._graph_document(task)
        return self._raptor_document(task)

    def finish(self, task: BuildTask) -> BuildTask:
        """Merge the subgraphs into the dataset's graph (graph), or close the task (RAPTOR)."""
        try:
            self._current(task)
        except TaskSuperseded:
            self._emit_if_ended_by(task)
            raise
        if task["task_type"] == "graphrag":
            return self._graph_finish(task)
        self._complete(task, [], "Task done")
        return {**task, "done": True}

    def fail(self, task: BuildTask, message: str) -> None:
        """Mark the task failed with ``message`` (only if it is still current); its work area goes."""
        try:
            ended = self._report(task, f"[ERROR] {message}", progress=-1.0, finished=True)
        except TaskSuperseded:
            self._emit_if_ended_by(task)
            return
        self._blobs.delete_prefix(build_work_prefix(task["tenant_id"], task["dataset_id"], task["task_id"]))
        self._emit(task, ended)

    # == knowledge graph ================================================================================
    def _work_key(self, task: BuildTask, document_id: str) -> str:
        return f"{build_work_prefix(task['tenant_id'], task['dataset_id'], task['task_id'])}{document_id}.json"

    def _kept(self, task: BuildTask, name: str, answer: Callable[[], Any]) -> Any:
        """``answer()``, kept in the build's work area under ``name``: asked once per build, whatever retries."""
        key = f"{build_work_prefix(task['tenant_id'], task['dataset_id'], task['task_id'])}kept/{name}.json"
        found = self._read_work(key)
        if found is not None:
            return found["value"]
        value = answer()
        self._blobs.put(key, json.dumps({"value": value}, ensure_ascii=False).encode("utf-8"), "application/json")
        return value

    def _read_work(self, key: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self._blobs.get(key))
        except BlobNotFound:
            return None
        return data

    def _graph_document(self, task: BuildTask) -> BuildTask:
        document_id = task["document_id"]
        key = self._work_key(task, document_id)
        if self._read_work(key) is not None:
            # Done before this step was retried or the build resumed: counted again, as prepare reset the count.
            self._report(task, document_done=True)
            return task
        label = f"[GraphRAG] build_subgraph doc:{document_id}"
        document = self._documents.get(task["dataset_id"], document_id)
        contents = (
            [c["content"] for c in self._documents.chunks_of(document_id) if not c.get("raptor")] if document else []
        )
        blocks = text_blocks(contents)
        if not blocks:
            self._blobs.put(key, json.dumps({"graph": None}).encode(), "application/json")
            skip = f"[GraphRAG] doc:{document_id} has no available chunks, skip generation."
            self._report(task, skip, document_done=True)
            return task
        self._report(task, f"{label} start (chunks={len(contents)}, blocks={len(blocks)})")
        ctx = self._context(task)
        config = _graphrag_config(ctx.dataset)
        settings = ExtractionSettings(
            entity_types=tuple(config.entity_types),
            method=config.method,
            language=str(ctx.dataset.get("language") or "English"),
            context_tokens=self._context_tokens(ctx.model_id),
        )
        extractor = GraphExtractor(self._chat_model(ctx), settings)
        started = time.perf_counter()

        def extract(number: int, block: str) -> BlockAnswer:
            digest = hashlib.blake2b(block.encode(), digest_size=8).hexdigest()
            entities, relations = self._kept(
                task, f"{document_id}/block-{number}-{digest}", lambda: list(extractor.extract_block(block))
            )
            line = (
                f"Entities extraction of chunk {number} {number}/{len(blocks)} done, {len(entities)} nodes, "
                f"{len(relations)} edges."
            )
            self._report(task, line)
            return entities, relations

        try:
            with ThreadPoolExecutor(min(BLOCK_CONCURRENCY, len(blocks))) as pool:
                found = list(pool.map(extract, range(1, len(blocks) + 1), blocks))
            subgraph, ignored = extractor.subgraph(document_id, found)
        except ChatModelConfigError as exc:
            raise StepFailed(exc.message) from exc
        lines = [f"ignored {ignored} relations due to missing entities."] if ignored else []
        empty = not subgraph.nodes
        payload = {"graph": None if empty else subgraph.to_node_link()}
        self._blobs.put(key, json.dumps(payload, ensure_ascii=False).encode("utf-8"), "application/json")
        elapsed = time.perf_counter() - started
        lines.append(
            f"{label} empty"
            if empty
            else f"{label} done ({len(subgraph.nodes)} entities, {len(subgraph.edges)} relations, {elapsed:.2f}s)"
        )
        self._report(task, lines, document_done=True)
        return task

    def _graph_finish(self, task: BuildTask) -> BuildTask:
        dataset_id = task["dataset_id"]
        subgraphs: list[tuple[str, KnowledgeGraph]] = []
        for document_id in task.get("documents") or []:
            work = self._read_work(self._work_key(task, document_id))
            if work and work.get("graph") and self._documents.get(dataset_id, document_id) is not None:
                subgraphs.append((document_id, KnowledgeGraph.from_node_link(work["graph"])))
        if not subgraphs:
            self._complete(
                task, [f"[GraphRAG] kb:{dataset_id} no subgraphs generated successfully, end."], "Knowledge Graph done"
            )
            return {**task, "merged": 0}
        ctx = self._context(task)
        model = self._chat_model(ctx)
        embedder = self._embedder(ctx)
        for _ in range(COMMIT_ATTEMPTS):
            try:
                graph = self._merge(task, ctx, model, embedder, subgraphs)
            except ConditionFailed:
                continue  # a document was taken out of the graph meanwhile: merge into the new one
            break
        else:
            raise StepFailed("The knowledge graph kept changing during the merge; run the build again.")
        self._complete(
            task,
            [
                f"[GraphRAG] kb:{dataset_id} merge finished, graph ready ({len(graph.nodes)} entities, "
                f"{len(graph.edges)} relations)."
            ],
            "Knowledge Graph done",
        )
        return {**task, "merged": len(subgraphs)}

    def _merge(
        self,
        task: BuildTask,
        ctx: _Context,
        model: ChatModel,
        embedder: Embedder,
        subgraphs: Sequence[tuple[str, KnowledgeGraph]],
    ) -> KnowledgeGraph:
        """One attempt: merge, rank, resolve, report on communities, embed, commit (ConditionFailed when the
        graph moved meanwhile). Every model call comes before the commit."""
        from shared.rag.graphrag.resolution import resolve_entities

        tenant_id, dataset_id = task["tenant_id"], task["dataset_id"]
        config = _graphrag_config(ctx.dataset)
        head, graph = self._graphs.load(dataset_id)
        rewrite_all = head is not None and not records_written(head)
        known_nodes, known_edges = set(graph.nodes), set(graph.edges)
        change = GraphChange()
        merged = 0
        for document_id, subgraph in subgraphs:
            if document_id in graph.source_id:
                continue
            change.add(graph.merge(subgraph))
            merged += 1
        settings = ExtractionSettings(
            entity_types=tuple(config.entity_types),
            method=config.method,
            language=str(ctx.dataset.get("language") or "English"),
            context_tokens=self._context_tokens(ctx.model_id),
        )
        summarizer = GraphExtractor(model, settings)
        for name in change.nodes:
            node = graph.nodes[name]
            node["description"] = summarizer.summarize("entity", name, node.get("description", ""))
        for key in change.edges:
            edge = graph.edges[key]
            edge["description"] = summarizer.summarize("relation", f"{key[0]} -> {key[1]}", edge.get("description", ""))
        graph.update_ranks()
        self._report(
            task,
            f"[GraphRAG] kb:{dataset_id} merged {merged} subgraphs: {len(graph.nodes)} entities, "
            f"{len(graph.edges)} relations.",
            progress=0.8,
        )
        if config.resolution:
            change.add(resolve_entities(graph, set(change.nodes), model, on_progress=lambda m: self._note(task, m)))
            graph.update_ranks()
            self._report(task, "[GraphRAG] entity resolution done.", progress=0.85)
        report_records: list[Record] = []
        gone_reports: list[str] = []
        if config.community:
            report_records, gone_reports = self._communities(task, ctx, model, embedder, graph, change, settings)
        new_nodes = sorted(graph.nodes if rewrite_all else [n for n in graph.nodes if n not in known_nodes])
        new_edges = sorted(graph.edges if rewrite_all else [k for k in change.edges if k in graph.edges])
        node_vectors = self._embed(embedder, new_nodes)
        edge_vectors = self._embed(
            embedder, [relation_text(a, b, str(graph.edges[(a, b)].get("description", ""))) for a, b in new_edges]
        )
        put = [entity_record(tenant_id, dataset_id, n, v) for n, v in zip(new_nodes, node_vectors, strict=True)]
        put += [
            relation_record(tenant_id, dataset_id, a, b, v) for (a, b), v in zip(new_edges, edge_vectors, strict=True)
        ]
        self._current(task)  # stopped (dataset deleted) while the model worked: commit nothing
        self._graphs.commit(
            tenant_id,
            dataset_id,
            head,
            graph,
            put=[*put, *report_records],
            delete={
                "entity": [entity_id(n) for n in known_nodes - set(graph.nodes)],
                "relation": [relation_id(a, b) for a, b in known_edges - set(graph.edges)],
                "community_report": gone_reports,
            },
        )
        return graph

    def _communities(
        self,
        task: BuildTask,
        ctx: _Context,
        model: ChatModel,
        embedder: Embedder,
        graph: KnowledgeGraph,
        change: GraphChange,
        settings: ExtractionSettings,
    ) -> tuple[list[Record], list[str]]:
        """Community reports to write (new, or whose weight changed) and the ids of those that went. A
        community whose entities are the same and unchanged keeps its report."""
        from shared.rag.graphrag.communities import community_id, community_weights, detect_communities, write_report

        dataset_id = task["dataset_id"]
        communities = detect_communities(graph)
        weights = community_weights(graph, communities)
        stored = {r["id"]: r for r in self._graphs.records.records(dataset_id, "community_report")}
        put: list[Record] = []
        fresh: list[tuple[Record, str]] = []
        unusable = 0
        for members, weight in zip(communities, weights, strict=True):
            cid = community_id(members)
            sources = list(dict.fromkeys(s for n in members for s in graph.nodes[n].get("source_id", [])))
            old = stored.get(cid)
            if old is not None and not set(members) & change.nodes:
                put.append({**old, "weight": weight, "source_id": sources})
                continue

            def ask(members: list[str] = members, weight: float = weight) -> dict[str, Any] | None:
                report = write_report(
                    model, graph, members, weight, language=settings.language, context_tokens=settings.context_tokens
                )
                return report.payload() if report is not None else None

            payload = self._kept(task, f"community-{cid}", ask)
            if payload is None:
                unusable += 1
                continue
            record = {
                **payload,
                "weight": weight,
                "source_id": sources,
                "kind": "community_report",
                "tenant_id": task["tenant_id"],
                "dataset_id": dataset_id,
            }
            fresh.append((record, f"{payload['title']}\n{payload['report']}"))
        vectors = self._embed(embedder, [text for _, text in fresh])
        put += [{**record, "vector": vector} for (record, _), vector in zip(fresh, vectors, strict=True)]
        kept = {r["id"] for r in put}
        lines = [f"[GraphRAG] {len(communities)} communities, {len(fresh)} new reports."]
        if unusable:
            lines.append(f"[GraphRAG] {unusable} community reports were unreadable answers, left out.")
        self._report(task, lines, progress=0.9)
        return put, [cid for cid in stored if cid not in kept]

    # == RAPTOR ===========================================================================================
    def _raptor_document(self, task: BuildTask) -> BuildTask:
        from shared.rag.raptor import RaptorSettings, build_tree, cluster_content

        dataset_id, document_id = task["dataset_id"], task["document_id"]
        document = self._documents.get(dataset_id, document_id)
        if document is None or document["run"] != "DONE":
            self._report(task, f"[RAPTOR] doc:{document_id} is gone or being parsed, skip.", document_done=True)
            return task
        ctx = self._context(task)
        config = _raptor_config(ctx.dataset)
        chunks = self._documents.chunks_of(document_id)
        leaves = [c for c in chunks if not c.get("raptor") and c.get("vector")]
        old = [c for c in chunks if c.get("raptor")]
        fingerprint = json.dumps([[c["id"] for c in leaves], config.model_dump(mode="json")], sort_keys=True)
        digest = hashlib.blake2b(fingerprint.encode(), digest_size=8).hexdigest()
        if old and all(c.get("raptor_digest") == digest for c in old):
            self._report(task, f"[RAPTOR] doc:{document_id} already has its summaries, skip.", document_done=True)
            return task
        settings = RaptorSettings(
            prompt=config.prompt,
            max_token=config.max_token,
            threshold=config.threshold,
            max_cluster=config.max_cluster,
            random_seed=config.random_seed,
            context_tokens=self._context_tokens(ctx.model_id),
        )
        model = self._chat_model(ctx)
        embedder = self._embedder(ctx)
        options = ChatOptions(temperature=0.3, max_tokens=max(settings.max_token, 512))

        def summarize(texts: Sequence[str]) -> str:
            prompt = settings.prompt.replace("{cluster_content}", cluster_content(texts, settings))
            messages = [ChatMessage("system", "You're a helpful assistant."), ChatMessage("user", prompt)]
            digest = hashlib.blake2b(prompt.encode(), digest_size=8).hexdigest()
            try:
                summary: str = self._kept(
                    task, f"{document_id}/summary-{digest}", lambda: model.complete(messages, options).text
                )
            except ChatModelConfigError as exc:
                raise StepFailed(exc.message) from exc
            return summary

        def embed(text: str) -> np.ndarray[Any, np.dtype[np.float32]]:
            try:
                vector: np.ndarray[Any, np.dtype[np.float32]] = embedder.embed_documents([text])[0]
                return vector
            except EmbeddingConfigError as exc:
                raise StepFailed(f"Embedding failed: {exc.message}") from exc

        started = time.perf_counter()
        self._report(task, f"[RAPTOR] doc:{document_id} Processing... ({len(leaves)} chunks)")
        summaries = build_tree(
            [c["content"] for c in leaves],
            np.asarray([decode_vector(c["vector"]) for c in leaves]) if leaves else np.zeros((0, 0)),
            settings,
            summarize,
            embed,
            on_layer=lambda before, after: self._note(task, f"Cluster one layer: {before} -> {after}"),
        )
        self._store_summaries(task, document, old, summaries, digest)
        elapsed = time.perf_counter() - started
        self._report(
            task,
            f"[RAPTOR] doc:{document_id} Indexing done ({len(summaries)} summaries, {elapsed:.2f}s).",
            document_done=True,
        )
        return task

    def _store_summaries(
        self, task: BuildTask, document: Record, old: Sequence[Record], summaries: Sequence[Any], digest: str
    ) -> None:
        """Replace the document's RAPTOR chunks by ``summaries`` (store, counts and index)."""
        from shared.rag.tokens import count_tokens

        self._current(task)
        if old:
            self._documents.remove_chunks(document, list(old))
            self._index().delete_chunks(document["tenant_id"], document["dataset_id"], [c["id"] for c in old])
        if not summaries:
            return
        now = now_ms()
        created = datetime.fromtimestamp(now / 1000).strftime("%Y-%m-%d %H:%M:%S")
        chunks: list[Record] = []
        for position, summary in enumerate(summaries):
            seed = f"{document['id']}:raptor:{digest}:{position}:{summary.content}"
            chunks.append(
                {
                    "id": hashlib.blake2b(seed.encode(), digest_size=8).hexdigest(),
                    "document_id": document["id"],
                    "dataset_id": document["dataset_id"],
                    "tenant_id": document["tenant_id"],
                    "content": summary.content,
                    "important_keywords": [],
                    "questions": [],
                    "tag_kwd": [],
                    "page_numbers": [],
                    "positions": [],
                    "image_id": "",
                    "available": True,
                    "token_count": count_tokens(summary.content),
                    "create_time": created,
                    "create_timestamp": now / 1000,
                    # After the document's own chunks, by layer.
                    "order": f"{999_999:06d}{summary.layer:03d}{position:06d}",
                    "vector": encode_vector(summary.vector),
                    "raptor": True,
                    "raptor_layer": summary.layer,
                    "raptor_digest": digest,
                }
            )
        current = self._documents.get(document["dataset_id"], document["id"])
        if current is None or current["run"] != "DONE":
            return  # deleted or re-parsed meanwhile: its new chunks will be summarized by a next run
        tokens = sum(c["token_count"] for c in chunks)
        self._documents.put_chunks(chunks)
        try:
            self._documents.update(
                current,
                {
                    "chunk_count": current["chunk_count"] + len(chunks),
                    "token_count": current["token_count"] + tokens,
                    "update_time": now_ms(),
                },
                condition=Condition("equals", "progress_token", current.get("progress_token")),
                dataset_deltas={"chunk_count": len(chunks), "token_num": tokens},
            )
        except ConditionFailed:
            self._documents.delete_chunks(document["id"], [c["id"] for c in chunks])
            return
        enabled = current.get("status") == "1"
        self._index().upsert(
            [to_indexed(c, current["name"], decode_vector(c["vector"]), enabled=enabled) for c in chunks]
        )

    # == in-process ==================================================================================
    def run_task(self, task: BuildTask) -> None:
        """Every step of ``task`` in order (the local worker); mirrors the Step Functions definition."""
        try:
            state = self.prepare(task)
            fields = {k: state[k] for k in BUILD_TASK_FIELDS}
            documents = state["documents"]
            if documents:
                with ThreadPoolExecutor(min(DOCUMENT_CONCURRENCY, len(documents))) as pool:
                    futures = [pool.submit(self.document, {**fields, "document_id": d}) for d in documents]
                    try:
                        for future in futures:
                            future.result()
                    except BaseException:
                        for future in futures:
                            future.cancel()
                        raise
            self.finish(state)
        except TaskSuperseded:
            logger.info("knowledge build %s superseded", task["task_id"])
        except StepFailed as exc:
            self.fail(task, str(exc))
        except ChatModelError as exc:
            self.fail(task, f"The chat model failed: {exc.message}")
        except EmbeddingError as exc:
            self.fail(task, f"Embedding failed: {exc.message}")
        except Exception:
            logger.exception("knowledge build %s failed", task["task_id"])
            self.fail(task, "Internal error while building; see the server log.")

    def resume_interrupted(self) -> int:
        """Start again the builds a previous process left running (the local worker calls this at start):
        the same task, so work it finished (documents' subgraphs, RAPTOR chunks) is kept."""
        resumed = 0
        for record in self._tasks.running():
            current = self._tasks.get(record["dataset_id"], record["task_type"])
            if current is None or current["id"] != record["id"] or is_finished(current):
                continue
            task = {
                "tenant_id": current["tenant_id"],
                "dataset_id": current["dataset_id"],
                "task_id": current["id"],
                "task_type": current["task_type"],
            }
            try:
                self._report(task, "Worker restarted; building again.")
            except TaskSuperseded:
                continue
            self._workflow().start_build(task)
            resumed += 1
        return resumed
