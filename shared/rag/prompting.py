"""Prompt assembly and citations for chat answers, as RAGFlow does them.

* ``{knowledge}`` in the assistant's system prompt becomes the retrieved chunks, numbered from 0;
* the history is trimmed from the oldest turns to fit the model's context;
* after the answer, ``##n$$`` markers are inserted after each sentence that chunk ``n`` supports (term
  overlap with the sentence, the same analyzer as search), unless the model already cited.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from shared.ports.chat_model import ChatMessage
from shared.rag.text_analysis import analyze
from shared.rag.tokens import count_tokens

CITATION_GUIDE = (
    "\n\nWhen you use a passage from the knowledge base, cite it right after the sentence with its ID "
    "in the form ##ID$$ (for example ##0$$). Cite only passages you used."
)
_CITED = re.compile(r"##(\d+)\$\$")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|\n+")  # noqa: RUF001 - CJK sentence ends


def format_knowledge(chunks: Sequence[Mapping[str, Any]]) -> str:
    """The retrieved chunks as the ``{knowledge}`` variable: ID, document title and content."""
    parts = []
    for position, chunk in enumerate(chunks):
        title = chunk.get("document_keyword") or chunk.get("document_name") or ""
        parts.append(f"------\nID: {position}\nTitle: {title}\nContent: {chunk.get('content', '')}")
    return "\n".join(parts)


def system_prompt(
    template: str,
    knowledge: str,
    variables: Sequence[Mapping[str, Any]],
    values: Mapping[str, Any],
    *,
    cite: bool,
) -> str:
    """The assistant's system prompt with ``{knowledge}`` and the other variables filled in."""
    text = template.replace("{knowledge}", knowledge)
    for variable in variables:
        key = str(variable.get("key", ""))
        if key and key != "knowledge":
            text = text.replace(f"{{{key}}}", str(values.get(key, "")))
    return text + (CITATION_GUIDE if cite and knowledge else "")


def fit_history(system: str, history: Sequence[ChatMessage], budget_tokens: int) -> list[ChatMessage]:
    """Drop the oldest turns until system + history fit ``budget_tokens``; the last turn always stays."""
    kept = list(history)
    used = count_tokens(system) + sum(count_tokens(m.content) for m in kept)
    while len(kept) > 1 and used > budget_tokens:
        used -= count_tokens(kept.pop(0).content)
    return kept


def insert_citations(
    answer: str, chunks: Sequence[Mapping[str, Any]], *, min_overlap: float = 0.3
) -> tuple[str, list[int]]:
    """``answer`` with ``##n$$`` after sentences supported by chunk ``n``; returns the chunks cited.

    A sentence cites the chunk sharing the largest share of its terms, when that share is at least
    ``min_overlap``. Markers the model wrote itself are kept (and counted) instead.
    """
    already = [int(n) for n in _CITED.findall(answer) if int(n) < len(chunks)]
    if already:
        return answer, sorted(set(already))
    chunk_terms = [set(analyze(str(c.get("content", "")))) for c in chunks]
    if not chunk_terms:
        return answer, []
    cited: set[int] = set()
    pieces = []
    last = 0
    for match in [*_SENTENCE_END.finditer(answer), None]:
        end = match.start() if match else len(answer)
        sentence = answer[last:end]
        terms = set(analyze(sentence))
        marker = ""
        if terms:
            overlaps = [len(terms & ct) / len(terms) for ct in chunk_terms]
            best = max(range(len(overlaps)), key=overlaps.__getitem__)
            if overlaps[best] >= min_overlap:
                marker = f" ##{best}$$"
                cited.add(best)
        pieces.append(sentence + marker)
        if match:
            pieces.append(match.group(0))
            last = match.end()
    return "".join(pieces), sorted(cited)


def _about(content: str, instruction: str) -> list[ChatMessage]:
    return [ChatMessage("system", instruction), ChatMessage("user", content)]


def keyword_messages(content: str, count: int) -> list[ChatMessage]:
    """Ask for the ``count`` most important keywords of a chunk (RAGFlow's auto_keywords)."""
    return _about(
        content,
        f"Extract the {count} most important keywords or short phrases of the text the user gives. "
        "Answer with the keywords only, separated by commas, in the language of the text.",
    )


def question_messages(content: str, count: int) -> list[ChatMessage]:
    """Ask for ``count`` questions the chunk answers (RAGFlow's auto_questions)."""
    return _about(
        content,
        f"Write {count} questions that the text the user gives answers. Answer with the questions only, "
        "one per line, in the language of the text.",
    )


def parse_keywords(text: str, count: int) -> list[str]:
    items = [k.strip().strip("\"'.").strip() for k in re.split(r"[,\n;，、]", text)]  # noqa: RUF001 - CJK separators
    return list(dict.fromkeys(k for k in items if k))[:count]


def parse_questions(text: str, count: int) -> list[str]:
    lines = [line.strip().lstrip("-*0123456789.) ").strip() for line in text.splitlines()]
    return list(dict.fromkeys(line for line in lines if line))[:count]
