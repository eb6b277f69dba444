"""The parse pipeline's use cases: start and stop parses, and the steps themselves.

Each step takes a task state (small JSON) and returns the next one; artifacts between steps live in
blob storage under ``work/<tenant>/<dataset>/<document>/<task>/``. Steps are idempotent (chunk ids
are derived from the document, the page range, the position and the content) and check before they
start that their task is still the document's current one, so a stop or a re-parse ends them.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.errors import DataError
from shared.ids import http_date, new_id, now_ms
from shared.pipeline import INGEST_PREFIX, WHOLE_DOCUMENT
from shared.ports.blobs import BlobStore
from shared.ports.chat_model import ChatModel
from shared.ports.embedder import Embedder, EmbeddingConfigError, EmbeddingError, Vectors
from shared.ports.events import EventPublisher
from shared.ports.metadata import ITEM_NOT_EXISTS, Condition, ConditionFailed, MetadataStore
from shared.ports.search import IndexedChunk, SearchIndex
from shared.ports.workflow import ParseTask, Workflow
from shared.rag.embedding import blend_title, embed_with_title
from shared.rag.types import ChunkDraft, ExtractedDocument, Section
from shared.rag.vectors import decode_vector, encode_vector
from shared.repos.datasets import DatasetRepository
from shared.repos.documents import DocumentRepository, Record
from shared.repos.tenants import Tenant, TenantRepository
from shared.services.events import parse_event, publish_quietly

if TYPE_CHECKING:  # the step functions import this module; they never read requests
    from shared.schemas.documents import DocumentIdsRequest

logger = logging.getLogger(__name__)

EmbedderFactory = Callable[[str, Tenant], Embedder]


class TaskSuperseded(Exception):
    """The document was stopped, re-parsed or deleted since this task started: stop quietly."""


class StepFailed(Exception):
    """A step failed for a reason the user should read (goes to progress_msg)."""


def _stamp(line: str) -> str:
    return f"{datetime.now().strftime('%H:%M:%S')} {line}"


def _range_label(rng: list[int]) -> str:
    return f"Page({rng[0] + 1}~{rng[1] + 1})"


def chunk_id(document_id: str, range_start: int, position: int, content: str) -> str:
    """Deterministic chunk id (16 hex, like RAGFlow's): a retried step rewrites the same chunks."""
    digest = hashlib.blake2b(f"{document_id}:{range_start}:{position}:{content}".encode(), digest_size=8)
    return digest.hexdigest()


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"__bytes__": base64.b64encode(value).decode("ascii")}
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _json_hook(value: dict[str, Any]) -> Any:
    if set(value) == {"__bytes__"}:
        return base64.b64decode(value["__bytes__"])
    return value


def _dump(value: Any) -> bytes:
    return json.dumps(value, default=_json_default, ensure_ascii=False).encode("utf-8")


def _load(data: bytes) -> Any:
    return json.loads(data, object_hook=_json_hook)


@dataclass(eq=False)
class DocumentRun:
    """One document's parse in the local pipeline: what its page ranges share between stages."""

    task: ParseTask
    #: Page ranges planned; the document is finished when as many are stored.
    ranges: int
    record: Record | None = None
    embedder: Embedder | None = None
    #: The document name's vector, embedded with the first range (when the title is weighted in).
    title_vector: Vectors | None = None
    stored: int = 0
    chunk_count: int = 0
    token_count: int = 0


@dataclass(eq=False)
class RangeWork:
    """One page range of a document in the local pipeline: its chunks, then their vectors."""

    run: DocumentRun
    range: list[int]
    drafts: list[ChunkDraft]
    vectors: Vectors | None = None
    #: This range's share of the time its embedding call took.
    embed_seconds: float = 0.0

    @property
    def size(self) -> int:
        """Texts to embed: what the worker counts when it gathers a batch."""
        return len(self.drafts)


def _embed_together(works: Sequence[RangeWork]) -> None:
    """Embed the texts of ``works`` (one model) in one call, the titles of their documents with them."""
    started = time.perf_counter()
    embedder = works[0].run.embedder
    assert embedder is not None
    texts = [embedding_text(d.content, d.questions) for work in works for d in work.drafts]
    titled: list[DocumentRun] = []
    for work in works:
        run = work.run
        if run.title_vector is None and title_weight(_record(run)) > 0 and run not in titled:
            titled.append(run)
    vectors = embedder.embed_documents(texts + [_record(run)["name"] for run in titled])
    for run, vector in zip(titled, vectors[len(texts) :], strict=True):
        run.title_vector = vector
    elapsed = time.perf_counter() - started
    offset = 0
    for work in works:
        count = len(work.drafts)
        rows = vectors[offset : offset + count]
        weight = title_weight(_record(work.run))
        title = work.run.title_vector
        work.vectors = blend_title(rows, title, weight) if title is not None and count else rows
        work.embed_seconds = elapsed * count / max(1, len(texts))
        offset += count


