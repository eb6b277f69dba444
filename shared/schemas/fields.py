"""Field types that several request models read the same way, said once as annotated types."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BeforeValidator

from shared.errors import RetCode
from shared.schemas.common import refuse


def _empty_is_none(value: Any) -> Any:
    return None if value == "" else value


#: An optional text where RAGFlow reads an empty value as no value (a filter, an id): "" becomes None.
EmptyIsNone = Annotated[str | None, BeforeValidator(_empty_is_none)]


def refuse_blank(message: str) -> Callable[[Any], Any]:
    """A before-validator refusing a missing, null or blank text with RAGFlow's ``message`` (code 102)."""

    def check(value: Any) -> Any:
        if value is None or (isinstance(value, str) and not value.strip()):
            raise refuse(RetCode.DATA_ERROR, message)
        return value

    return check
