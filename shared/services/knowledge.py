"""Knowledge graphs and RAPTOR: start and trace their builds, read and delete a dataset's graph, and take a
deleted document's contribution out of it.

The builds themselves run in the background (``shared.services.knowledge_builds``); this module holds what
the API and the document deletion need: the task records (RAGFlow's ``Task`` shape, see ``task_view``) and
the dataset's graph as stored — a node-link blob pointed at by a versioned head, plus one record per entity,
relation and community report (with its vector) mirrored into the search index as non-retrievable records.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from shared.errors import DataError
from shared.ids import http_date, new_id, now_ms, record_times
from shared.pipeline import BUILD_TIMEOUT_S
from shared.ports.blobs import BlobNotFound, BlobStore
from shared.ports.metadata import ConditionFailed, StoreUnavailable
from shared.ports.search import IndexedChunk, SearchIndex
from shared.ports.workflow import Workflow
from shared.rag.graphrag.graph import EdgeKey, GraphChange, KnowledgeGraph, entity_id, relation_id, shown
from shared.repos.datasets import DatasetRepository
from shared.repos.documents import DocumentRepository, Record
from shared.repos.knowledge import BuildTaskRepository, GraphRepository

logger = logging.getLogger(__name__)

TaskType = Literal["graphrag", "raptor"]
TASK_TYPES: Final[tuple[TaskType, ...]] = ("graphrag", "raptor")
#: RAGFlow's page range of a dataset-wide task (no pages).
TASK_PAGE: Final = 100_000_000
_RUNNING_MESSAGE: Final = {
    "graphrag": "A Graph Task is already running.",
    "raptor": "A RAPTOR Task is already running.",
}
_ANSWER_FIELD: Final = {"graphrag": "graphrag_task_id", "raptor": "raptor_task_id"}
#: What ``trace_graphrag`` / ``trace_raptor`` show of a task (RAGFlow's Task.to_dict()).
TASK_VIEW_FIELDS: Final = (
    "id",
    "doc_id",
    "from_page",
    "to_page",
    "task_type",
    "priority",
    "begin_at",
    "process_duration",
    "progress",
    "progress_msg",
    "retry_count",
    "digest",
    "chunk_ids",
    "create_time",
    "create_date",
    "update_time",
    "update_date",
)
#: A task not heard from for this long is taken as abandoned (on AWS its execution has timed out by then),
#: so a new one may start.
ABANDONED_AFTER_MS: Final = BUILD_TIMEOUT_S * 1000
#: Attempts at moving the graph's head when others move it meanwhile.
COMMIT_ATTEMPTS: Final = 5


def stamp(line: str) -> str:
    """A progress_msg line: the time, then the text (as RAGFlow writes them)."""
    return f"{datetime.now().strftime('%H:%M:%S')} {line}"


def is_finished(record: Mapping[str, Any]) -> bool:
    return float(record.get("progress") or 0.0) in (1.0, -1.0)


def task_view(record: Mapping[str, Any]) -> dict[str, Any]:
    return {key: record.get(key) for key in TASK_VIEW_FIELDS}


def graph_blob_prefix(tenant_id: str, dataset_id: str) -> str:
    return f"kg/{tenant_id}/{dataset_id}/"


def build_work_prefix(tenant_id: str, dataset_id: str, task_id: str) -> str:
    """Where a build keeps its per-document results until its last step."""
    return f"{graph_blob_prefix(tenant_id, dataset_id)}work/{task_id}/"


# == graph records ==========================================================================================
def entity_record(tenant_id: str, dataset_id: str, name: str, vector: str) -> Record:
    """An entity's record: its name and the vector of its name (what ``use_kg`` searches entities by)."""
    return {
        "id": entity_id(name),
        "kind": "entity",
        "tenant_id": tenant_id,
        "dataset_id": dataset_id,
        "name": name,
        "vector": vector,
    }


def relation_record(tenant_id: str, dataset_id: str, a: str, b: str, vector: str) -> Record:
    """A relation's record: its ends and the vector of ``"A->B: description"`` (RAGFlow's relation text)."""
    return {
        "id": relation_id(a, b),
        "kind": "relation",
        "tenant_id": tenant_id,
        "dataset_id": dataset_id,
        "from": a,
        "to": b,
        "vector": vector,
    }


