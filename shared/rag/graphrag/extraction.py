"""Entity and relationship extraction from a document's text by the chat model, into the document's subgraph.

As RAGFlow: the document's chunks are packed into blocks under ~4k tokens; each block is sent with the
extraction prompt, then "gleaned" (asked for what it missed, while the model says more is missing); the
records are parsed, entities of other types dropped, and the same entity (by upper-cased name) or relation
(by its pair of names) found several times merged: the commonest type, the distinct descriptions joined —
summarized by the model when there are more than a dozen — weights added.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from shared.ports.chat_model import ChatMessage, ChatModel, ChatOptions
from shared.rag.graphrag import prompts
from shared.rag.graphrag.graph import (
    GRAPH_FIELD_SEP,
    Attrs,
    EdgeKey,
    KnowledgeGraph,
    description_parts,
    edge_key,
    join_descriptions,
)
from shared.rag.tokens import count_tokens, truncate

#: Largest block of text sent in one extraction request (RAGFlow packs chunks up to 4096 tokens).
BLOCK_TOKENS = 4096
#: Gleaning passes after the first answer (RAGFlow's ENTITY_EXTRACTION_MAX_GLEANINGS).
MAX_GLEANINGS = 2
#: More distinct descriptions than this and they are summarized into one by the model.
MAX_DESCRIPTIONS = 12
SUMMARY_MAX_TOKENS = 512
EXTRACTION_OPTIONS = ChatOptions(temperature=0.2)

Method = Literal["light", "general"]
#: What one block yielded: its entities and its relations.
BlockAnswer = tuple[list[Attrs], list[Attrs]]
#: Called after each block: (block number from 1, blocks, entities found in it, relations found in it).
BlockDone = Callable[[int, int, int, int], None]


@dataclass(frozen=True)
class ExtractionSettings:
    """From the dataset's ``parser_config.graphrag`` (and its language)."""

    entity_types: tuple[str, ...]
    method: Method = "light"
    language: str = "English"
    #: The chat model's context, for truncating what is summarized.
    context_tokens: int = 8192
    max_gleanings: int = MAX_GLEANINGS


def text_blocks(contents: Sequence[str], max_tokens: int = BLOCK_TOKENS) -> list[str]:
    """The chunks' texts packed in order into blocks of fewer than ``max_tokens`` tokens (a longer chunk is
    a block of its own)."""
    blocks: list[str] = []
    current, current_tokens = "", 0
    for content in contents:
        if not content.strip():
            continue
        tokens = count_tokens(content)
        if current and current_tokens + tokens >= max_tokens:
            blocks.append(current)
            current, current_tokens = "", 0
        current += content if not current else "\n" + content
        current_tokens += tokens
    if current:
        blocks.append(current)
    return blocks


def clean_str(value: str) -> str:
    """A field of a record without HTML entities, control characters and double quotes (RAGFlow's clean_str)."""
    return re.sub(r"[\"\x00-\x1f\x7f-\x9f]", "", html.unescape(value.strip())).strip()


def split_records(answer: str) -> list[list[str]]:
    """The records of an extraction answer, each as its fields (the text between the parentheses)."""
    records = []
    pattern = "|".join(re.escape(d) for d in (prompts.RECORD_DELIMITER, prompts.COMPLETION_DELIMITER))
    for piece in re.split(pattern, answer):
        found = re.search(r"\((.*)\)", piece, re.DOTALL)
        if found is None:
            continue
        records.append([field.strip() for field in found.group(1).split(prompts.TUPLE_DELIMITER)])
    return records


def _float(value: str) -> float | None:
    try:
        return float(value.strip().strip('"'))
    except ValueError:
        return None


def parse_answer(answer: str, entity_types: Sequence[str]) -> tuple[list[Attrs], list[Attrs]]:
    """Entities (of the wanted types) and relations (between two distinct names) in an extraction answer."""
    wanted = {t.lower() for t in entity_types}
    entities: list[Attrs] = []
    relations: list[Attrs] = []
    for fields in split_records(answer):
        kind = clean_str(fields[0]).lower() if fields else ""
        if kind == "entity" and len(fields) >= 4:
            name = clean_str(fields[1]).upper()
            entity_type = clean_str(fields[2]).upper()
            if name and entity_type.lower() in wanted:
                entities.append({"entity_name": name, "entity_type": entity_type, "description": clean_str(fields[3])})
        elif kind == "relationship" and len(fields) >= 5:
            source, target = clean_str(fields[1]).upper(), clean_str(fields[2]).upper()
            if not source or not target or source == target:
                continue
            weight = _float(fields[-1])
            keywords: list[str] = []
            if len(fields) >= 6:  # light: …<|>description<|>keywords<|>strength
                keywords = [k.strip() for k in clean_str(fields[4]).split(",") if k.strip()]
            relations.append(
                {
                    "src_id": source,
                    "tgt_id": target,
                    "description": clean_str(fields[3]),
                    "keywords": keywords,
                    "weight": weight if weight is not None else 1.0,
                }
            )
    return entities, relations


