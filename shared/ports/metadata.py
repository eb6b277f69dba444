"""The storage contract: a single-table, DynamoDB-shaped key-value store.

Items are JSON-like dicts holding a partition key ``pk`` and a sort key ``sk``. Two local secondary
indexes order an item collection by creation (``ct_sk``) and by update (``ut_sk``); one global index
(``gsi1pk``/``gsi1sk``) finds items by an alternate key. Writes may carry a condition; ``transact``
applies several writes all-or-nothing. Entity repositories are written once above this port.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Item = dict[str, Any]
IndexName = Literal["main", "by_create", "by_update", "gsi1"]

KEY_ATTRS = ("pk", "sk")
INDEX_ATTRS = ("ct_sk", "ut_sk", "gsi1pk", "gsi1sk")
#: (partition attribute, sort attribute) of each index.
INDEX_KEYS: dict[str, tuple[str, str]] = {
    "main": ("pk", "sk"),
    "by_create": ("pk", "ct_sk"),
    "by_update": ("pk", "ut_sk"),
    "gsi1": ("gsi1pk", "gsi1sk"),
}


class ConditionFailed(Exception):
    """A write's condition did not hold; nothing was written. ``index`` names the failing op of a transaction."""

    def __init__(self, message: str = "condition failed", *, index: int | None = None) -> None:
        super().__init__(message)
        self.index = index


class StoreUnavailable(Exception):
    """The backend could not be reached or answered with an error."""


@dataclass(frozen=True)
class Condition:
    """``exists`` / ``not_exists``: the item is there or not. ``equals``: attribute ``attr`` equals ``value``."""

    kind: Literal["exists", "not_exists", "equals"]
    attr: str = "pk"
    value: Any = None


ITEM_EXISTS = Condition("exists")
ITEM_NOT_EXISTS = Condition("not_exists")


@dataclass(frozen=True)
class Put:
    item: Item
    condition: Condition | None = None


@dataclass(frozen=True)
class Update:
    """Set attributes, add to numeric attributes, remove attributes. The item must exist."""

    pk: str
    sk: str
    set: Mapping[str, Any] = field(default_factory=dict)
    add: Mapping[str, int | float] = field(default_factory=dict)
    remove: Sequence[str] = ()
    condition: Condition | None = None


@dataclass(frozen=True)
class Delete:
    pk: str
    sk: str
    condition: Condition | None = None


@dataclass(frozen=True)
class Check:
    pk: str
    sk: str
    condition: Condition


WriteOp = Put | Update | Delete | Check


class MetadataStore(ABC):
    """The port every metadata driver implements (SQLite locally, DynamoDB on AWS)."""

    @abstractmethod
    def get(self, pk: str, sk: str) -> Item | None:
        """The item with this key, read consistently, or None."""

    @abstractmethod
    def batch_get(self, keys: Sequence[tuple[str, str]], attributes: Sequence[str] | None = None) -> list[Item]:
        """The items that exist among ``keys``, in the order of ``keys``.

        ``attributes`` projects: each item then holds its key (``pk``, ``sk``) and only those of the named
        top-level attributes it has, so a driver reads and decodes no more (e.g. document names for ~1,000
        documents without their whole records)."""

    @abstractmethod
    def put(self, item: Item, condition: Condition | None = None) -> None:
        """Write (replace) an item. Raises ConditionFailed when ``condition`` does not hold."""

    @abstractmethod
    def update(
        self,
        pk: str,
        sk: str,
        *,
        set: Mapping[str, Any] | None = None,
        add: Mapping[str, int | float] | None = None,
        remove: Sequence[str] = (),
        condition: Condition | None = None,
    ) -> Item:
        """Change an existing item and return it as it now is. A missing item fails the condition."""

    @abstractmethod
    def delete(self, pk: str, sk: str, condition: Condition | None = None) -> None:
        """Remove an item (no error when it is already gone, unless ``condition`` says so)."""

    @abstractmethod
    def query(
        self,
        pk: str,
        *,
        index: IndexName = "main",
        sk_prefix: str = "",
        ascending: bool = True,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[Item]:
        """Items of one partition of ``index`` whose sort key starts with ``sk_prefix``, in sort-key order."""

    @abstractmethod
    def count(self, pk: str, *, index: IndexName = "main", sk_prefix: str = "") -> int:
        """How many items ``query`` would return without limit."""

    @abstractmethod
    def transact(self, ops: Sequence[WriteOp]) -> None:
        """Apply all ops or none. Raises ConditionFailed (with ``index``) when a condition fails.

        As in DynamoDB, one transaction may not touch the same item twice (ValueError).
        """

    @abstractmethod
    def ping(self) -> None:
        """Raise StoreUnavailable when the backend cannot serve requests."""
