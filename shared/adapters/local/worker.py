"""In-process workflow: background tasks on a bounded thread pool (the local stand-in for Step Functions).

The container builds one for document parses and another for knowledge builds, so parses never queue
behind a build's minutes of model calls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from shared.ports.workflow import BuildTask, ParseTask, Workflow

logger = logging.getLogger(__name__)


class InProcessWorkflow(Workflow):
    """Runs ``run_task`` (the whole step list, see shared.pipeline) for each parse task in the background, or
    ``run_build`` (every step of a knowledge build) for each build: whichever it was given."""

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