def relation_text(a: str, b: str, description: str) -> str:
    return f"{a}->{b}: {description}"


def record_to_indexed(record: Mapping[str, Any]) -> IndexedChunk:
    """A graph record as the search index holds it: searchable only by its kind, never by plain retrieval."""
    from shared.rag.vectors import decode_vector

    kind = record["kind"]
    if kind == "entity":
        content = record["name"]
    elif kind == "relation":
        content = f"{record['from']} -> {record['to']}"
    else:
        content = record.get("title", "")
    vector: list[float] = [float(x) for x in decode_vector(record["vector"])] if record.get("vector") else []
    return IndexedChunk(
        id=record["id"],
        tenant_id=record["tenant_id"],
        dataset_id=record["dataset_id"],
        document_id="",
        document_name="",
        content=content,
        vector=vector,
        kind=kind,
    )


def records_written(head: Mapping[str, Any] | None) -> bool:
    """Whether every node and edge of the head's graph has its record (see GraphRepository.mark_records_written)."""
    return head is not None and head.get("records_version") == head.get("version")


def graph_index_records(graphs: GraphRepository) -> Iterator[IndexedChunk]:
    """Every graph record of every dataset as the index holds it (rebuilding the index)."""
    for record in graphs.iter_all_records():
        yield record_to_indexed(record)


@dataclass(frozen=True)
class GraphView:
    """A dataset's graph as searches read it, with the ids of its records mapped back to names."""

    graph: KnowledgeGraph
    entities: dict[str, str]  # entity record id -> name
    relations: dict[str, EdgeKey]  # relation record id -> (a, b)

    @staticmethod
    def of(graph: KnowledgeGraph) -> GraphView:
        return GraphView(
            graph,
            {entity_id(name): name for name in graph.nodes},
            {relation_id(a, b): (a, b) for a, b in graph.edges},
        )


