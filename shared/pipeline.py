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
