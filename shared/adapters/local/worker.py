"""In-process workflow: parse tasks on a bounded thread pool (the local stand-in for Step Functions)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from shared.ports.workflow import ParseTask, Workflow

logger = logging.getLogger(__name__)


class InProcessWorkflow(Workflow):
    """Runs ``run_task`` (the whole step list, see shared.pipeline) for each task in the background."""

    def __init__(self, run_task: Callable[[ParseTask], None], max_workers: int = 2) -> None:
        self._run_task = run_task
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="flowless-worker")
        self._closed = False

    def start_parse(self, task: ParseTask) -> None:
        self.submit(lambda: self._run_task(task))

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
