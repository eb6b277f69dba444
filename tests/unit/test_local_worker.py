"""The local parse workflow's stages: batches across documents, what close() finishes, failures contained."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest

from shared.adapters.local.worker import PipelineWorkflow
from shared.ports.workflow import ParseTask

WAIT = 10.0


@dataclass
class Work:
    document: str
    index: int
    size: int = 1


class Stages:
    """A pipeline whose stages record what they are given; the first embedding call can be held."""

    def __init__(self, ranges: int = 1, *, hold_first_embed: bool = False, single: str = "") -> None:
        self.ranges = ranges
        self.single = single  # a document of one range
        self.release = threading.Event()
        if not hold_first_embed:
            self.release.set()
        self.embedding = threading.Event()
        self.embed_calls: list[list[str]] = []
        self.stored: list[Work] = []
        self.fail_embed_of: set[str] = set()
        self._lock = threading.Lock()
        self._parsed = threading.Condition(self._lock)
        self.parsed = 0

    def parse_ranges(self, task: ParseTask) -> Iterator[Work]:
        for index in range(1 if task["document_id"] == self.single else self.ranges):
            yield Work(task["document_id"], index)
            with self._parsed:  # counted once the worker took the range (it asks for the next)
                self.parsed += 1
                self._parsed.notify_all()

    def wait_parsed(self, count: int) -> None:
        """Until ``count`` ranges were handed over and the parsers have gone on (the last one, too)."""
        with self._parsed:
            assert self._parsed.wait_for(lambda: self.parsed >= count, WAIT)

    def embed_ranges(self, works: Sequence[Work]) -> list[Work]:
        self.embedding.set()
        assert self.release.wait(WAIT)
        with self._lock:
            self.embed_calls.append([f"{w.document}/{w.index}" for w in works])
        if any(w.document in self.fail_embed_of for w in works):
            raise RuntimeError("a bug in the embedding stage")
        return list(works)

    def store_ranges(self, works: Sequence[Work]) -> None:
        with self._lock:
            self.stored.extend(works)


def task(document: str) -> ParseTask:
    return {"tenant_id": "t", "dataset_id": "d", "document_id": document, "task_id": f"task-{document}"}


def test_ranges_parsed_while_the_model_runs_are_embedded_together() -> None:
    stages = Stages(ranges=2, hold_first_embed=True, single="a")
    workflow = PipelineWorkflow(stages, parsers=2)
    workflow.start_parse(task("a"))
    assert stages.embedding.wait(WAIT)  # the model is busy with a
    for name in "bcd":
        workflow.start_parse(task(name))
    stages.wait_parsed(7)
    stages.release.set()
    workflow.close()

    assert stages.embed_calls[0] == ["a/0"]
    assert len(stages.embed_calls) == 2 and sorted(stages.embed_calls[1]) == ["b/0", "b/1", "c/0", "c/1", "d/0", "d/1"]
    for name in "bcd":  # each document's ranges in order
        assert [w.index for w in stages.stored if w.document == name] == [0, 1]


def test_an_embedding_call_gathers_at_most_a_batch_of_texts() -> None:
    stages = Stages(hold_first_embed=True)
    workflow = PipelineWorkflow(stages, parsers=1, batch_texts=3)
    workflow.start_parse(task("first"))
    assert stages.embedding.wait(WAIT)
    for number in range(7):
        workflow.start_parse(task(f"d{number}"))
    stages.wait_parsed(8)
    stages.release.set()
    workflow.close()

    assert [len(call) for call in stages.embed_calls] == [1, 3, 3, 1]
    assert len(stages.stored) == 8


def test_close_finishes_what_was_parsed_and_refuses_more() -> None:
    stages = Stages(ranges=3, hold_first_embed=True)
    workflow = PipelineWorkflow(stages, parsers=2, queued_ranges=100)
    for number in range(20):
        workflow.start_parse(task(f"d{number}"))
    stages.wait_parsed(60)
    stages.release.set()
    workflow.close()  # every range parsed is embedded and stored before the threads end

    assert len(stages.stored) == 60
    assert workflow._stages and not [t for t in workflow._stages if t.is_alive()]  # this workflow's threads
    with pytest.raises(RuntimeError, match="shut down"):
        workflow.ping()
    with pytest.raises(RuntimeError, match="shut down"):
        workflow.start_parse(task("late"))


def test_a_stage_that_raises_loses_its_batch_only(caplog: pytest.LogCaptureFixture) -> None:
    stages = Stages(hold_first_embed=True)
    stages.fail_embed_of = {"bad"}
    workflow = PipelineWorkflow(stages, parsers=1)
    workflow.start_parse(task("bad"))
    assert stages.embedding.wait(WAIT)
    workflow.start_parse(task("good"))
    stages.wait_parsed(2)
    stages.release.set()
    workflow.close()

    assert stages.embed_calls == [["bad/0"], ["good/0"]]
    assert [w.document for w in stages.stored] == ["good"]
    assert "embedding 1 page ranges failed" in caplog.text
