"""Request model of POST /retrieval, and the pieces the completion requests share with it.

RAGFlow reads this body key by key (``req.get``): unknown keys are ignored and ``null`` means the default
(its Python SDK sends ``null`` for every option left unset). It answers its own messages with code 102
(``get_error_data_result``), so the rules here raise ``refuse(RetCode.DATA_ERROR, ...)`` with them.

What is accepted, and why:
* numbers: RAGFlow converts with ``int()`` / ``float()``, so numeric strings (``"2"``) pass, as do whole
  floats for integers (``2.0``); ``true``/``false``, lists, objects and fractional integers are refused.
  Every number is bounded, so nothing past this model can overflow (storage drivers, offsets).
* ``highlight``: RAGFlow takes a boolean, ``null`` (false) or the strings ``"true"``/``"false"`` in any case,
  and answers ``"`highlight` should be a boolean"`` otherwise. ``keyword``, ``use_kg`` and ``toc_enhance``
  take a boolean or ``null``: RAGFlow tests their truthiness, where ``"false"`` or ``[0]`` would turn the
  option on; refusing them is the clear answer.
* lists (``dataset_ids``, ``document_ids``, ``cross_languages``) must be lists of strings: RAGFlow would
  iterate a string character by character (a bug not to copy); ``{}`` or ``[1]`` are refused.
* ``metadata_condition``: an object or ``null``; anything else (``"abc"``, ``[]``) is refused with RAGFlow's
  ``metadata_condition must be an object.``, and its conditions are checked here, before any work.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from annotated_types import Ge, Le
from pydantic import BeforeValidator, ConfigDict, Field, PlainValidator, ValidationInfo, WithJsonSchema, field_validator

from shared.errors import RetCode
from shared.rag.metadata import OPERATORS, MetadataCondition, MetadataConditionError, parse_metadata_condition
from shared.schemas.common import PAGING_LIMIT, LenientBody, refuse
from shared.schemas.fields import refuse_blank

MAX_PAGE_SIZE = 1024
MAX_TOP_K = 2048

_OPERATOR_NAMES = sorted({*OPERATORS, "is", "not is", "==", "!=", ">=", "<=", "=>", "=<"})
_CONDITION_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {
            "type": "object",
            "description": "Keep the documents whose metadata (meta_fields) match the conditions.",
            "properties": {
                "logic": {"type": "string", "enum": ["and", "or"], "default": "and"},
                "conditions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string", "minLength": 1, "description": "a metadata key"},
                            "comparison_operator": {"type": "string", "enum": _OPERATOR_NAMES},
                            "value": {
                                "description": "a string, number or boolean (a list for `in` / `not in`); "
                                "none for `empty` / `not empty`"
                            },
                        },
                        "required": ["name", "comparison_operator"],
                    },
                },
            },
        },
        {"type": "null"},
    ],
    "default": None,
}


def _metadata_condition(value: Any) -> MetadataCondition | None:
    if value is None or isinstance(value, MetadataCondition):
        return value
    if not isinstance(value, dict):
        raise refuse(RetCode.DATA_ERROR, "metadata_condition must be an object.")
    try:
        return parse_metadata_condition(value)
    except MetadataConditionError as exc:
        raise refuse(RetCode.DATA_ERROR, exc.message) from None


#: A ``metadata_condition`` body value, read into the parsed condition (``None`` when absent or null).
MetadataConditionField = Annotated[
    MetadataCondition | None, PlainValidator(_metadata_condition), WithJsonSchema(_CONDITION_SCHEMA)
]


def ragflow_number(name: str, value: Any, low: float, high: float, *, integer: bool) -> int | float:
    """A number as RAGFlow's ``int()``/``float()`` reads it, bounded; its 102 messages otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise refuse(RetCode.DATA_ERROR, f"`{name}` should be a number")
    try:
        number: int | float = float(value) if not integer or isinstance(value, float) else int(value)
    except ValueError:  # "abc", or a string of more than 4,300 digits
        raise refuse(RetCode.DATA_ERROR, f"`{name}` should be a number") from None
    if integer:
        if not float(number).is_integer():  # NaN and infinities included
            raise refuse(RetCode.DATA_ERROR, f"`{name}` should be an integer")
        number = int(number)
    if not low <= number <= high:  # NaN fails here too
        shown = (f"{low:g}", f"{high:g}") if not integer else (str(int(low)), str(int(high)))
        raise refuse(RetCode.DATA_ERROR, f"`{name}` should be between {shown[0]} and {shown[1]}")
    return number


