"""Entity resolution: entities of one type whose names look alike are put to the chat model in batches, and
the pairs it confirms are merged into one entity (RAGFlow's EntityResolution, our own prompt)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Collection, Sequence

from shared.ports.chat_model import ChatMessage, ChatModel, ChatOptions
from shared.rag.graphrag import prompts
from shared.rag.graphrag.graph import GraphChange, KnowledgeGraph

#: Candidate pairs per request to the model.
BATCH = 100
_ANSWER = re.compile(r"question\s*(\d+)\s*[:\-.,]?\s*\**\s*(yes|no)\b", re.IGNORECASE)


def edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance of ``a`` and ``b``, or ``limit + 1`` as soon as it must exceed ``limit``."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1]


def _mostly_ascii(text: str) -> bool:
    return sum(ch.isascii() for ch in text) >= 0.8 * max(1, len(text))


def _digits_differ(a: str, b: str) -> bool:
    """Names whose differing character pairs hold a digit (``PART 1`` / ``PART 2``) are never the same."""
    grams_a = {a[i : i + 2] for i in range(len(a) - 1)}
    grams_b = {b[i : i + 2] for i in range(len(b) - 1)}
    return any(ch.isdigit() for gram in grams_a ^ grams_b for ch in gram)


def look_alike(a: str, b: str) -> bool:
    """RAGFlow's similarity test: a small edit distance for Latin names, shared characters otherwise."""
    if _digits_differ(a, b):
        return False
    if _mostly_ascii(a) and _mostly_ascii(b):
        limit = min(len(a), len(b)) // 2
        return edit_distance(a.lower(), b.lower(), limit) <= limit
    chars_a, chars_b = set(a), set(b)
    longest = max(len(chars_a), len(chars_b))
    if longest < 4:
        return len(chars_a & chars_b) > 1
    return len(chars_a & chars_b) / longest >= 0.8


def candidate_pairs(graph: KnowledgeGraph, new_nodes: Collection[str]) -> dict[str, list[tuple[str, str]]]:
    """Look-alike pairs per entity type, each with at least one entity among ``new_nodes``."""
    by_type: dict[str, list[str]] = {}
    for name in sorted(graph.nodes):
        by_type.setdefault(str(graph.nodes[name].get("entity_type") or "-"), []).append(name)
    out: dict[str, list[tuple[str, str]]] = {}
    for entity_type, names in by_type.items():
        pairs = [
            (a, b)
            for a, b in itertools.combinations(names, 2)
            if (a in new_nodes or b in new_nodes) and look_alike(a, b)
        ]
        if pairs:
            out[entity_type] = pairs
    return out


def confirmed_pairs(model: ChatModel, entity_type: str, pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The pairs the model says name the same entity (asked ``BATCH`` at a time)."""
    same: list[tuple[str, str]] = []
    for start in range(0, len(pairs), BATCH):
        batch = pairs[start : start + BATCH]
        questions = "\n".join(
            f'Question {i}: are "{a}" and "{b}" the same {entity_type}?' for i, (a, b) in enumerate(batch, 1)
        )
        answer = model.complete(
            [
                ChatMessage("system", "You decide whether two names refer to the same entity."),
                ChatMessage("user", prompts.RESOLUTION_PROMPT.format(entity_type=entity_type, questions=questions)),
            ],
            ChatOptions(temperature=0.0),
        ).text
        for number, verdict in _ANSWER.findall(answer):
            index = int(number) - 1
            if verdict.lower() == "yes" and 0 <= index < len(batch):
                same.append(batch[index])
    return same


def resolve_entities(
    graph: KnowledgeGraph,
    new_nodes: Collection[str],
    model: ChatModel,
    on_progress: Callable[[str], None] | None = None,
) -> GraphChange:
    """Merge the entities the model confirms as the same; each group keeps its first name in sort order."""
    change = GraphChange()
    confirmed: list[tuple[str, str]] = []
    for entity_type, pairs in candidate_pairs(graph, new_nodes).items():
        confirmed += confirmed_pairs(model, entity_type, pairs)
    # Groups of names linked by confirmed pairs (union-find).
    parent: dict[str, str] = {}

    def root(name: str) -> str:
        while parent.get(name, name) != name:
            name = parent[name]
        return name

    for a, b in confirmed:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    for name in sorted(parent):
        keep = root(name)
        if keep != name and name in graph.nodes:
            edges_before = {k for k in graph.edges if name in k}
            graph.rename_node(name, keep)
            change.removed_nodes.add(name)
            change.removed_edges |= edges_before
            change.nodes.add(keep)
            change.edges |= {k for k in graph.edges if keep in k}
    change.edges -= change.removed_edges - set(graph.edges)
    if on_progress is not None:
        on_progress(f"Resolved {len(change.removed_nodes)} entities into others ({len(confirmed)} pairs confirmed).")
    return change
