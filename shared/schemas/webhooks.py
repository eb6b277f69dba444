"""Request models of the webhook routes (``/api/v1/flowless/webhooks``): flowless's own API, so strict —
unknown fields are refused rather than ignored."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator

from shared.ports.events import EventType
from shared.schemas.common import PAGING_LIMIT, QueryArgs, StrictBody, unique_uuid1_list

WEBHOOK_URL_MAX = 2048
SECRET_MIN = 16
SECRET_MAX = 256
DeliveryStatus = Literal["pending", "succeeded", "failed"]

Url = Annotated[str, Field(min_length=1, max_length=WEBHOOK_URL_MAX, description="https URL receiving the events")]
Secret = Annotated[
    str,
    Field(
        min_length=SECRET_MIN,
        max_length=SECRET_MAX,
        description="HMAC-SHA256 key of the X-Flowless-Signature header (generated when absent)",
    ),
]
Description = Annotated[str, Field(max_length=1024)]


def _unique_events(value: list[str] | None) -> list[str] | None:
    return None if value is None else list(dict.fromkeys(value))


class CreateWebhookRequest(StrictBody):
    """``POST /api/v1/flowless/webhooks``: where to send which events, for which datasets."""

    url: Url
    #: Event types to send; absent or empty: every type.
    events: list[EventType] | None = None
    #: Only events of these datasets; absent or empty: every dataset of the tenant.
    dataset_ids: list[str] | None = None
    secret: Secret | None = None
    description: Description = ""
    enabled: bool = True

    _events = field_validator("events", mode="after")(_unique_events)

    @field_validator("dataset_ids", mode="after")
    @classmethod
    def _check_dataset_ids(cls, value: list[str] | None) -> list[str] | None:
        return unique_uuid1_list(value)


class UpdateWebhookRequest(StrictBody):
    """``PUT /api/v1/flowless/webhooks/{webhook_id}``: the fields given change; ``secret`` replaces the secret."""

    url: Url | None = None
    events: list[EventType] | None = None
    dataset_ids: list[str] | None = None
    secret: Secret | None = None
    description: Description | None = None
    enabled: bool | None = None

    _events = field_validator("events", mode="after")(_unique_events)

    @field_validator("dataset_ids", mode="after")
    @classmethod
    def _check_dataset_ids(cls, value: list[str] | None) -> list[str] | None:
        return unique_uuid1_list(value)


class ListWebhooksQuery(QueryArgs):
    page: Annotated[int, Field(ge=1, le=PAGING_LIMIT)] = 1
    page_size: Annotated[int, Field(ge=1, le=PAGING_LIMIT)] = 30


class ListDeliveriesQuery(QueryArgs):
    page: Annotated[int, Field(ge=1, le=PAGING_LIMIT)] = 1
    page_size: Annotated[int, Field(ge=1, le=PAGING_LIMIT)] = 30
    status: DeliveryStatus | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value
