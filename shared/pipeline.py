"""The parse pipeline's steps, defined once: CDK turns this list into the Step Functions definition, the
local worker runs the same steps in memory (shared.adapters.local.worker). Light on purpose (names and
flags only).

A parse task flows prepare → (per page range: extract → chunk → embed → index) → finish; any failure
goes to ``fail``, which marks the document FAIL with the error in its progress_msg. Steps pass small
JSON states that point at artifacts in blob storage, never big payloads.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PipelineStep:
    name: str
    #: Runs once per page range (a Map state on AWS) rather than once per document.
    per_range: bool
    timeout_s: int = 300
    memory_mb: int = 1024


PREPARE = PipelineStep("prepare", per_range=False, timeout_s=120, memory_mb=512)
EXTRACT = PipelineStep("extract", per_range=True, timeout_s=600, memory_mb=2048)
CHUNK = PipelineStep("chunk", per_range=True, timeout_s=300, memory_mb=1024)
EMBED = PipelineStep("embed", per_range=True, timeout_s=900, memory_mb=3008)
INDEX = PipelineStep("index", per_range=True, timeout_s=300, memory_mb=1024)
FINISH = PipelineStep("finish", per_range=False, timeout_s=120, memory_mb=512)
FAIL = PipelineStep("fail", per_range=False, timeout_s=60, memory_mb=256)

PARSE_STEPS: tuple[PipelineStep, ...] = (PREPARE, EXTRACT, CHUNK, EMBED, INDEX, FINISH)
RANGE_STEPS: tuple[PipelineStep, ...] = tuple(step for step in PARSE_STEPS if step.per_range)
ALL_STEPS: tuple[PipelineStep, ...] = (*PARSE_STEPS, FAIL)

#: Page range used for formats without pages (RAGFlow reports these as "Page(1~100000001)").
WHOLE_DOCUMENT = (0, 100_000_000)
#: Prefix of the documents bucket under which dropped objects become documents: ingest/<tenant>/<dataset>/<file>.
INGEST_PREFIX = "ingest/"


# == knowledge builds ==========================================================================================
# A knowledge-graph or RAPTOR build of one dataset flows prepare → (per document: document) → finish; any
# failure goes to ``fail``, which marks the build's task failed with the error in its progress_msg. The
# steps dispatch on the task's ``task_type``: for a graph, ``document`` extracts a document's subgraph and
# ``finish`` merges them into the dataset's graph; for RAPTOR, ``document`` builds a document's summary tree
# and ``finish`` closes the task. Locally the worker runs the same steps (KnowledgeBuilder.run_task).


@dataclass(frozen=True)
class BuildStep:
    name: str
    #: Runs once per document (a Map state on AWS) rather than once per build.
    per_document: bool
    timeout_s: int = 300
    memory_mb: int = 1024
    #: Calls the chat and embedding models (its function carries the embedding layer).
    uses_models: bool = False
    #: Computes the graph's communities (its function carries networkx).
    uses_graph_library: bool = False


BUILD_PREPARE = BuildStep("prepare", per_document=False, timeout_s=300, memory_mb=1024)
BUILD_DOCUMENT = BuildStep("document", per_document=True, timeout_s=900, memory_mb=2048, uses_models=True)
BUILD_FINISH = BuildStep(
    "finish", per_document=False, timeout_s=900, memory_mb=3008, uses_models=True, uses_graph_library=True
)
BUILD_FAIL = BuildStep("fail", per_document=False, timeout_s=60, memory_mb=256)

BUILD_STEPS: tuple[BuildStep, ...] = (BUILD_PREPARE, BUILD_DOCUMENT, BUILD_FINISH)
ALL_BUILD_STEPS: tuple[BuildStep, ...] = (*BUILD_STEPS, BUILD_FAIL)
#: Longest a build may run on AWS before Step Functions stops it; a task not heard from for this long is
#: taken as abandoned (a new build of the dataset may then start).
BUILD_TIMEOUT_S = 6 * 3600
