"""Workflow port: runs background jobs (document parsing) in-process locally, on Step Functions on AWS."""

from __future__ import annotations

from abc import ABC, abstractmethod


class Workflow(ABC):
    @abstractmethod
    def ping(self) -> None:
        """Raise when jobs cannot be started."""
