"""Communities of the knowledge graph and their reports (RAGFlow's extract_community, our own prompt).

Communities are found with the Louvain method of networkx (RAGFlow uses hierarchical Leiden; Louvain is
the modularity method networkx keeps, and needs no compiled extension). Each community of two or more
entities gets a report written by the chat model from its entities and relationships; its weight is the
sum of its entities' ranks, relative to the heaviest community (RAGFlow's ``weight_flt``), and it is what
``use_kg`` retrieval picks the best report by.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.ports.chat_model import ChatMessage, ChatModel, ChatOptions
from shared.rag.graphrag import prompts
from shared.rag.graphrag.graph import KnowledgeGraph
from shared.rag.tokens import count_tokens

#: How much of the model's context a community's tables may fill.
REPORT_INPUT_SHARE = 0.6
REPORT_MAX_TOKENS = 1536


@dataclass
class CommunityReport:
    id: str
    title: str
    report: str
    evidences: str
    entities: list[str]
    weight: float
    rating: float
    source_id: list[str] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "report": self.report,
            "evidences": self.evidences,
            "entities": self.entities,
            "weight": self.weight,
            "rating": self.rating,
            "source_id": self.source_id,
        }


def community_id(members: Sequence[str]) -> str:
    """Stable for the same set of entities: an unchanged community keeps its report."""
    digest = hashlib.blake2b("\x00".join(sorted(members)).encode(), digest_size=8)
    return digest.hexdigest()


def detect_communities(graph: KnowledgeGraph, seed: int = 0) -> list[list[str]]:
    """Louvain communities of two or more entities, largest first (members sorted)."""
    import networkx as nx  # only the build steps load it (its own small layer on AWS)

    g = nx.Graph()
    g.add_nodes_from(graph.nodes)
    g.add_weighted_edges_from((a, b, float(e.get("weight") or 1.0)) for (a, b), e in graph.edges.items())
    if g.number_of_edges() == 0:
        return []
    found = nx.community.louvain_communities(g, weight="weight", seed=seed)
    communities = [sorted(c) for c in found if len(c) >= 2]
    return sorted(communities, key=lambda c: (-len(c), c))


def community_weights(graph: KnowledgeGraph, communities: Sequence[Sequence[str]]) -> list[float]:
    raw = [float(sum(int(graph.nodes[n].get("rank") or 0) for n in members)) for members in communities]
    top = max(raw, default=0.0)
    return [w / top if top else 0.0 for w in raw]


def _table(rows: list[list[str]], header: list[str], budget: int) -> str:
    lines = [",".join(header)]
    used = count_tokens(lines[0])
    for row in rows:
        line = ",".join(_csv_cell(cell) for cell in row)
        cost = count_tokens(line)
        if used + cost > budget:
            break
        lines.append(line)
        used += cost
    return "\n".join(lines)


def _csv_cell(value: str) -> str:
    text = str(value).replace("\n", " ")
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if any(c in text for c in ',"') else text


def report_prompt(graph: KnowledgeGraph, members: Sequence[str], language: str, context_tokens: int) -> str:
    budget = int(context_tokens * REPORT_INPUT_SHARE) // 2
    ranked = sorted(members, key=lambda n: -int(graph.nodes[n].get("rank") or 0))
    entity_rows = [[str(i), n, str(graph.nodes[n].get("description", ""))] for i, n in enumerate(ranked)]
    inside = set(members)
    edges = [(k, e) for k, e in graph.edges.items() if k[0] in inside and k[1] in inside]
    edges.sort(key=lambda item: -float(item[1].get("weight") or 0))
    relation_rows = [[str(i), a, b, str(e.get("description", ""))] for i, ((a, b), e) in enumerate(edges)]
    return prompts.COMMUNITY_REPORT_PROMPT.format(
        language=language,
        entities=_table(entity_rows, ["id", "entity", "description"], budget),
        relations=_table(relation_rows, ["id", "source", "target", "description"], budget),
    )


def parse_report(answer: str) -> dict[str, Any] | None:
    """The JSON object of a report answer (fenced or not); None when there is none or it lacks a title."""
    data = prompts.json_object(answer)
    if data is None or not str(data.get("title") or "").strip():
        return None
    return data


def render_report(data: dict[str, Any]) -> tuple[str, str]:
    """The report as markdown (title, summary, one section per finding) and its evidences (RAGFlow's form)."""
    findings = [f for f in data.get("findings") or [] if isinstance(f, dict)]
    sections = [f"# {data['title']}", str(data.get("summary") or "")]
    sections += [f"## {f.get('summary', '')}\n\n{f.get('explanation', '')}" for f in findings]
    evidences = "\n".join(str(f.get("explanation", "")) for f in findings)
    return "\n\n".join(s for s in sections if s), evidences


def write_report(
    model: ChatModel,
    graph: KnowledgeGraph,
    members: Sequence[str],
    weight: float,
    *,
    language: str,
    context_tokens: int,
) -> CommunityReport | None:
    """The model's report on one community; None when its answer holds no usable report."""
    answer = model.complete(
        [
            ChatMessage("system", "You analyse knowledge graphs and answer with JSON only."),
            ChatMessage("user", report_prompt(graph, members, language, context_tokens)),
        ],
        ChatOptions(temperature=0.3, max_tokens=REPORT_MAX_TOKENS),
    ).text
    data = parse_report(answer)
    if data is None:
        return None
    report, evidences = render_report(data)
    try:
        rating = float(data.get("rating") or 0.0)
    except (TypeError, ValueError):
        rating = 0.0
    sources = list(dict.fromkeys(s for n in members for s in graph.nodes[n].get("source_id", [])))
    return CommunityReport(
        id=community_id(members),
        title=str(data["title"]).strip(),
        report=report,
        evidences=evidences,
        entities=list(members),
        weight=weight,
        rating=rating,
        source_id=sources,
    )