class GraphStore:
    """A dataset's graph as stored: the head, the node-link blob it points at, the records and their index
    entries. Writers move the head with a condition on its version, so concurrent writers never lose each
    other's changes: the loser reloads and retries."""

    #: Graphs kept in memory for searches (a warm function reads a graph once per version).
    CACHED_GRAPHS: Final = 16

    def __init__(self, graphs: GraphRepository, blobs: BlobStore, index: Callable[[], SearchIndex]) -> None:
        self._graphs = graphs
        self._blobs = blobs
        self._index = index
        self._views: OrderedDict[str, tuple[str, GraphView]] = OrderedDict()
        self._views_lock = threading.Lock()

    def view(self, dataset_id: str) -> GraphView | None:
        """The dataset's current graph for searching (read again only when its head moved); None without one."""
        head = self._graphs.head(dataset_id)
        if head is None:
            return None
        with self._views_lock:
            cached = self._views.get(dataset_id)
            if cached is not None and cached[0] == head["graph_key"]:
                self._views.move_to_end(dataset_id)
                return cached[1]
        try:
            graph = KnowledgeGraph.from_node_link(json.loads(self._blobs.get(head["graph_key"])))
        except BlobNotFound:  # replaced meanwhile: read the new head
            _, graph = self.load(dataset_id)
        view = GraphView.of(graph)
        with self._views_lock:
            self._views[dataset_id] = (head["graph_key"], view)
            while len(self._views) > self.CACHED_GRAPHS:
                self._views.popitem(last=False)
        return view

    @property
    def records(self) -> GraphRepository:
        return self._graphs

    def node_link(self, dataset_id: str) -> tuple[Record | None, dict[str, Any] | None]:
        """The head and the graph's node-link JSON (None, None when the dataset has no graph)."""
        head = self._graphs.head(dataset_id)
        if head is None:
            return None, None
        try:
            data: dict[str, Any] = json.loads(self._blobs.get(head["graph_key"]))
        except BlobNotFound:
            return head, None  # replaced meanwhile by a newer version; the caller may read again
        return head, data

    def load(self, dataset_id: str) -> tuple[Record | None, KnowledgeGraph]:
        """The head and the graph (an empty graph when there is none)."""
        for _ in range(COMMIT_ATTEMPTS):
            head, data = self.node_link(dataset_id)
            if head is None:
                return None, KnowledgeGraph()
            if data is not None:
                return head, KnowledgeGraph.from_node_link(data)
        raise ConditionFailed("the graph kept changing while it was read")

    def commit(
        self,
        tenant_id: str,
        dataset_id: str,
        previous: Record | None,
        graph: KnowledgeGraph,
        *,
        put: Sequence[Record] = (),
        delete: Mapping[str, Iterable[str]] | None = None,
        records_complete: bool = True,
    ) -> Record:
        """Store ``graph`` as the dataset's graph if its head is still ``previous`` (ConditionFailed when not),
        then write and delete records (store and index). The head moves first: the graph is the truth the
        records follow; retrieval skips records the graph no longer has. ``records_complete``: with these
        writes every node and edge has its record (noted on the head once written)."""
        key = f"{graph_blob_prefix(tenant_id, dataset_id)}graph-{new_id()}.json"
        payload = json.dumps(graph.to_node_link(), ensure_ascii=False).encode("utf-8")
        self._blobs.put(key, payload, "application/json")
        try:
            head = self._graphs.move_head(
                tenant_id,
                dataset_id,
                previous,
                {"graph_key": key, "nodes": len(graph.nodes), "edges": len(graph.edges), "update_time": now_ms()},
            )
        except ConditionFailed:
            self._blobs.delete(key)
            raise
        if put:
            self._graphs.put_records(dataset_id, put)
            self._index().upsert([record_to_indexed(r) for r in put])
        gone: list[str] = []
        for kind, ids in (delete or {}).items():
            listed = list(dict.fromkeys(ids))
            if listed:
                self._graphs.delete_records(dataset_id, kind, listed)
                gone += listed
        if gone:
            self._index().delete_chunks(tenant_id, dataset_id, gone)
        if records_complete:
            self._graphs.mark_records_written(dataset_id, int(head["version"]))
        if previous is not None:
            self._blobs.delete(previous["graph_key"])
        return head

    def delete(self, tenant_id: str, dataset_id: str, *, with_work: bool = False) -> None:
        """Remove the graph: head, records, index entries and blobs (``with_work``: running builds' too)."""
        ids = self._graphs.delete_all(dataset_id)
        if ids:
            self._index().delete_chunks(tenant_id, dataset_id, ids)
        prefix = graph_blob_prefix(tenant_id, dataset_id)
        self._blobs.delete_prefix(prefix if with_work else f"{prefix}graph-")

    def forget(self, tenant_id: str, dataset_id: str, document_ids: Sequence[str]) -> GraphChange:
        """Take documents' contribution out of the graph (their deletion): they leave every ``source_id``;
        entities, relations and community reports left without a source go. No model is needed: the vectors
        of what stays are still those of its name / text."""
        for _ in range(COMMIT_ATTEMPTS):
            head, graph = self.load(dataset_id)
            if head is None or not set(document_ids) & set(graph.source_id):
                return GraphChange()
            change = GraphChange()
            for document_id in document_ids:
                change.add(graph.remove_source(document_id))
            if not graph.nodes:
                self.delete(tenant_id, dataset_id)
                return change
            graph.update_ranks()
            kept_reports, gone_reports = [], []
            for report in self._graphs.records(dataset_id, "community_report"):
                sources = [s for s in report.get("source_id", []) if s not in document_ids]
                members = [n for n in report.get("entities", []) if n in graph.nodes]
                if not sources or len(members) < 2:
                    gone_reports.append(report["id"])
                elif sources != report.get("source_id"):
                    kept_reports.append({**report, "source_id": sources})
            try:
                self.commit(
                    tenant_id,
                    dataset_id,
                    head,
                    graph,
                    put=kept_reports,
                    delete={
                        "entity": [entity_id(n) for n in change.removed_nodes],
                        "relation": [relation_id(a, b) for a, b in change.removed_edges],
                        "community_report": gone_reports,
                    },
                    records_complete=records_written(head),
                )
            except ConditionFailed:
                continue
            return change
        raise ConditionFailed("the graph kept changing while documents were taken out of it")