class GraphExtractor:
    """Extracts a document's subgraph with one chat model (blocks may be extracted from several threads)."""

    def __init__(self, model: ChatModel, settings: ExtractionSettings) -> None:
        self._model = model
        self._settings = settings

    def _chat(self, messages: list[ChatMessage], options: ChatOptions = EXTRACTION_OPTIONS) -> str:
        return self._model.complete(messages, options).text

    def extract_block(self, text: str) -> tuple[list[Attrs], list[Attrs]]:
        """Entities and relations of one block: the first answer, then the gleaning passes."""
        settings = self._settings
        prompt = prompts.extraction_prompt(text, list(settings.entity_types), settings.method, settings.language)
        history = [ChatMessage("system", prompts.EXTRACTION_SYSTEM), ChatMessage("user", prompt)]
        answer = self._chat(history)
        answers = [answer]
        history += [ChatMessage("assistant", answer), ChatMessage("user", prompts.CONTINUE_PROMPT)]
        for glean in range(settings.max_gleanings):
            more = self._chat(history)
            answers.append(more)
            if glean == settings.max_gleanings - 1:
                break
            history += [ChatMessage("assistant", more), ChatMessage("user", prompts.LOOP_PROMPT)]
            verdict = self._chat(history).strip().strip("\"'.").lower()
            if verdict != "yes":
                break
            history += [ChatMessage("assistant", verdict), ChatMessage("user", prompts.CONTINUE_PROMPT)]
        entities: list[Attrs] = []
        relations: list[Attrs] = []
        for text_answer in answers:
            found_entities, found_relations = parse_answer(text_answer, settings.entity_types)
            entities += found_entities
            relations += found_relations
        return entities, relations

    def document_subgraph(
        self, document_id: str, blocks: Sequence[str], on_block: BlockDone | None = None
    ) -> tuple[KnowledgeGraph, int]:
        """The document's subgraph (every element sourced to ``document_id``) and how many relations were
        dropped because an end was not among the entities."""
        answers: list[BlockAnswer] = []
        for number, block in enumerate(blocks, start=1):
            entities, relations = self.extract_block(block)
            answers.append((entities, relations))
            if on_block is not None:
                on_block(number, len(blocks), len(entities), len(relations))
        return self.subgraph(document_id, answers)

    def subgraph(self, document_id: str, answers: Sequence[BlockAnswer]) -> tuple[KnowledgeGraph, int]:
        """The subgraph of what the blocks of a document yielded (``extract_block``'s answers, in order)."""
        by_name: dict[str, list[Attrs]] = {}
        by_pair: dict[EdgeKey, list[Attrs]] = {}
        for entities, relations in answers:
            for entity in entities:
                by_name.setdefault(entity["entity_name"], []).append(entity)
            for relation in relations:
                by_pair.setdefault(edge_key(relation["src_id"], relation["tgt_id"]), []).append(relation)
        graph = KnowledgeGraph(source_id=[document_id])
        for name, found in by_name.items():
            types = Counter(e["entity_type"] for e in found)
            description = join_descriptions(*sorted({e["description"] for e in found if e["description"]}))
            graph.add_node(
                name,
                {
                    "entity_type": types.most_common(1)[0][0],
                    "description": self.summarize("entity", name, description),
                    "source_id": [document_id],
                },
            )
        ignored = 0
        for (a, b), found in by_pair.items():
            if a not in graph.nodes or b not in graph.nodes:
                ignored += 1
                continue
            description = join_descriptions(*sorted({r["description"] for r in found if r["description"]}))
            graph.add_edge(
                a,
                b,
                {
                    "description": self.summarize("relation", f"{a} -> {b}", description),
                    "keywords": list(dict.fromkeys(k for r in found for k in r["keywords"])),
                    "weight": float(sum(r["weight"] for r in found)),
                    "source_id": [document_id],
                },
            )
        return graph, ignored

    def summarize(self, kind: str, name: str, description: str) -> str:
        """``description`` as it is, or summarized by the model when it joins more than a dozen parts."""
        parts = description_parts(description)
        if len(parts) <= MAX_DESCRIPTIONS:
            return description
        return summarize_descriptions(self._model, kind, name, parts, self._settings)


def summarize_descriptions(
    model: ChatModel, kind: str, name: str, parts: Sequence[str], settings: ExtractionSettings
) -> str:
    """One description from many (RAGFlow's _handle_entity_relation_summary)."""
    budget = max(256, settings.context_tokens - SUMMARY_MAX_TOKENS - 512)
    joined = truncate("\n".join(f"- {part}" for part in parts), budget)
    prompt = prompts.SUMMARIZE_DESCRIPTIONS_PROMPT.format(
        kind=kind, name=name, language=settings.language, max_tokens=SUMMARY_MAX_TOKENS, descriptions=joined
    )
    answer = model.complete(
        [ChatMessage("system", "You summarize descriptions faithfully."), ChatMessage("user", prompt)],
        ChatOptions(temperature=0.2, max_tokens=SUMMARY_MAX_TOKENS),
    ).text.strip()
    return answer.replace(GRAPH_FIELD_SEP, " ") or GRAPH_FIELD_SEP.join(parts)
