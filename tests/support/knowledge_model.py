"""A deterministic stand-in for the chat model's side of knowledge builds and ``use_kg`` retrieval.

``answer(messages)`` reads the last user message and answers what the prompt asks, in the format it asks
for: extraction records for the capitalized names of each sentence of the text (a relation between every
two names of a sentence), nothing more when asked to glean, ``NO`` when asked whether more is missing,
JSON for community reports and query rewriting, a short summary for RAPTOR and description summaries. Any
other prompt gets None (the fake server then echoes). Used as ``FakeOpenAI.respond_with(answer)`` over HTTP,
and in-process by the build benchmark (``InstantChatModel``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from shared.ports.chat_model import (
    ChatDelta,
    ChatMessage,
    ChatModel,
    ChatOptions,
    ChatResult,
    ChatStream,
    ChatUsage,
)
from shared.rag.graphrag import prompts

T = prompts.TUPLE_DELIMITER
R = prompts.RECORD_DELIMITER
_NAME = re.compile(r"\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*")
_NOT_NAMES = frozenset({"The", "A", "An", "In", "On", "It", "Its", "This", "That", "He", "She", "They", "Then", "When"})
_SENTENCE = re.compile(r"[^.!?\n]+")


def names_in(sentence: str) -> list[str]:
    """The entities the stand-in finds in a sentence: its capitalized names, upper-cased, each once."""
    found = []
    for match in _NAME.findall(sentence):
        words = [w for w in match.split() if w not in _NOT_NAMES]
        if words:
            found.append(" ".join(words).upper())
    return list(dict.fromkeys(found))


def entity_type(name: str) -> str:
    """PERSON for two-word names, else ORGANIZATION (both default entity types)."""
    return "PERSON" if len(name.split()) == 2 else "ORGANIZATION"


def extraction_answer(text: str) -> str:
    records = []
    for sentence in _SENTENCE.findall(text):
        names = names_in(sentence)
        for name in names:  # once per sentence: the extractor merges an entity's descriptions
            records.append(f'("entity"{T}{name}{T}{entity_type(name)}{T}{name} appears in: {sentence.strip()})')
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                records.append(f'("relationship"{T}{a}{T}{b}{T}{sentence.strip()}{T}mentioned together{T}5)')
    return R.join(records) + R + prompts.COMPLETION_DELIMITER


def _content(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def answer(messages: Sequence[Mapping[str, Any]]) -> str | None:
    """The answer to a knowledge-build or ``use_kg`` prompt; None for anything else."""
    prompt = _content(messages[-1]) if messages else ""
    if prompt.startswith("Task: extract the entities"):
        return extraction_answer(prompt.split("\nText:\n", 1)[-1])
    if prompt == prompts.CONTINUE_PROMPT:
        return prompts.COMPLETION_DELIMITER
    if prompt == prompts.LOOP_PROMPT:
        return "NO"
    if prompt.startswith("Write one coherent description"):
        return "A description summarized from many passages."
    if "Decide whether the two names mean the same" in prompt:
        count = len(re.findall(r"^Question \d+:", prompt, re.MULTILINE))
        return "\n".join(f"Question {i}: NO" for i in range(1, count + 1))
    if prompt.startswith("You write reports about communities"):
        entities = re.findall(r"^\d+,([^,]+),", prompt.split("Entities (id, entity, description):", 1)[-1], re.M)
        title = " and ".join(entities[:2]) or "A community"
        return json.dumps(
            {
                "title": f"Community of {title}",
                "summary": f"{title} are related.",
                "rating": 5,
                "rating_explanation": "Moderately important.",
                "findings": [{"summary": f"{title} appear together", "explanation": f"{title} share passages."}],
            }
        )
    if prompt.startswith("You prepare a question for a search over a knowledge graph"):
        question = prompt.rsplit("Question:", 1)[-1]
        return json.dumps({"answer_type_keywords": ["PERSON"], "entities_from_query": names_in(question)})
    if prompt.startswith("Please summarize the following paragraphs"):
        words = prompt.split("Paragraphs as following:", 1)[-1].split()
        return "Summary: " + " ".join(words[:12])
    return None


class InstantChatModel(ChatModel):
    """``answer`` as an in-process chat model that answers at once (the executor's own cost, measured)."""

    model_id = "instant@OpenAI-API-Compatible"

    def complete(self, messages: Sequence[ChatMessage], options: ChatOptions | None = None) -> ChatResult:
        text = answer([{"role": m.role, "content": m.content} for m in messages]) or "OK"
        return ChatResult(text, ChatUsage.of(1, 1))

    def stream(self, messages: Sequence[ChatMessage], options: ChatOptions | None = None) -> ChatStream:
        result = self.complete(messages, options)
        yield ChatDelta(result.text)
        yield ChatDelta("", result.usage)
