"""Workflow port: runs background work — document parses, and knowledge-graph / RAPTOR builds — in-process
locally, on Step Functions on AWS."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

ParseTask = dict[str, Any]
"""A parse task's state: tenant_id, dataset_id, document_id, task_id (plus what steps add)."""

BuildTask = dict[str, Any]
"""A knowledge build's state: tenant_id, dataset_id, task_id, task_type (graphrag | raptor), plus what the
steps add (the documents to process)."""


class Workflow(ABC):
    @abstractmethod
    def start_parse(self, task: ParseTask) -> None:
        """Start the parse pipeline for one document; returns at once."""

    @abstractmethod
    def start_build(self, task: BuildTask) -> None:
        """Start a knowledge-graph or RAPTOR build of one dataset; returns at once (the container gives
        builds a workflow of their own; one configured without them raises ``RuntimeError``)."""

    @abstractmethod
    def ping(self) -> None:
        """Raise when jobs cannot be started."""