def _record(run: DocumentRun) -> Record:
    assert run.record is not None, "a range is yielded after its document was read"
    return run.record


class IngestionService:
    def __init__(
        self,
        *,
        store: MetadataStore,
        datasets: DatasetRepository,
        documents: DocumentRepository,
        tenants: TenantRepository,
        blobs: BlobStore,
        index: Callable[[], SearchIndex],
        workflow: Callable[[], Workflow],
        embedder_for: EmbedderFactory,
        chat_model_for: Callable[[Tenant, str | None], ChatModel] | None = None,
        events: Callable[[], EventPublisher] | None = None,
    ) -> None:
        self._store = store
        self._datasets = datasets
        self._documents = documents
        self._tenants = tenants
        self._blobs = blobs
        self._index = index
        self._workflow = workflow
        self._embedder_for = embedder_for
        self._chat_model_for = chat_model_for
        self._events = events

    # == events: one per parse that ends (DONE, FAIL, CANCEL) =========================================
    def _emit(self, document: Record, task_id: str) -> None:
        """Publish the end of ``task_id``; a failure propagates so the step is retried (and re-emits)."""
        if self._events is not None:
            self._events().publish(parse_event(document, task_id))

    def _emit_if_ended_by(self, task: ParseTask) -> None:
        """A step found its task superseded: when the task itself ended the parse (a retried finish or
        fail after its write), publish that end again under the same event id — the first publish may
        not have happened. Consumers dedupe by id."""
        record = self._documents.get(task["dataset_id"], task["document_id"])
        if record is not None and record.get("task_id") == task["task_id"] and record["run"] in ("DONE", "FAIL"):
            self._emit(record, task["task_id"])

    # == API: parse and stop =========================================================================
    def _owned_dataset(self, tenant_id: str, dataset_id: str) -> None:
        if self._datasets.get(tenant_id, dataset_id) is None:
            raise DataError(f"You don't own the dataset {dataset_id}.")

    def parse(self, tenant_id: str, dataset_id: str, request: DocumentIdsRequest) -> dict[str, Any] | None:
        """Queue documents for (re-)parsing; old chunks are replaced. A running document refuses the whole
        request before anything is queued; like RAGFlow, the documents found are queued before the ids not
        found are reported."""
        self._owned_dataset(tenant_id, dataset_id)
        ids, duplicates = request.unique_ids()
        records = [(i, self._documents.get(dataset_id, i)) for i in ids]
        found = [record for _, record in records if record is not None]
        if any(record["run"] == "RUNNING" for record in found):
            raise DataError("Can't parse document that is currently being processed")
        for record in found:
            self.start(record)
        not_found = [i for i, record in records if record is None]
        if not_found:
            raise DataError(f"Documents not found: {not_found}")
        if duplicates:
            return {"success_count": len(ids), "errors": duplicates}
        return None

    def start(self, record: Record, note: str | None = None) -> ParseTask:
        """Mark a document RUNNING under a new task id and hand the task to the workflow.

        ``note`` opens the new progress_msg (e.g. why the parse restarted)."""
        return start_parse(self._documents, self._workflow(), record, note)

    def stop(self, tenant_id: str, dataset_id: str, request: DocumentIdsRequest) -> dict[str, Any] | None:
        """Cancel running parses; their chunks are removed and the document ends in CANCEL."""
        self._owned_dataset(tenant_id, dataset_id)
        ids, duplicates = request.unique_ids()
        records = []
        for document_id in ids:
            record = self._documents.get(dataset_id, document_id)
            if record is None:
                raise DataError(f"You don't own the document {document_id}.")
            if record["run"] != "RUNNING":
                raise DataError("Can't stop parsing document with progress at 0 or 1")
            records.append(record)
        for record in records:
            self._clear(record, run="CANCEL", line="Task has been canceled.")
        if duplicates:
            return {"success_count": len(ids), "errors": duplicates}
        return None

    def _clear(self, record: Record, *, run: str, line: str) -> None:
        """End the current task (if any) and remove the document's chunks from store and index."""
        now = now_ms()
        msg = (record.get("progress_msg") or "") + ("\n" if record.get("progress_msg") else "") + _stamp(line)
        try:
            cleared = self._documents.update(
                record,
                {
                    "run": run,
                    "progress": 0.0,
                    "progress_msg": msg,
                    "task_id": None,
                    "progress_token": None,
                    "chunk_count": 0,
                    "token_count": 0,
                    "update_time": now,
                    "update_date": http_date(now),
                },
                condition=Condition("equals", "progress_token", record.get("progress_token")),
                dataset_deltas={"chunk_count": -record["chunk_count"], "token_num": -record["token_count"]},
            )
        except ConditionFailed:
            current = self._documents.get(record["dataset_id"], record["id"])
            if current is None:
                return
            return self._clear(current, run=run, line=line)
        self._documents.delete_chunks_of(record["id"])
        self._index().delete_document(record["tenant_id"], record["dataset_id"], record["id"])
        if self._events is not None and record.get("task_id"):
            publish_quietly(self._events(), parse_event(cleared, record["task_id"]))

    # == steps ======================================================================================
    def _current(self, task: ParseTask) -> Record:
        record = self._documents.get(task["dataset_id"], task["document_id"])
        if record is None or record.get("task_id") != task["task_id"] or record["run"] != "RUNNING":
            raise TaskSuperseded(task["task_id"])
        return record

    def _report(
        self, task: ParseTask, line: str | None = None, *, earlier: Sequence[str] = (), **fields: Any
    ) -> Record:
        """Append timestamped progress lines and set fields, as long as the task is still current.

        ``earlier`` are lines already stamped (when what they say happened) that go before ``line``: a stage
        that does several things in a row says them all in one write."""
        for _ in range(20):
            record = self._current(task)
            token = record["progress_token"]
            seq = int(token.rsplit(":", 1)[1]) + 1
            changes = dict(fields)
            lines = [*earlier, _stamp(line)] if line is not None else list(earlier)
            if lines:
                previous = record.get("progress_msg") or ""
                changes["progress_msg"] = "\n".join([previous, *lines] if previous else lines)
            now = now_ms()
            changes.update(progress_token=f"{task['task_id']}:{seq}", update_time=now, update_date=http_date(now))
            try:
                return self._documents.update(record, changes, condition=Condition("equals", "progress_token", token))
            except ConditionFailed:
                continue  # another step of the same task reported meanwhile; re-read and retry
        raise TaskSuperseded(task["task_id"])

    def _work_key(self, task: ParseTask, rng: list[int], name: str) -> str:
        return (
            f"work/{task['tenant_id']}/{task['dataset_id']}/{task['document_id']}/{task['task_id']}/"
            f"{rng[0]}-{rng[1]}/{name}"
        )

    def prepare(self, task: ParseTask) -> ParseTask:
        """Receive the task: drop the previous chunks and plan the page ranges."""
        record = self._current(task)
        self._report(task, "Task has been received.", progress=0.01)
        if record["chunk_count"] or self._documents.chunks_of(record["id"]):
            self._drop_chunks(task, record)
        ranges = [list(WHOLE_DOCUMENT)]
        if record["suffix"] == "pdf":
            from shared.rag.parsers import ParseError, count_pdf_pages

            try:
                pages = count_pdf_pages(self._blobs.get(record["blob_key"]), record["name"])
            except ParseError as exc:
                raise StepFailed(exc.message) from exc
            size = max(1, int(record["parser_config"].get("task_page_size") or 12))
            ranges = [[start, min(start + size, pages)] for start in range(0, max(pages, 1), size)]
        return {**task, "ranges": ranges}

    def _drop_chunks(self, task: ParseTask, record: Record) -> None:
        ids = self._documents.delete_chunks_of(record["id"])
        self._index().delete_chunks(record["tenant_id"], record["dataset_id"], ids)
        self._index().delete_document(record["tenant_id"], record["dataset_id"], record["id"])
        if record["chunk_count"] or record["token_count"]:
            self._documents.update(
                record,
                {"chunk_count": 0, "token_count": 0, "update_time": now_ms()},
                dataset_deltas={"chunk_count": -record["chunk_count"], "token_num": -record["token_count"]},
            )

    def extract(self, task: ParseTask) -> ParseTask:
        """Turn the original (or one page range of a PDF) into sections."""
        record = self._current(task)
        rng = task["range"]
        self._report(task, f"{_range_label(rng)}: Start to parse.")
        doc = self._extract(record, rng)
        key = self._work_key(task, rng, "extracted.json")
        self._blobs.put(key, _dump(asdict(doc)), "application/json")
        self._report(task, f"{_range_label(rng)}: Finish parsing.", progress=0.2)
        return {**task, "extracted": key}

    def _extract(self, record: Record, rng: list[int]) -> ExtractedDocument:
        from shared.rag.parsers import ParseError, extract, extract_pdf_pages

        data = self._blobs.get(record["blob_key"])
        try:
            if record["type"] == "visual":
                return ExtractedDocument(record["name"], [Section("", kind="image", meta={"image": data})])
            if record["suffix"] == "pdf" and list(rng) != list(WHOLE_DOCUMENT):
                return extract_pdf_pages(data, rng[0], rng[1], filename=record["name"])
            return extract(record["name"], data)
        except ParseError as exc:
            raise StepFailed(exc.message) from exc

    def chunk(self, task: ParseTask) -> ParseTask:
        """Cut the sections into chunks with the document's chunk method."""
        record = self._current(task)
        rng = task["range"]
        raw = _load(self._blobs.get(task["extracted"]))
        doc = ExtractedDocument(
            filename=raw["filename"],
            sections=[Section(**section) for section in raw["sections"]],
            pages=raw.get("pages"),
            meta=raw.get("meta") or {},
        )
        drafts = self._chunk(task, record, doc)
        key = self._work_key(task, rng, "chunks.json")
        self._blobs.put(key, _dump([asdict(d) for d in drafts]), "application/json")
        self._report(task, f"{_range_label(rng)}: Generate {len(drafts)} chunks", progress=0.4)
        return {**task, "chunks": key}

    def _chunk(self, task: ParseTask, record: Record, doc: ExtractedDocument) -> list[ChunkDraft]:
        from shared.rag.chunkers import ChunkingError, NothingToChunk, chunk_document, wants_llm_enrichment

        try:
            describe = self._image_describer(record) if record["chunk_method"] == "picture" else None
            drafts = chunk_document(doc, record["chunk_method"], record["parser_config"], describe_image=describe)
        except NothingToChunk as exc:
            if list(task["range"]) != list(WHOLE_DOCUMENT):
                drafts = []  # a range of blank pages in a longer PDF
            else:
                raise StepFailed(exc.message) from exc
        except ChunkingError as exc:
            raise StepFailed(exc.message) from exc
        if wants_llm_enrichment(record["parser_config"]) and drafts:
            self._enrich(task, record, drafts)
        return drafts

    def _image_describer(self, record: Record) -> Callable[[bytes], str] | None:
        """The tenant's image2text model as the picture chunker's ``describe_image`` (None without one)."""
        from shared.ports.chat_model import ChatMessage, ChatModelError

        tenant = self._tenants.get(record["tenant_id"])
        chat_model_for = self._chat_model_for
        if tenant is None or not tenant.img2txt_id or chat_model_for is None:
            return None
        model_id = tenant.img2txt_id

        def describe(image: bytes) -> str:
            try:
                model = chat_model_for(tenant, model_id)
                return model.complete(
                    [
                        ChatMessage("system", "You describe images for a search index, precisely and factually."),
                        ChatMessage(
                            "user",
                            "Describe this image: what it shows, any text in it, and the data of any chart or table.",
                            images=(image,),
                        ),
                    ]
                ).text
            except ChatModelError as exc:
                raise StepFailed(f"The image2text model failed: {exc.message}") from exc

        return describe

    def _enrich(self, task: ParseTask, record: Record, drafts: list[ChunkDraft]) -> None:
        """auto_keywords / auto_questions: ask the tenant's chat model, or say in progress_msg why not."""
        from shared.ports.chat_model import ChatModelError, ChatOptions
        from shared.rag.prompting import keyword_messages, parse_keywords, parse_questions, question_messages

        label = _range_label(task["range"])
        config = record["parser_config"]
        keywords = int(config.get("auto_keywords") or 0)
        questions = int(config.get("auto_questions") or 0)
        tenant = self._tenants.get(record["tenant_id"])
        if tenant is None or not tenant.llm_id or self._chat_model_for is None:
            self._report(
                task, f"{label}: auto_keywords/auto_questions skipped: no chat model is configured for this tenant."
            )
            return
        options = ChatOptions(temperature=0.2)
        try:
            model = self._chat_model_for(tenant, None)
            for draft in drafts:
                self._current(task)  # a stop request ends the (slow) enrichment between chunks
                if keywords:
                    answer = model.complete(keyword_messages(draft.content, keywords), options).text
                    draft.keywords = list(dict.fromkeys([*draft.keywords, *parse_keywords(answer, keywords)]))
                if questions:
                    answer = model.complete(question_messages(draft.content, questions), options).text
                    draft.questions = list(dict.fromkeys([*draft.questions, *parse_questions(answer, questions)]))
        except ChatModelError as exc:
            raise StepFailed(f"auto_keywords/auto_questions failed: {exc.message}") from exc
        self._report(task, f"{label}: Keywords and questions generated for {len(drafts)} chunks.")

    def embed(self, task: ParseTask) -> ParseTask:
        """Embed the chunks with the dataset's model (the document name weighted in, as RAGFlow does)."""
        record = self._current(task)
        rng = task["range"]
        drafts = [ChunkDraft(**d) for d in _load(self._blobs.get(task["chunks"]))]
        started = time.perf_counter()
        embedder = self._embedder_of(task, record)
        try:
            texts = [embedding_text(d.content, d.questions) for d in drafts]
            vectors = embed_with_title(embedder, record["name"], texts, title_weight(record))
        except EmbeddingConfigError as exc:
            # A misconfigured model fails the document now; a provider's transient failure
            # (EmbeddingServiceError) propagates so the workflow can retry the step.
            raise StepFailed(f"Embedding failed: {exc.message}") from exc
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(vectors, dtype=np.float32))
        key = self._work_key(task, rng, "vectors.npy")
        self._blobs.put(key, buffer.getvalue(), "application/octet-stream")
        elapsed = time.perf_counter() - started
        self._report(task, f"{_range_label(rng)}: Embedding chunks ({elapsed:.2f}s)", progress=0.7)
        return {**task, "vectors": key}

    def _embedder_of(self, task: ParseTask, record: Record) -> Embedder:
        """The dataset's embedding model, with the tenant's endpoint and key for it."""
        dataset = self._datasets.get(record["tenant_id"], record["dataset_id"])
        tenant = self._tenants.get(record["tenant_id"])
        if dataset is None or tenant is None:
            raise TaskSuperseded(task["task_id"])
        try:
            return self._embedder_for(dataset["embedding_model"], tenant)
        except EmbeddingConfigError as exc:
            raise StepFailed(f"Embedding failed: {exc.message}") from exc

    def index(self, task: ParseTask) -> ParseTask:
        """Store the chunks (the source of truth) and add them to the search index."""
        record = self._current(task)
        rng = task["range"]
        started = time.perf_counter()
        drafts = [ChunkDraft(**d) for d in _load(self._blobs.get(task["chunks"]))]
        vectors = np.load(io.BytesIO(self._blobs.get(task["vectors"])))
        chunks = chunk_records(record, rng, drafts, vectors)
        self._current(task)
        self._write([(record, chunks, vectors)])
        try:
            self._current(task)
        except TaskSuperseded:
            self._withdraw(record, chunks)  # stopped while we wrote: a cancelled document holds no chunks
            raise
        elapsed = time.perf_counter() - started
        self._report(task, f"{_range_label(rng)}: Indexing done ({elapsed:.2f}s).", progress=0.9)
        return {**task, "indexed": len(chunks)}

    def _write(self, batch: Sequence[tuple[Record, list[Record], Vectors]]) -> None:
        """Store chunks (the source of truth), then add them to the search index: (document, its chunks,
        their vectors) for one page range or many, in one batch of writes and one index update."""
        self._documents.put_chunks([chunk for _, chunks, _ in batch for chunk in chunks])
        self._index().upsert(
            [
                to_indexed(chunk, record["name"], vector, enabled=record["status"] == "1")
                for record, chunks, vectors in batch
                for chunk, vector in zip(chunks, vectors, strict=True)
            ]
        )

    def _withdraw(self, record: Record, chunks: Sequence[Record]) -> None:
        ids = [c["id"] for c in chunks]
        self._documents.delete_chunks(record["id"], ids)
        self._index().delete_chunks(record["tenant_id"], record["dataset_id"], ids)

    def finish(self, task: ParseTask) -> ParseTask:
        """Count the chunks, mark the document DONE and update the dataset's totals once."""
        try:
            record = self._current(task)
        except TaskSuperseded:
            self._emit_if_ended_by(task)
            raise
        chunks = self._documents.chunks_of(record["id"])
        done = self._complete(task, record, len(chunks), sum(int(c.get("token_count", 0)) for c in chunks))
        self._blobs.delete_prefix(
            f"work/{task['tenant_id']}/{task['dataset_id']}/{task['document_id']}/{task['task_id']}/"
        )
        self._emit(done, task["task_id"])
        return {**task, "chunk_count": len(chunks)}

    def _complete(
        self, task: ParseTask, record: Record, chunk_count: int, tokens: int, *, earlier: Sequence[str] = ()
    ) -> Record:
        """Mark the document DONE with its counts (``earlier`` progress lines before "Task done") and add
        them to the dataset's totals, once: the write is conditional on the progress token ``record`` holds.
        The caller publishes the end (after its own clean-up, so a failed publish retries the whole step)."""
        if not chunk_count:
            if record["suffix"] == "pdf":
                from shared.rag.parsers import NoTextLayer

                raise StepFailed(NoTextLayer(record["name"]).message)
            raise StepFailed(f"{record['name']}: no text could be extracted; nothing to index.")
        duration = max(0.0, (now_ms() - int(record.get("process_begin_ms") or now_ms())) / 1000)
        now = now_ms()
        lines = [record.get("progress_msg") or "", *earlier, _stamp(f"Task done ({duration:.2f}s)")]
        try:
            done = self._documents.update(
                record,
                {
                    "run": "DONE",
                    "progress": 1.0,
                    "progress_msg": "\n".join(lines),
                    "chunk_count": chunk_count,
                    "token_count": tokens,
                    "process_duration": round(duration, 4),
                    "progress_token": f"{task['task_id']}:done",
                    "update_time": now,
                    "update_date": http_date(now),
                },
                condition=Condition("equals", "progress_token", record["progress_token"]),
                dataset_deltas={
                    "chunk_count": chunk_count - record["chunk_count"],
                    "token_num": tokens - record["token_count"],
                },
            )
        except ConditionFailed as exc:
            raise TaskSuperseded(task["task_id"]) from exc
        return done

    def fail(self, task: ParseTask, message: str, *, earlier: Sequence[str] = ()) -> None:
        """Mark the document FAIL with ``message`` in its progress_msg (only if the task is still current)."""
        try:
            failed = self._report(task, f"[ERROR] {message}", earlier=earlier, run="FAIL", progress=-1.0)
        except TaskSuperseded:
            self._emit_if_ended_by(task)
            return
        self._blobs.delete_prefix(
            f"work/{task['tenant_id']}/{task['dataset_id']}/{task['document_id']}/{task['task_id']}/"
        )
        self._emit(failed, task["task_id"])

    @contextmanager
    def _outcome(self, *tasks: ParseTask, earlier: Sequence[str] = ()) -> Iterator[None]:
        """Run part of a parse of ``tasks``: when it raises, a superseded task ends quietly, any other error
        marks the tasks FAIL with a message fit for the user (``earlier``: lines stamped but not yet written)."""
        try:
            yield
        except TaskSuperseded:
            logger.info("parse task(s) %s superseded", ", ".join(t["task_id"] for t in tasks))
        except StepFailed as exc:
            for task in tasks:
                self.fail(task, str(exc), earlier=earlier)
        except EmbeddingError as exc:
            for task in tasks:
                self.fail(task, f"Embedding failed: {exc.message}", earlier=earlier)
        except Exception:
            logger.exception("parse task(s) %s failed", ", ".join(t["task_id"] for t in tasks))
            for task in tasks:
                self.fail(task, "Internal error while parsing; see the server log.", earlier=earlier)

    # == the local pipeline: page ranges of many documents, embedded and written together ============
    # The same steps as above without their artifacts in blob storage: ranges stay in memory between stages.
    # The in-process worker runs parse_ranges for several documents at once, feeds what they yield to
    # embed_ranges in batches that cross documents, and hands what comes out to store_ranges.
    def parse_ranges(self, task: ParseTask) -> Iterator[RangeWork]:
        """Receive ``task``, then extract and chunk its page ranges one at a time, yielding each.

        Failures end here: the document is marked FAIL (or left alone when the task was superseded)."""
        pending: list[str] = []
        with self._outcome(task, earlier=pending):
            state = self.prepare(task)
            run = DocumentRun(task, ranges=len(state["ranges"]))
            for rng in state["ranges"]:
                label = _range_label(rng)
                run.record = record = self._current(task)
                pending.append(_stamp(f"{label}: Start to parse."))
                doc = self._extract(record, rng)
                pending.append(_stamp(f"{label}: Finish parsing."))
                drafts = self._chunk({**task, "range": rng}, record, doc)
                self._report(task, f"{label}: Generate {len(drafts)} chunks", earlier=pending, progress=0.4)
                pending.clear()
                yield RangeWork(run, rng, drafts)

    def embed_ranges(self, works: Sequence[RangeWork]) -> list[RangeWork]:
        """Embed the chunks of many page ranges, of any documents, with one call per model: the model batches
        every text by length. Returns the ranges embedded; a document whose embedding fails is marked FAIL."""
        groups: dict[int, list[RangeWork]] = {}
        for work in works:
            with self._outcome(work.run.task):
                if work.run.embedder is None:
                    work.run.embedder = self._embedder_of(work.run.task, _record(work.run))
                groups.setdefault(id(work.run.embedder), []).append(work)
        embedded: list[RangeWork] = []
        for group in groups.values():
            if len(group) > 1:
                try:
                    _embed_together(group)
                except EmbeddingError as exc:  # find the document(s) the model refuses, one by one
                    logger.info("embedding %d ranges together failed (%s); embedding them one by one", len(group), exc)
                else:
                    embedded.extend(group)
                    continue
            for work in group:
                with self._outcome(work.run.task):
                    _embed_together([work])
                    embedded.append(work)
        return embedded

    def store_ranges(self, works: Sequence[RangeWork]) -> None:
        """Write the chunks of many embedded page ranges at once, then report each range; a document whose
        ranges are all stored ends DONE."""
        started = time.perf_counter()
        now = now_ms()
        batch: list[tuple[RangeWork, Record, list[Record]]] = []
        for work in works:
            with self._outcome(work.run.task):
                record = self._current(work.run.task)
                assert work.vectors is not None
                batch.append((work, record, chunk_records(record, work.range, work.drafts, work.vectors, now=now)))
        with self._outcome(*(work.run.task for work, _, _ in batch)):
            self._write([(record, chunks, work.vectors) for work, record, chunks in batch if work.vectors is not None])
            elapsed = (time.perf_counter() - started) / max(1, len(batch))
            for work, record, chunks in batch:
                with self._outcome(work.run.task):
                    self._stored(work, record, chunks, elapsed)

    def _stored(self, work: RangeWork, record: Record, chunks: list[Record], elapsed: float) -> None:
        """Report a stored range (taking its chunks back out if the task ended meanwhile); finish the document
        when it was the last."""
        task, run = work.run.task, work.run
        try:
            current = self._current(task)
        except TaskSuperseded:
            self._withdraw(record, chunks)  # stopped while we wrote: a cancelled document holds no chunks
            raise
        run.stored += 1
        run.chunk_count += len(chunks)
        run.token_count += sum(int(c["token_count"]) for c in chunks)
        label = _range_label(work.range)
        lines = [
            _stamp(f"{label}: Embedding chunks ({work.embed_seconds:.2f}s)"),
            _stamp(f"{label}: Indexing done ({elapsed:.2f}s)."),
        ]
        if run.stored < run.ranges:
            self._report(task, earlier=lines, progress=0.9)
        else:
            done = self._complete(task, current, run.chunk_count, run.token_count, earlier=lines)
            self._emit(done, task["task_id"])

    # == the whole step list in this thread ===========================================================
    def run_task(self, task: ParseTask) -> None:
        """Run every step of ``task`` in order, in this thread, with the artifacts in blob storage between
        steps: the Step Functions definition in one process (tests; the local worker pipelines instead)."""
        with self._outcome(task):
            state = self.prepare(task)
            for rng in state["ranges"]:
                ranged = {**state, "range": rng}
                for step in (self.extract, self.chunk, self.embed, self.index):
                    ranged = step(ranged)
            self.finish(state)

    def resume_interrupted(self) -> int:
        """Restart parses left RUNNING by a process that died (the local worker calls this at start)."""
        resumed = 0
        for record in self._documents.in_state("RUNNING"):
            current = self._documents.get(record["dataset_id"], record["id"])
            if current is None or current["run"] != "RUNNING":
                continue
            self.start(current, note="Worker restarted; parsing again.")
            resumed += 1
        return resumed

    # == S3 uploads as a trigger ====================================================================
    def ingest_object(self, key: str, size: int, version: str, *, register: Callable[..., dict[str, Any]]) -> str:
        """Register and parse an object dropped under ``ingest/<tenant>/<dataset>/``; at most once per version.

        Returns what happened (``registered``, ``duplicate`` or ``ignored: …``) for the logs.
        """
        if not key.startswith(INGEST_PREFIX):
            return "ignored: outside the ingest prefix"
        parts = key[len(INGEST_PREFIX) :].split("/")
        if len(parts) < 3 or not all(parts):
            return "ignored: expected ingest/<tenant>/<dataset>/<file>"
        tenant_id, dataset_id, filename = parts[0], parts[1], parts[-1]
        if self._datasets.get(tenant_id, dataset_id) is None:
            return "ignored: no such dataset for that tenant"
        try:
            self._store.put({"pk": f"S3OBJ#{key}", "sk": version, "create_time": now_ms()}, ITEM_NOT_EXISTS)
        except ConditionFailed:
            return "duplicate"
        view = register(tenant_id, dataset_id, filename, key, size)
        record = self._documents.get(dataset_id, view["id"])
        assert record is not None
        self.start(record)
        return "registered"


