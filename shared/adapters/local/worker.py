"""In-process workflows, the local stand-ins for Step Functions: document parses through a three-stage
pipeline (``PipelineWorkflow``), knowledge builds on a bounded thread pool (``InProcessWorkflow``). The
container builds one of each, so parses never queue behind a build's minutes of model calls.

Parser threads receive parse tasks and extract and chunk each document page range by page range; one
embedding thread takes every range waiting and embeds their texts in one call, so the model batches texts
of many documents by length instead of one document's few at a time; one writer thread stores whatever was
embedded in one batch of writes and one index update and finishes the documents. The three overlap: while
the model runs (without the GIL), the next documents are parsed and the last batch is written.

The stages are the pipeline's (``IngestionService.parse_ranges`` / ``embed_ranges`` / ``store_ranges``);
each handles its documents' failures itself (a failing document ends FAIL, the others go on). On AWS the
same steps run per document, a Lambda each (shared.pipeline).
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, Protocol, TypeVar

from shared.ports.workflow import BuildTask, ParseTask, Workflow

logger = logging.getLogger(__name__)

#: Texts gathered for one embedding call. Enough for the model to sort them into full batches across
#: documents; small enough that a document's progress moves every few seconds.
BATCH_TEXTS = 128
#: Page ranges parsed ahead of the embedder (bounds the memory parsed-but-not-embedded chunks take).
QUEUED_RANGES = 256


class Work(Protocol):
    @property
    def size(self) -> int:
        """Texts this page range adds to an embedding call."""


W = TypeVar("W", bound=Work)
T = TypeVar("T")


def _batches(
    source: queue.Queue[T | None], limit: float = math.inf, size: Callable[[T], float] = lambda _: 0
) -> Iterator[list[T]]:
    """What ``source`` receives, a batch at a time: the first item waited for, then what is already queued
    while the batch's ``size`` is under ``limit``. None ends it (after the batch it closes)."""
    while True:
        first = source.get()
        if first is None:
            return
        batch, total, stopping = [first], size(first), False
        while total < limit:
            try:
                item = source.get_nowait()
            except queue.Empty:
                break
            if item is None:
                stopping = True
                break
            batch.append(item)
            total += size(item)
        yield batch
        if stopping:
            return


class RangePipeline(Protocol[W]):
    """The three stages, each handling its own documents' failures."""

    def parse_ranges(self, task: ParseTask) -> Iterable[W]: ...

    def embed_ranges(self, works: Sequence[W]) -> list[W]: ...

    def store_ranges(self, works: Sequence[W]) -> None: ...


class PipelineWorkflow(Workflow, Generic[W]):
    """Runs parse tasks in the background through ``pipeline``'s stages (see the module docstring)."""

    def __init__(
        self,
        pipeline: RangePipeline[W],
        *,
        parsers: int = 2,
        batch_texts: int = BATCH_TEXTS,
        queued_ranges: int = QUEUED_RANGES,
    ) -> None:
        self._pipeline = pipeline
        self._batch_texts = batch_texts
        self._parsers = ThreadPoolExecutor(max_workers=parsers, thread_name_prefix="flowless-parser")
        self._to_embed: queue.Queue[W | None] = queue.Queue(maxsize=queued_ranges)
        # Two batches may wait for the writer while the embedder works on a third.
        self._to_store: queue.Queue[list[W] | None] = queue.Queue(maxsize=2)
        self._stages: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    def start_parse(self, task: ParseTask) -> None:
        self._start_stages()
        self._parsers.submit(self._parse, task)

    def _start_stages(self) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("worker pool is shut down")
            if self._stages:
                return
            self._stages = [
                threading.Thread(target=self._embed_loop, name="flowless-embedder", daemon=True),
                threading.Thread(target=self._store_loop, name="flowless-writer", daemon=True),
            ]
            for stage in self._stages:
                stage.start()

    def _parse(self, task: ParseTask) -> None:
        try:
            for work in self._pipeline.parse_ranges(task):
                self._to_embed.put(work)
        except Exception:  # the pipeline fails its documents itself; this is a bug: keep the worker alive
            logger.exception("parsing task %s failed", task.get("task_id"))

    def _embed_loop(self) -> None:
        # Everything parsed meanwhile joins the call (the model sorts it by length), up to a batch.
        for batch in _batches(self._to_embed, self._batch_texts, lambda work: work.size):
            try:
                embedded = self._pipeline.embed_ranges(batch)
            except Exception:
                logger.exception("embedding %d page ranges failed", len(batch))
                continue
            if embedded:
                self._to_store.put(embedded)
        self._to_store.put(None)

    def _store_loop(self) -> None:
        # Batches that queued while the last one was written go together.
        for batches in _batches(self._to_store):
            batch = [work for embedded in batches for work in embedded]
            try:
                self._pipeline.store_ranges(batch)
            except Exception:
                logger.exception("storing %d page ranges failed", len(batch))

    def close(self) -> None:
        """Finish what is being parsed (through every stage), drop what has not started, stop the threads.

        Documents dropped stay RUNNING; the next start resumes them (``IngestionService.resume_interrupted``)."""
        with self._lock:
            self._closed = True
            stages = self._stages
        self._parsers.shutdown(wait=True, cancel_futures=True)
        if stages:
            self._to_embed.put(None)
            for stage in stages:
                stage.join()

    def start_build(self, task: BuildTask) -> None:
        raise RuntimeError("the parse pipeline runs no knowledge builds (they have a worker of their own)")

    def ping(self) -> None:
        if self._closed:
            raise RuntimeError("worker pool is shut down")


class InProcessWorkflow(Workflow):
    """Runs ``run_build`` (every step of a knowledge build) for each build in the background, or ``run_task``
    (every step of a parse, one task at a time) for each parse: whichever it was given."""

    def __init__(
        self,
        run_task: Callable[[ParseTask], None] | None = None,
        max_workers: int = 2,
        *,
        run_build: Callable[[BuildTask], None] | None = None,
    ) -> None:
        self._run_task = run_task
        self._run_build = run_build
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="flowless-worker")
        self._closed = False

    def start_parse(self, task: ParseTask) -> None:
        run_task = self._run_task
        if run_task is None:
            raise RuntimeError("this worker runs no parses")
        self.submit(lambda: run_task(task))

    def start_build(self, task: BuildTask) -> None:
        run_build = self._run_build
        if run_build is None:
            raise RuntimeError("this worker runs no knowledge builds")
        self.submit(lambda: run_build(task))

    def submit(self, job: Callable[[], None]) -> Future[None]:
        """Run ``job`` in the background; failures are logged, never lost silently."""

        def run() -> None:
            try:
                job()
            except Exception:
                logger.exception("background job failed")

        return self._pool.submit(run)

    def close(self) -> None:
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)

    def ping(self) -> None:
        if self._closed:
            raise RuntimeError("worker pool is shut down")
