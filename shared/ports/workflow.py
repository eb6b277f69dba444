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

    def start_build(self, task: BuildTask) -> None:
        """Start a knowledge-graph or RAPTOR build of one dataset; returns at once.

        Not every workflow runs builds (the container gives them a workflow of their own): by default, none.
        """
        raise NotImplementedError(f"{type(self).__name__} runs no knowledge builds")

    @abstractmethod
    def ping(self) -> None:
        """Raise when jobs cannot be started."""
