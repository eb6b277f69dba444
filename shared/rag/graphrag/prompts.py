"""The chat model's instructions for building and searching knowledge graphs (our own wording).

Extraction answers use RAGFlow's record format, so its parsing rules apply unchanged: records separated
by ``##``, fields by ``<|>``, the answer closed by ``<|COMPLETE|>``::

    ("entity"<|>NAME<|>TYPE<|>DESCRIPTION)##
    ("relationship"<|>SOURCE<|>TARGET<|>DESCRIPTION<|>KEYWORDS<|>STRENGTH)##<|COMPLETE|>

The ``general`` method asks for relationships without keywords (``…<|>DESCRIPTION<|>STRENGTH``), as
Microsoft GraphRAG's prompt does; ``light`` (LightRAG's) asks for keywords too.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

TUPLE_DELIMITER: Final = "<|>"
RECORD_DELIMITER: Final = "##"
COMPLETION_DELIMITER: Final = "<|COMPLETE|>"

EXTRACTION_SYSTEM: Final = "You build knowledge graphs from documents. You follow the output format exactly."

_RELATION_LIGHT = (
    '("relationship"{t}<source entity>{t}<target entity>{t}<why they are related>{t}'
    "<a few keywords summing up the relation>{t}<strength from 1 to 10>)"
)
_RELATION_GENERAL = (
    '("relationship"{t}<source entity>{t}<target entity>{t}<why they are related>{t}<strength from 1 to 10>)'
)

EXTRACTION_PROMPT: Final = """Task: extract the entities and relationships of a knowledge graph from the text below.

1. Find every entity of one of these types: [{entity_types}]. For each, write
   ("entity"{t}<entity name, capitalized>{t}<one of the types>{t}<a full description of the entity,
   as the text presents it>)
2. Among those entities, find every pair that the text clearly relates. For each pair, write
   {relation}
3. Write the records in {language}, separated by {r}, and end the answer with {c}.

Example answer:
("entity"{t}ADA LOVELACE{t}PERSON{t}Ada Lovelace wrote the first published program for Babbage's engine.){r}
("entity"{t}ANALYTICAL ENGINE{t}CATEGORY{t}A mechanical general-purpose computer designed by Charles Babbage.){r}
{example_relation}{r}{c}

Text:
{input_text}"""

_EXAMPLE_LIGHT = (
    '("relationship"{t}ADA LOVELACE{t}ANALYTICAL ENGINE{t}Ada Lovelace wrote a program for the Analytical '
    "Engine.{t}programming, computing history{t}9)"
)
_EXAMPLE_GENERAL = (
    '("relationship"{t}ADA LOVELACE{t}ANALYTICAL ENGINE{t}Ada Lovelace wrote a program for the Analytical Engine.{t}9)'
)

#: Gleaning: asked after an answer, to catch what the first pass missed.
CONTINUE_PROMPT: Final = (
    "Some entities and relationships of the text were missed in the last answer. "
    "Add them now, in the same format (records only, nothing already given):"
)
#: Asked between gleaning passes; an answer other than YES stops gleaning.
LOOP_PROMPT: Final = "Could entities or relationships of the text still be missing? Answer YES or NO only, in capitals."

SUMMARIZE_DESCRIPTIONS_PROMPT: Final = """Write one coherent description of the {kind} "{name}" from the descriptions
below, which were gathered from different passages. Keep every fact they state, resolve contradictions where you can,
write in the third person and name the {kind}, in {language}.
Use at most {max_tokens} tokens.

Descriptions:
{descriptions}"""

RESOLUTION_PROMPT: Final = """Each question below names two {entity_type} entities found in the same dataset.
Decide whether the two names mean the same real-world entity (a spelling variant, an abbreviation, a translation)
or two different ones.

{questions}

Answer every question on a line of its own, exactly as: Question <number>: YES or Question <number>: NO"""

COMMUNITY_REPORT_PROMPT: Final = """You write reports about communities of a knowledge graph: a community is
a group of entities and the relationships between them.

Write a report on the community below, in {language}, as a JSON object with these keys:
* "title": a short, specific name for the community naming its key entities;
* "summary": what the community is about and how its entities relate, in a few sentences;
* "rating": a number from 0 to 10 for how important the community is;
* "rating_explanation": one sentence explaining the rating;
* "findings": a list of 3 to 8 objects
  {{"summary": <one-line insight>, "explanation": <a paragraph grounded in the data>}}.
Answer with the JSON object only.

Entities (id, entity, description):
{entities}

Relationships (id, source, target, description):
{relations}"""

QUERY_REWRITE_PROMPT: Final = """You prepare a question for a search over a knowledge graph.

The graph's entity types, each with a few of its entities: {type_samples}

Answer with a JSON object with two keys:
* "answer_type_keywords": up to 3 of the entity types above that an answer to the question would be, most likely first;
* "entities_from_query": the specific entities, names and terms the question mentions or asks about.
Answer with the JSON object only.

Question: {question}"""


def json_object(answer: str) -> dict[str, Any] | None:
    """The JSON object in an answer to a prompt asking for one (fenced or not, from its first ``{`` to its
    last ``}``); None when there is none."""
    found = re.search(r"\{.*\}", answer, re.DOTALL)
    if found is None:
        return None
    try:
        data = json.loads(found.group(0))
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def extraction_prompt(text: str, entity_types: list[str], method: str, language: str) -> str:
    """The first extraction request for one block of text."""
    relation = _RELATION_GENERAL if method == "general" else _RELATION_LIGHT
    example = _EXAMPLE_GENERAL if method == "general" else _EXAMPLE_LIGHT
    t = TUPLE_DELIMITER
    return EXTRACTION_PROMPT.format(
        entity_types=", ".join(t.upper() for t in entity_types),
        relation=relation.format(t=t),
        example_relation=example.format(t=t),
        language=language,
        t=t,
        r=RECORD_DELIMITER,
        c=COMPLETION_DELIMITER,
        input_text=text,
    )