def chunk_records(
    record: Record, rng: list[int], drafts: Sequence[ChunkDraft], vectors: Vectors, *, now: int | None = None
) -> list[Record]:
    """The stored chunks of one page range of a document (ids derived from the content: a retry rewrites the
    same chunks)."""
    from shared.rag.tokens import count_tokens

    now = now_ms() if now is None else now
    created = datetime.fromtimestamp(now / 1000).strftime("%Y-%m-%d %H:%M:%S")
    return [
        {
            "id": chunk_id(record["id"], rng[0], position, draft.content),
            "document_id": record["id"],
            "dataset_id": record["dataset_id"],
            "tenant_id": record["tenant_id"],
            "content": draft.content,
            "important_keywords": draft.keywords,
            "questions": draft.questions,
            "tag_kwd": draft.tags,
            "page_numbers": draft.page_numbers,
            "positions": [],
            "image_id": "",
            "available": True,
            "token_count": count_tokens(draft.content),
            "create_time": created,
            "create_timestamp": now / 1000,
            "order": f"{rng[0]:06d}{position:06d}",
            "vector": encode_vector(vector),
        }
        for position, (draft, vector) in enumerate(zip(drafts, vectors, strict=True))
    ]


def start_parse(
    documents: DocumentRepository, workflow: Workflow, record: Record, note: str | None = None
) -> ParseTask:
    """Mark a document RUNNING under a new task id and hand the task to ``workflow`` (what starting a parse
    takes, for callers that need no more of the pipeline: a completed upload, an import)."""
    task_id = new_id()
    now = now_ms()
    documents.update(
        record,
        {
            "run": "RUNNING",
            "progress": 0.0,
            "progress_msg": _stamp(note) if note else "",
            "task_id": task_id,
            "progress_token": f"{task_id}:0",
            "process_begin_at": http_date(now),
            "process_begin_ms": now,
            "process_duration": 0.0,
            "update_time": now,
            "update_date": http_date(now),
        },
    )
    task: ParseTask = {
        "tenant_id": record["tenant_id"],
        "dataset_id": record["dataset_id"],
        "document_id": record["id"],
        "task_id": task_id,
    }
    workflow.start_parse(task)
    return task