def _above(value: Any, bound: float) -> bool:
    """``value`` reads as a number greater than ``bound`` (``float()`` as RAGFlow reads it; not NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return False
    try:
        return float(value) > bound
    except (ValueError, OverflowError):
        return False


def ragflow_flag(name: str, value: Any, *, text: bool = False) -> bool:
    """A boolean option: a JSON boolean or ``null`` (false); with ``text``, also ``"true"``/``"false"``."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if text and isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise refuse(RetCode.DATA_ERROR, f"`{name}` should be a boolean")


def bounds_of(model: type[LenientBody], field: str) -> tuple[float, float]:
    """The ``ge``/``le`` bounds declared on ``model.field`` (one source for the check and the schema)."""
    low, high = float("-inf"), float("inf")
    for constraint in model.model_fields[field].metadata:
        if isinstance(constraint, Ge):
            low = float(constraint.ge)  # type: ignore[arg-type]
        elif isinstance(constraint, Le):
            high = float(constraint.le)  # type: ignore[arg-type]
    return low, high


def string_list(value: Any, message: str) -> list[str]:
    """A list of strings, repeated entries dropped (order kept); ``null`` is the empty list."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise refuse(RetCode.DATA_ERROR, message)
    return list(dict.fromkeys(value))


#: A question RAGFlow requires: missing, null or blank is refused with its own message.
Question = Annotated[
    str, Field(min_length=1, validate_default=True), BeforeValidator(refuse_blank("`question` is required."))
]


class RetrievalRequest(LenientBody):
    """POST /api/v1/retrieval. Fields are checked in RAGFlow's order; the first problem is answered."""

    model_config = ConfigDict(json_schema_extra={"required": ["question", "dataset_ids"]})

    _LIST_MESSAGES: ClassVar[dict[str, str]] = {
        "dataset_ids": "`dataset_ids` should be a list",
        "document_ids": "`documents` should be a list",
        "cross_languages": "`cross_languages` should be a list of strings",
    }

    dataset_ids: Annotated[list[str], Field(default_factory=list, min_length=1, validate_default=True)]
    question: Question = ""
    document_ids: list[str] = Field(default_factory=list)
    page: Annotated[int, Field(ge=1, le=PAGING_LIMIT)] = 1
    page_size: Annotated[int, Field(ge=1, le=MAX_PAGE_SIZE)] = 30
    similarity_threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.2
    vector_similarity_weight: Annotated[float, Field(ge=0.0, le=1.0)] = 0.3
    top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K)] = 1024
    rerank_id: str | None = None
    keyword: bool = False
    highlight: bool = False
    cross_languages: list[str] = Field(default_factory=list)
    metadata_condition: MetadataConditionField = None
    # use_kg: the knowledge graph's pseudo-chunk first (shared.services.graph_search); toc_enhance is
    # validated only: table-of-contents retrieval is not served.
    use_kg: bool = False
    toc_enhance: bool = False

    @field_validator("dataset_ids", mode="before")
    @classmethod
    def _dataset_ids(cls, value: Any) -> list[str]:
        if not value:
            raise refuse(RetCode.DATA_ERROR, "`dataset_ids` is required.")
        return string_list(value, cls._LIST_MESSAGES["dataset_ids"])

    @field_validator("document_ids", "cross_languages", mode="before")
    @classmethod
    def _lists(cls, value: Any, info: ValidationInfo) -> list[str]:
        return string_list(value, cls._LIST_MESSAGES[str(info.field_name)])

    @field_validator("page", "page_size", "top_k", "similarity_threshold", "vector_similarity_weight", mode="before")
    @classmethod
    def _numbers(cls, value: Any, info: ValidationInfo) -> int | float:
        name = str(info.field_name)
        field = cls.model_fields[name]
        if value is None:
            return field.default  # type: ignore[no-any-return]
        low, high = bounds_of(cls, name)
        if name == "vector_similarity_weight" and _above(value, high):
            # RAGFlow takes a weight above 1 (its keyword weight, 1 - w, then turns negative): clamp it.
            return high
        return ragflow_number(name, value, low, high, integer=field.annotation is int)

    @field_validator("rerank_id", mode="before")
    @classmethod
    def _rerank_id(cls, value: Any) -> str | None:
        if value is not None and not isinstance(value, str):
            raise refuse(RetCode.DATA_ERROR, "`rerank_id` should be a string")
        return value.strip() or None if value is not None else None

    @field_validator("keyword", "highlight", "use_kg", "toc_enhance", mode="before")
    @classmethod
    def _flags(cls, value: Any, info: ValidationInfo) -> bool:
        return ragflow_flag(str(info.field_name), value, text=info.field_name == "highlight")
