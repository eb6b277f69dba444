"""The model catalog: factories and models the API knows, read from ``shared/data/model_catalog.json``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal, cast

ModelType = Literal["chat", "embedding", "rerank", "image2text"]
MODEL_TYPES: tuple[ModelType, ...] = ("chat", "embedding", "rerank", "image2text")
BUILTIN_FACTORY = "Builtin"
BUILTIN_EMBEDDING_MODEL = "all-MiniLM-L6-v2@Builtin"

_CATALOG_FILE = Path(__file__).parent / "data" / "model_catalog.json"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    factory: str
    type: ModelType
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

    def __init__(self, raw: dict[str, object]) -> None:
        self._models: dict[tuple[str, str, str], ModelInfo] = {}
        self._builtin: set[str] = set()
        self._any_model: set[str] = set()
        for factory in cast(list[dict[str, object]], raw["factories"]):
            fname = str(factory["name"])
            if factory.get("builtin"):
                self._builtin.add(fname)
            if factory.get("any_model"):
                self._any_model.add(fname)
            for model in cast(list[dict[str, object]], factory["models"]):
                info = ModelInfo(
                    name=str(model["name"]),
                    factory=fname,
                    type=cast(ModelType, model["type"]),
                    dimension=cast("int | None", model.get("dimension")),
                    max_tokens=cast("int | None", model.get("max_tokens")),
                )
                self._models[(info.name, info.factory, info.type)] = info

    @property
    def factories(self) -> set[str]:
        return {factory for _, factory, _ in self._models} | self._any_model | self._builtin

    def find(self, model_id: str, model_type: ModelType) -> ModelInfo | None:
        """The catalog entry for ``model_id`` of ``model_type``; factories that serve any model match too."""
        name, factory = split_model_id(model_id)
        info = self._models.get((name, factory, model_type))
        if info is None and factory in self._any_model and name:
            info = ModelInfo(name=name, factory=factory, type=model_type)
        return info

    def is_builtin(self, model_id: str) -> bool:
        return split_model_id(model_id)[1] in self._builtin

    def models_of(self, factory: str, model_type: ModelType) -> list[ModelInfo]:
        """The factory's listed models of ``model_type``, in catalog order."""
        return [info for (_, fname, mtype), info in self._models.items() if fname == factory and mtype == model_type]


@lru_cache(maxsize=1)
def get_catalog() -> ModelCatalog:
    """The catalog shipped with the package, loaded once."""
    return ModelCatalog(json.loads(_CATALOG_FILE.read_text(encoding="utf-8")))
