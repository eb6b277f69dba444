"""``use_kg`` retrieval over a knowledge graph, as RAGFlow's KGSearch does it (our own prompt and code).

The chat model rewrites the question into the entity types an answer would be and the entities it names.
Entities are found by the vector of those names, relations by the vector of the question (the best 56 of
each whose similarity reaches 0.3); entities of the answer types are looked up by PageRank. Scores follow
RAGFlow: an entity's similarity is doubled when it is also of an answer type, relations gain from their
ends being of those types and from lying on short paths (two hops) from the entities found, and both are
ranked by similarity * PageRank (relations: * weight). The best 6 entities and 6 relations are written as
CSV tables, followed by the best community report among those naming a chosen entity, into one pseudo-chunk
("Related content in Knowledge Graph") that retrieval puts first.

Similarities are RAGFlow's Elasticsearch cosine scores, ``(1 + cosine) / 2``, so its threshold keeps its
meaning.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from shared.ports.chat_model import ChatMessage
from shared.rag.graphrag import prompts
from shared.rag.graphrag.graph import EdgeKey, KnowledgeGraph, edge_key
from shared.rag.tokens import count_tokens

DOCUMENT_NAME: Final = "Related content in Knowledge Graph"
#: Candidates asked of the index per kind, and the similarity they must reach.
CANDIDATES: Final = 56
SIMILARITY_THRESHOLD: Final = 0.3
ENTITY_TOP: Final = 6
RELATION_TOP: Final = 6
COMMUNITY_TOP: Final = 1
MAX_TOKENS: Final = 8196
#: Neighbours followed from each entity per hop (the paths' fan-out stays bounded on hubs).
HOP_FAN_OUT: Final = 10
#: Entity types shown to the model, each with this many of its best entities.
TYPE_SAMPLES: Final = 3


def es_similarity(cosine: float) -> float:
    """The cosine as Elasticsearch scores it for a cosine ``dense_vector``, which RAGFlow's threshold assumes."""
    return (1.0 + cosine) / 2.0


def type_samples(graph: KnowledgeGraph) -> dict[str, list[str]]:
    """Each entity type with its best entities by PageRank (what the model may answer types from)."""
    by_type: dict[str, list[tuple[float, str]]] = {}
    for name, attrs in graph.nodes.items():
        by_type.setdefault(str(attrs.get("entity_type") or ""), []).append((-float(attrs.get("pagerank") or 0), name))
    return {t: [n for _, n in sorted(names)[:TYPE_SAMPLES]] for t, names in sorted(by_type.items()) if t}


def rewrite_messages(question: str, samples: Mapping[str, Sequence[str]]) -> list[ChatMessage]:
    shown = "; ".join(f"{t} (e.g. {', '.join(names)})" for t, names in samples.items()) or "(none yet)"
    return [
        ChatMessage("system", "You analyse questions for a knowledge-graph search and answer with JSON only."),
        ChatMessage("user", prompts.QUERY_REWRITE_PROMPT.format(type_samples=shown, question=question)),
    ]


def parse_rewrite(answer: str) -> tuple[list[str], list[str]] | None:
    """(answer types, entities) from the model's JSON answer; None when it holds none."""
    data = prompts.json_object(answer)
    if data is None:
        return None

    def strings(key: str) -> list[str]:
        value = data.get(key)
        return [str(v).strip() for v in value if str(v).strip()] if isinstance(value, list) else []

    return strings("answer_type_keywords"), strings("entities_from_query")


@dataclass
class Scored:
    sim: float
    pagerank: float
    description: str = ""


@dataclass
class GraphMatches:
    """What the index found: entity names and relation keys with their similarities (already thresholded)."""

    entities: dict[str, float] = field(default_factory=dict)
    relations: dict[EdgeKey, float] = field(default_factory=dict)


def _neighbours(graph: KnowledgeGraph) -> dict[str, list[tuple[str, float]]]:
    out = graph.neighbours()
    return {n: sorted(nbrs, key=lambda item: -item[1])[:HOP_FAN_OUT] for n, nbrs in out.items()}