def all_indexed_chunks(documents: DocumentRepository) -> Iterator[IndexedChunk]:
    """Every stored chunk of every tenant as the index holds it: the source for rebuilding an index."""
    for run in ("UNSTART", "RUNNING", "CANCEL", "DONE", "FAIL"):
        for record in documents.in_state(run):
            enabled = record.get("status") == "1"
            for chunk in documents.chunks_of(record["id"]):
                yield to_indexed(chunk, record["name"], decode_vector(chunk["vector"]), enabled=enabled)


def dataset_indexed_chunks(documents: DocumentRepository, tenant_id: str, dataset_id: str) -> Iterator[IndexedChunk]:
    """Every stored chunk of one tenant's dataset as the index holds it: what a shard is rebuilt from."""
    for record in documents.list_all(dataset_id):
        if record.get("tenant_id") != tenant_id:
            continue
        enabled = record.get("status") == "1"
        for chunk in documents.chunks_of(record["id"]):
            yield to_indexed(chunk, record["name"], decode_vector(chunk["vector"]), enabled=enabled)


def embedding_text(content: str, questions: list[str]) -> str:
    """What a chunk's vector encodes: its questions when it has any, else its content (as RAGFlow)."""
    return "\n".join(questions) if questions else content


def title_weight(document: Mapping[str, Any]) -> float:
    """How much of the document name goes into chunk vectors (none for Q&A, whose questions stand alone)."""
    if document.get("chunk_method") == "qa":
        return 0.0
    return float(document.get("parser_config", {}).get("filename_embd_weight", 0.1) or 0.0)


def to_indexed(chunk: Mapping[str, Any], document_name: str, vector: Any, *, enabled: bool = True) -> IndexedChunk:
    """A stored chunk as the search index holds it (unavailable when it, or its document, is switched off)."""
    return IndexedChunk(
        id=chunk["id"],
        tenant_id=chunk["tenant_id"],
        dataset_id=chunk["dataset_id"],
        document_id=chunk["document_id"],
        document_name=document_name,
        content=chunk["content"],
        vector=[float(x) for x in vector],
        keywords=list(chunk.get("important_keywords") or []),
        questions=list(chunk.get("questions") or []),
        tags=list(chunk.get("tag_kwd") or []),
        available=enabled and bool(chunk.get("available", True)),
        page_numbers=list(chunk.get("page_numbers") or []),
        create_time=int(float(chunk.get("create_timestamp", 0)) * 1000),
    )
