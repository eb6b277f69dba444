"""``parser_config``: RAGFlow's defaults per chunk method, and the model a client's settings are checked with.

RAGFlow's server (``get_parser_config``) lays a client's settings over the chunk method's defaults; every
method carries ``image_context_size``/``table_context_size`` 0, and a dataset's config also carries its
tenant's chat model as ``llm_id``. ``use_raptor``/``use_graphrag`` are settings only: nothing runs until a
client asks for RAPTOR or GraphRAG on the dataset.

The model accepts everything the server returns (so a config can be sent back unchanged) and ignores keys it
does not know: newer clients send some (``parent_child``, ``children_delimiter``, ``ext``, …).
"""

from __future__ import annotations

import copy
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from shared.schemas.common import PAGING_LIMIT, LenientBody, deep_merge

RAPTOR_PROMPT = (
    "Please summarize the following paragraphs. Be careful with the numbers, do not make things up. "
    "Paragraphs as following:\n      {cluster_content}\nThe above is the content you need to summarize."
)
ENTITY_TYPES = ("organization", "person", "geo", "event", "category")

# Every method starts from these (RAGFlow's ``base_defaults``).
_BASE: dict[str, Any] = {"table_context_size": 0, "image_context_size": 0}
_NO_RAPTOR_NO_GRAPHRAG: dict[str, Any] = {"raptor": {"use_raptor": False}, "graphrag": {"use_graphrag": False}}
_METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "naive": {
        "layout_recognize": "DeepDOC",
        "chunk_token_num": 512,
        "delimiter": "\n",
        "auto_keywords": 0,
        "auto_questions": 0,
        "html4excel": False,
        "topn_tags": 3,
        "raptor": {
            "use_raptor": True,
            "prompt": RAPTOR_PROMPT,
            "max_token": 256,
            "threshold": 0.1,
            "max_cluster": 64,
            "random_seed": 0,
        },
        "graphrag": {"use_graphrag": True, "entity_types": list(ENTITY_TYPES), "method": "light"},
    },
    **{method: _NO_RAPTOR_NO_GRAPHRAG for method in ("qa", "manual", "paper", "book", "laws", "presentation")},
    # A document may be set to RAGFlow's knowledge_graph method (chunked as naive, with these settings).
    "knowledge_graph": {
        "chunk_token_num": 8192,
        "delimiter": "\\n",
        "entity_types": ["organization", "person", "location", "event", "time"],
        **_NO_RAPTOR_NO_GRAPHRAG,
    },
    **{method: {} for method in ("table", "picture", "one", "email", "tag")},
}

#: Each chunk method's defaults without the tenant's ``llm_id`` (see ``default_parser_config``).
PARSER_CONFIG_DEFAULTS: dict[str, dict[str, Any]] = {
    method: deep_merge(_BASE, defaults) for method, defaults in _METHOD_DEFAULTS.items()
}


def default_parser_config(chunk_method: str, llm_id: str | None) -> dict[str, Any]:
    """A fresh copy of ``chunk_method``'s defaults, with ``llm_id`` (the tenant's chat model) set."""
    return {**copy.deepcopy(PARSER_CONFIG_DEFAULTS[chunk_method]), "llm_id": llm_id or ""}


def resolve_parser_config(chunk_method: str, llm_id: str | None, overrides: dict[str, Any]) -> dict[str, Any]:
    """The method's defaults with a client's settings laid over them (nested objects merged, not replaced)."""
    return deep_merge(default_parser_config(chunk_method, llm_id), overrides)


class RaptorConfig(LenientBody):
    use_raptor: bool = False
    prompt: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] = RAPTOR_PROMPT
    max_token: Annotated[int, Field(ge=1, le=2048)] = 256
    threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.1
    max_cluster: Annotated[int, Field(ge=1, le=1024)] = 64
    random_seed: Annotated[int, Field(ge=0)] = 0


class GraphragConfig(LenientBody):
    use_graphrag: bool = False
    entity_types: list[str] = Field(default_factory=lambda: list(ENTITY_TYPES))
    method: Literal["light", "general"] = "light"
    community: bool = False
    resolution: bool = False


class ParserConfig(LenientBody):
    """A client's ``parser_config``: strict types, unknown keys ignored (see the module docstring)."""

    auto_keywords: Annotated[int, Field(ge=0, le=32)] = 0
    auto_questions: Annotated[int, Field(ge=0, le=10)] = 0
    chunk_token_num: Annotated[int, Field(ge=1, le=2048)] = 512
    delimiter: Annotated[str, Field(min_length=1)] = "\n"
    graphrag: GraphragConfig = Field(default_factory=GraphragConfig)
    html4excel: bool = False
    layout_recognize: str = "DeepDOC"
    raptor: RaptorConfig = Field(default_factory=RaptorConfig)
    tag_kb_ids: list[str] = Field(default_factory=list)
    topn_tags: Annotated[int, Field(ge=1, le=10)] = 3
    filename_embd_weight: Annotated[float | None, Field(ge=0.0, le=1.0)] = 0.1
    task_page_size: Annotated[int | None, Field(ge=1)] = None
    pages: list[list[int]] | None = None
    # Returned by the server, so accepted back: the tenant's chat model and the media context sizes.
    llm_id: str | None = None
    image_context_size: Annotated[int, Field(ge=0, le=PAGING_LIMIT)] = 0
    table_context_size: Annotated[int, Field(ge=0, le=PAGING_LIMIT)] = 0

    def overrides(self) -> dict[str, Any]:
        """Only what the client set (nested objects included), unknown keys left out."""
        return self.model_dump(exclude_unset=True)