def rank(
    graph: KnowledgeGraph, matches: GraphMatches, answer_types: Iterable[str]
) -> tuple[list[tuple[str, Scored]], list[tuple[EdgeKey, Scored]]]:
    """The best entities and relations for the question (RAGFlow's scoring, see the module docstring)."""
    wanted = {t.upper() for t in answer_types}
    typed = sorted(
        (n for n, a in graph.nodes.items() if str(a.get("entity_type") or "").upper() in wanted),
        key=lambda n: -float(graph.nodes[n].get("pagerank") or 0),
    )[:CANDIDATES]
    of_type = set(typed)
    entities = {
        name: Scored(sim, float(graph.nodes[name].get("pagerank") or 0), str(graph.nodes[name].get("description", "")))
        for name, sim in matches.entities.items()
        if name in graph.nodes
    }
    neighbours = _neighbours(graph)
    paths: dict[EdgeKey, Scored] = {}
    for name, found in entities.items():
        for first, weight in neighbours.get(name, []):
            hop = paths.setdefault(edge_key(name, first), Scored(0.0, weight))
            hop.sim += found.sim / 2
            for second, weight2 in neighbours.get(first, []):
                if second == name:
                    continue
                far = paths.setdefault(edge_key(first, second), Scored(0.0, weight2))
                far.sim += found.sim / 3
    for name in of_type:
        if name in entities:
            entities[name].sim *= 2
    relations: dict[EdgeKey, Scored] = {}
    for key, sim in matches.relations.items():
        edge = graph.edges.get(key)
        if edge is None:
            continue
        boost = (paths.pop(key).sim if key in paths else 0.0) + (key[0] in of_type) + (key[1] in of_type)
        relations[key] = Scored(sim * (boost + 1), float(edge.get("weight") or 0), str(edge.get("description", "")))
    for key, hop in paths.items():  # on a path from an entity found, but not found by the question itself
        edge = graph.edges.get(key)
        if edge is None:
            continue
        boost = (key[0] in of_type) + (key[1] in of_type)
        relations[key] = Scored(hop.sim * (boost + 1), hop.pagerank, str(edge.get("description", "")))
    best_entities = sorted(entities.items(), key=lambda item: -item[1].sim * item[1].pagerank)[:ENTITY_TOP]
    best_relations = sorted(relations.items(), key=lambda item: -item[1].sim * item[1].pagerank)[:RELATION_TOP]
    return best_entities, best_relations


def _csv(rows: Sequence[Mapping[str, str]]) -> str:
    """Rows as pandas' ``DataFrame.to_csv()`` writes them (an index column first), as RAGFlow shows them."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["", *rows[0].keys()])
    for position, row in enumerate(rows):
        writer.writerow([position, *row.values()])
    return buffer.getvalue()


def render(
    entities: Sequence[tuple[str, Scored]],
    relations: Sequence[tuple[EdgeKey, Scored]],
    reports: Sequence[Mapping[str, Any]],
    max_tokens: int = MAX_TOKENS,
) -> str:
    """The pseudo-chunk's text: entity and relation tables, then the community report(s); ``""`` when the
    graph had nothing for the question."""
    budget = max_tokens
    entity_rows: list[dict[str, str]] = []
    for name, scored in entities:
        row = {"Entity": name, "Score": f"{scored.sim * scored.pagerank:.2f}", "Description": scored.description}
        budget -= count_tokens(str(row))
        if budget <= 0:
            break
        entity_rows.append(row)
    relation_rows: list[dict[str, str]] = []
    for (a, b), scored in relations:
        row = {
            "From Entity": a,
            "To Entity": b,
            "Score": f"{scored.sim * scored.pagerank:.2f}",
            "Description": scored.description,
        }
        budget -= count_tokens(str(row))
        if budget <= 0:
            break
        relation_rows.append(row)
    text = ""
    if entity_rows:
        text += f"\n---- Entities ----\n{_csv(entity_rows)}"
    if relation_rows:
        text += f"\n---- Relations ----\n{_csv(relation_rows)}"
    sections = [
        f"# {i}. {r.get('title', '')}\n## Content\n{r.get('report', '')}\n## Evidences\n{r.get('evidences', '')}\n"
        for i, r in enumerate(reports[:COMMUNITY_TOP], start=1)
    ]
    if sections:
        text += "\n---- Community Report ----\n" + "\n".join(sections)
    return text


def best_reports(reports: Iterable[Mapping[str, Any]], entities: Iterable[str]) -> list[Mapping[str, Any]]:
    """Community reports naming any of ``entities``, heaviest first."""
    names = set(entities)
    found = [r for r in reports if names & set(r.get("entities") or [])]
    return sorted(found, key=lambda r: -float(r.get("weight") or 0))[:COMMUNITY_TOP]
