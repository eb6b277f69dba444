"""Retrieval: search the tenant's datasets (given by id, or by a variable holding names or ids) for the
query. The chunks found join the turn's reference (so answers can cite them) and become
``formalized_content``, the text a model reads; nothing found gives the ``empty_response``."""

from __future__ import annotations

from pydantic import Field

from shared.agent.components.base import Component, ComponentParams, NullIsEmpty
from shared.agent.errors import ComponentError
from shared.agent.reference import knowledge_text
from shared.agent.runtime import RetrievalSettings
from shared.agent.variables import bare_reference

DEFAULT_FUNCTION_NAME = "search_my_dateset"  # sic: RAGFlow's name for the tool
DEFAULT_DESCRIPTION = "This tool can be utilized for relevant content searching in the datasets."


class RetrievalParams(ComponentParams):
    query: NullIsEmpty = "sys.query"
    kb_ids: list[str] = Field(default_factory=list)
    top_n: int = Field(8, ge=1, le=1024)
    top_k: int = Field(1024, ge=1, le=2048)
    similarity_threshold: float = Field(0.2, ge=0, le=1)
    keywords_similarity_weight: float = Field(0.5, ge=0, le=1)
    rerank_id: NullIsEmpty = ""
    empty_response: NullIsEmpty = ""
    function_name: str = DEFAULT_FUNCTION_NAME
    description: str = DEFAULT_DESCRIPTION


class Retrieval(Component):
    component_name = "Retrieval"
    Params = RetrievalParams
    params: RetrievalParams

    def run(self) -> None:
        query = self.resolve(self.params.query or "sys.query")
        self.search(str(query or ""))

    def search(self, query: str) -> str:
        """Search for ``query``; sets the outputs and returns ``formalized_content``."""
        self.inputs["query"] = query
        self.set_output("json", [])
        if not query.strip():
            self.set_output("formalized_content", self.params.empty_response)
            return self.params.empty_response
        knowledge = self.canvas.runtime.knowledge
        settings = RetrievalSettings(
            dataset_ids=tuple(self.dataset_ids()),
            top_n=self.params.top_n,
            top_k=self.params.top_k,
            similarity_threshold=self.params.similarity_threshold,
            keywords_similarity_weight=self.params.keywords_similarity_weight,
            rerank_id=self.params.rerank_id or None,
        )
        found = knowledge.retrieve(query, settings)
        if not found.chunks:
            self.set_output("formalized_content", self.params.empty_response)
            return self.params.empty_response
        numbers = self.canvas.reference.add(found.chunks, found.doc_aggs)
        text = knowledge_text(found.chunks, numbers)
        self.set_output("json", found.chunks)
        self.set_output("formalized_content", text)
        return text

    def dataset_ids(self) -> list[str]:
        """The datasets to search: literal ids, and the names or ids a ``begin@...`` style variable holds."""
        ids: list[str] = []
        for entry in self.params.kb_ids:
            reference = bare_reference(entry) if "@" in entry or entry.startswith("{") else None
            if reference is None:
                ids.append(entry)
                continue
            value = self.value(reference)
            for item in value if isinstance(value, list) else [value]:
                if item in (None, ""):
                    continue
                found = self.canvas.runtime.knowledge.dataset_id(str(item))
                if found is None:
                    raise ComponentError(f"Dataset({item}) does not exist.")
                ids.append(found)
        ids = list(dict.fromkeys(i for i in ids if i))
        if not ids:
            raise ComponentError("No dataset is selected.")
        return ids