# == the API ================================================================================================
class KnowledgeService:
    def __init__(
        self,
        *,
        datasets: DatasetRepository,
        documents: DocumentRepository,
        tasks: BuildTaskRepository,
        graphs: GraphStore,
        workflow: Callable[[], Workflow],
    ) -> None:
        self._datasets = datasets
        self._documents = documents
        self._tasks = tasks
        self._graphs = graphs
        self._workflow = workflow

    def _dataset(self, tenant_id: str, dataset_id: str, missing: str) -> Record:
        dataset = self._datasets.get(tenant_id, dataset_id)
        if dataset is None:
            raise DataError(missing)
        return dataset

    def run(self, tenant_id: str, dataset_id: str, task_type: TaskType) -> dict[str, str]:
        """Start building the dataset's knowledge graph or RAPTOR tree: refused while one is running."""
        self._dataset(tenant_id, dataset_id, "Invalid Dataset ID")
        previous = self._tasks.get(dataset_id, task_type)
        self._refuse_if_running(previous)
        documents = self._documents.list_all(dataset_id, desc=False)
        if not documents:
            raise DataError(f"No documents in Dataset {dataset_id}")
        now = now_ms()
        task_id = new_id()
        document_ids = [d["id"] for d in documents]
        digest = hashlib.blake2b(f"{task_type}:{dataset_id}:{','.join(document_ids)}".encode(), digest_size=8)
        record = {
            "id": task_id,
            "tenant_id": tenant_id,
            "dataset_id": dataset_id,
            "doc_id": documents[0]["id"],
            "from_page": TASK_PAGE,
            "to_page": TASK_PAGE,
            "task_type": task_type,
            "priority": 0,
            "begin_at": None,
            "process_duration": 0.0,
            "progress": 0.0,
            "progress_msg": stamp(f"created task {task_type}"),
            "retry_count": 0,
            "digest": digest.hexdigest(),
            "chunk_ids": "",
            **record_times(now),
            "seq": 0,
        }
        try:
            self._tasks.replace(record, previous)
        except ConditionFailed:
            self._refuse_if_running(self._tasks.get(dataset_id, task_type))
            raise DataError(_RUNNING_MESSAGE[task_type]) from None  # replaced by a run that already ended
        try:
            self._workflow().start_build(
                {"tenant_id": tenant_id, "dataset_id": dataset_id, "task_id": task_id, "task_type": task_type}
            )
        except StoreUnavailable:
            # Nothing will run it: the task ends failed rather than showing "running" until abandoned.
            failed = now_ms()
            self._tasks.update(
                record,
                {
                    "progress": -1.0,
                    "progress_msg": record["progress_msg"] + "\n" + stamp("[ERROR] The build could not be started."),
                    "seq": 1,
                    "update_time": failed,
                    "update_date": http_date(failed),
                },
                finished=True,
            )
            raise
        return {_ANSWER_FIELD[task_type]: task_id}

    @staticmethod
    def _refuse_if_running(task: Record | None) -> None:
        if task is None or is_finished(task):
            return
        if now_ms() - int(task.get("update_time") or 0) > ABANDONED_AFTER_MS:
            return
        message = _RUNNING_MESSAGE[task["task_type"]]
        raise DataError(f"Task {task['id']} in progress with status {task['progress']}. {message}")

    def trace(self, tenant_id: str, dataset_id: str, task_type: TaskType) -> dict[str, Any]:
        """The dataset's latest task of that type, ``{}`` when none ran."""
        self._dataset(tenant_id, dataset_id, "Invalid Dataset ID")
        task = self._tasks.get(dataset_id, task_type)
        return task_view(task) if task is not None else {}

    def knowledge_graph(self, tenant_id: str, dataset_id: str) -> dict[str, Any]:
        """The graph trimmed to its best nodes and edges, and the (always empty) mind map."""
        self._dataset(tenant_id, dataset_id, "The dataset doesn't exist")
        for _ in range(COMMIT_ATTEMPTS):
            head, data = self._graphs.node_link(dataset_id)
            if head is None:
                break
            if data is not None:
                return {"graph": shown(data), "mind_map": {}}
        return {"graph": {}, "mind_map": {}}

    def delete_graph(self, tenant_id: str, dataset_id: str) -> bool:
        """Remove the graph with its entity, relation and community records."""
        self._dataset(tenant_id, dataset_id, "The dataset doesn't exist")
        self._graphs.delete(tenant_id, dataset_id)
        return True
