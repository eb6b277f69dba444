"""Workflow port: runs document parses in the background — in-process locally, Step Functions on AWS."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

ParseTask = dict[str, Any]
"""A parse task's state: tenant_id, dataset_id, document_id, task_id (plus what steps add)."""


class Workflow(ABC):
    @abstractmethod
    def start_parse(self, task: ParseTask) -> None:
        """Start the parse pipeline for one document; returns at once."""

    @abstractmethod
    def ping(self) -> None:
        """Raise when jobs cannot be started."""
