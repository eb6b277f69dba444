"""DynamoDB driver of the storage contract: one generic pynamodb model over one table.

The model declares only what DynamoDB must know about: the key (``pk``/``sk``) and the sort/partition
attributes of the three indexes. Every other attribute of an item is stored top level, undeclared, so
numeric attributes can take a native ``ADD`` and conditions can name any attribute. Values are
normalized exactly like the SQLite driver stores them (a JSON round trip), so both drivers accept and
return the same things.

Two DynamoDB facts callers can see:

* numbers are stored as decimals, so a float with an integral value (``1.0``) reads back as ``int`` 1;
* index attributes (``ct_sk``, ``ut_sk``, ``gsi1pk``, ``gsi1sk``) must be strings; ``None`` means
  "not in that index" and the attribute is not stored (it reads back absent).
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Final, Self, TypeVar

from botocore.exceptions import BotoCoreError
from pynamodb.attributes import DESERIALIZE_CLASS_MAP, Attribute, UnicodeAttribute
from pynamodb.connection import Connection
from pynamodb.constants import MAP, PAY_PER_REQUEST_BILLING_MODE
from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.expressions.condition import Condition as PynamoCondition
from pynamodb.expressions.operand import Path, Value
from pynamodb.expressions.update import Action
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, LocalSecondaryIndex
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from shared.ports.metadata import (
    INDEX_ATTRS,
    INDEX_KEYS,
    KEY_ATTRS,
    Check,
    Condition,
    ConditionFailed,
    Delete,
    IndexName,
    Item,
    MetadataStore,
    Put,
    StoreUnavailable,
    Update,
    WriteOp,
)

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

# Codec for the undeclared attributes: pynamodb's raw MapAttribute maps JSON-like values to DynamoDB
# attribute values and back, keeping ints as ints and floats as floats (it encodes numbers as JSON).
_DOCUMENT: Final[Attribute[Any]] = DESERIALIZE_CLASS_MAP[MAP]

# DynamoDB's limit on the items of one TransactWriteItems call.
MAX_TRANSACTION_OPS: Final = 100
# Transactions touching the same item concurrently are cancelled with TransactionConflict; nothing
# was written, so the call is retried a few times before the store reports itself unavailable.
_CONFLICT_ATTEMPTS: Final = 6
_CONFLICT_BACKOFF_SECONDS: Final = 0.02

# Fail fast (as StoreUnavailable) well inside API Gateway's 29 s limit; pynamodb's defaults are 15/30 s.
_CONNECT_TIMEOUT_SECONDS: Final = 3
_READ_TIMEOUT_SECONDS: Final = 10

_CONDITION_FAILED_CODES: Final = frozenset({"ConditionalCheckFailedException", "ConditionalCheckFailed"})
_CONFLICT_CODES: Final = frozenset({"TransactionConflictException", "TransactionConflict"})


# -- the table schema (its single source) ----------------------------------------------------------
class _ByCreateIndex(LocalSecondaryIndex["_ItemModel"]):  # type: ignore[no-untyped-call]
    class Meta:
        index_name = "by_create"
        projection = AllProjection()

    pk = UnicodeAttribute(hash_key=True)
    ct_sk = UnicodeAttribute(range_key=True)


class _ByUpdateIndex(LocalSecondaryIndex["_ItemModel"]):  # type: ignore[no-untyped-call]
    class Meta:
        index_name = "by_update"
        projection = AllProjection()

    pk = UnicodeAttribute(hash_key=True)
    ut_sk = UnicodeAttribute(range_key=True)


class _Gsi1Index(GlobalSecondaryIndex["_ItemModel"]):  # type: ignore[no-untyped-call]
    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class _ItemModel(Model):
    """One generic item. Unbound: ``_bind_model`` derives a subclass naming a table, region and host.

    Attributes the model does not declare travel in ``extra`` and are written top level, next to the
    declared ones (``serialize`` / ``deserialize`` / ``from_raw_data`` carry them).
    """

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    ct_sk = UnicodeAttribute(null=True)
    ut_sk = UnicodeAttribute(null=True)
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)

    by_create = _ByCreateIndex()
    by_update = _ByUpdateIndex()
    gsi1 = _Gsi1Index()

    def __init__(
        self,
        hash_key: Any = None,
        range_key: Any = None,
        _user_instantiated: bool = True,
        **attributes: Any,
    ) -> None:
        super().__init__(hash_key, range_key, _user_instantiated, **attributes)
        self.extra: dict[str, Any] = {}

    def serialize(self, null_check: bool = True) -> dict[str, dict[str, Any]]:
        values = super().serialize(null_check=null_check)
        values.update(_DOCUMENT.serialize(self.extra))
        return values

    def deserialize(self, attribute_values: dict[str, dict[str, Any]]) -> None:
        super().deserialize(attribute_values)
        self.extra = self._undeclared(attribute_values)

    @classmethod
    def from_raw_data(cls, data: dict[str, Any]) -> Self:
        instance = super().from_raw_data(data)
        instance.extra = cls._undeclared(data)
        return instance

    @classmethod
    def _undeclared(cls, attribute_values: dict[str, dict[str, Any]]) -> dict[str, Any]:
        declared = {attribute.attr_name for attribute in cls.get_attributes().values()}
        rest = {name: value for name, value in attribute_values.items() if name not in declared}
        result: dict[str, Any] = _DOCUMENT.deserialize(rest)
        return result


def _check_schema() -> None:
    """Fail at import when the model's indexes drift from the port's INDEX_KEYS."""
    indexes = {"main": ("pk", "sk")}
    for name, index in _ItemModel._indexes.items():
        keys = {attr.attr_name: attr for attr in index.Meta.attributes.values()}
        hash_key = next(n for n, a in keys.items() if a.is_hash_key)
        range_key = next(n for n, a in keys.items() if a.is_range_key)
        indexes[name] = (hash_key, range_key)
    if indexes != INDEX_KEYS:
        raise RuntimeError(f"DynamoDB model indexes {indexes} differ from INDEX_KEYS {INDEX_KEYS}")


_check_schema()

#: The table layout, for infrastructure code that builds the same table (CDK).
TABLE_SCHEMA: Final[dict[str, Any]] = {
    "partition_key": "pk",
    "sort_key": "sk",
    "local_indexes": {"by_create": INDEX_KEYS["by_create"], "by_update": INDEX_KEYS["by_update"]},
    "global_indexes": {"gsi1": INDEX_KEYS["gsi1"]},
    "projection": "ALL",
    "billing_mode": PAY_PER_REQUEST_BILLING_MODE,
}


def _bind_model(table_name: str, region: str, host: str | None) -> type[_ItemModel]:
    """A model class bound to one table; each store gets its own, so several can coexist."""
    table, region_name, endpoint = table_name, region, host

    class BoundItem(_ItemModel):
        class Meta:
            table_name = table
            region = region_name
            host = endpoint
            billing_mode = PAY_PER_REQUEST_BILLING_MODE
            connect_timeout_seconds = _CONNECT_TIMEOUT_SECONDS
            read_timeout_seconds = _READ_TIMEOUT_SECONDS

    BoundItem.__name__ = BoundItem.__qualname__ = f"Item[{table_name}]"
    return BoundItem


# -- values and expressions ------------------------------------------------------------------------
def _normalized(value: Any) -> Any:
    """The value as the SQLite driver would store and read it back (tuples become lists, enums plain).

    NaN and infinities raise ValueError here: DynamoDB numbers cannot hold them.
    """
    return json.loads(json.dumps(value, allow_nan=False))


def _value(value: Any) -> Value:
    """An expression value, serialized here so pynamodb never reinterprets it (None stays NULL)."""
    serialized: dict[str, dict[str, Any]] = _DOCUMENT.serialize({"v": _normalized(value)})
    return Value(serialized["v"])


def _index_value(name: str, value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"index attribute {name!r} must be a string or None, not {type(value).__name__}")


def _to_condition(condition: Condition | None) -> PynamoCondition | None:
    if condition is None:
        return None
    if condition.kind == "exists":
        return Path(["pk"]).exists()
    if condition.kind == "not_exists":
        return Path(["pk"]).does_not_exist()
    path = Path([condition.attr])
    if condition.value is None:
        # The SQLite driver treats a missing attribute as None; so must we (index attributes set to
        # None are not stored at all).
        missing_or_null: PynamoCondition = path.does_not_exist() | (path == _value(None))
        return _both(Path(["pk"]).exists(), missing_or_null)
    return path == _value(condition.value)


def _both(first: PynamoCondition, second: PynamoCondition | None) -> PynamoCondition:
    return first if second is None else first & second


def _holds(condition: Condition | None, current: Item | None) -> bool:
    """Evaluate a condition client side; only for updates that change nothing (no write to carry it)."""
    if condition is None:
        return True
    if condition.kind == "exists":
        return current is not None
    if condition.kind == "not_exists":
        return current is None
    return current is not None and current.get(condition.attr) == condition.value


def _update_actions(op: Update) -> list[Action]:
    """The update as DynamoDB actions, with the SQLite driver's order: set, then add, then remove.

    DynamoDB refuses two actions on one path, so overlaps are resolved here: a removed attribute drops
    its set/add, and set + add on one attribute becomes a single set of the sum.
    """
    removed = set(op.remove)
    to_set = {name: value for name, value in op.set.items() if name not in removed}
    to_add = {name: delta for name, delta in op.add.items() if name not in removed}
    for name in list(to_add):
        if name in to_set:
            to_set[name] = to_set[name] + to_add.pop(name)
    for name in (*to_set, *to_add, *removed):
        if name in KEY_ATTRS:
            raise ValueError(f"the key attribute {name!r} of an item cannot be updated")
    for name in to_add:
        if name in INDEX_ATTRS:
            raise TypeError(f"index attribute {name!r} is a string; it cannot be added to")

    actions: list[Action] = []
    for name, value in to_set.items():
        if name in INDEX_ATTRS and _index_value(name, value) is None:
            actions.append(Path([name]).remove())
        else:
            actions.append(Path([name]).set(_value(value)))
    actions.extend(Path([name]).add(_value(delta)) for name, delta in to_add.items())
    actions.extend(Path([name]).remove() for name in removed)
    return actions


# -- errors ----------------------------------------------------------------------------------------
class _Conflict(Exception):
    """A concurrent transaction held the item; nothing was written and the call may be retried."""


def _cause_error(exc: PynamoDBException, field: str) -> str | None:
    """``Code`` or ``Message`` of the service error behind ``exc``; None when there was no answer (a timeout,
    a connection error: pynamodb's own ``cause_response_code`` fails on those)."""
    response = getattr(exc.cause, "response", None)
    error = response.get("Error") if isinstance(response, dict) else None
    value = error.get(field) if isinstance(error, dict) else None
    return str(value) if value is not None else None


@contextmanager
def _translated_errors() -> Iterator[None]:
    try:
        yield
    except PynamoDBException as exc:
        code = _cause_error(exc, "Code")
        if code in _CONDITION_FAILED_CODES:
            raise ConditionFailed() from exc
        if code in _CONFLICT_CODES:
            raise _Conflict(str(exc)) from exc
        raise StoreUnavailable(f"DynamoDB: {exc.msg} ({code or exc.cause or 'no cause'})") from exc
    except BotoCoreError as exc:
        raise StoreUnavailable(f"DynamoDB: {exc}") from exc


def _transaction_error(exc: TransactWriteError, sent_order: Sequence[int]) -> Exception:
    """ConditionFailed naming the op (in the caller's order) whose condition failed, or why else it failed."""
    # No answer at all (a timeout): no reasons; pynamodb's ``cancellation_reasons`` fails on that cause.
    reasons = getattr(exc.cause, "cancellation_reasons", None) or []
    codes = [reason.code if reason is not None else None for reason in reasons]
    for position, code in enumerate(codes):
        if code in _CONDITION_FAILED_CODES:
            index = sent_order[position] if len(sent_order) == len(codes) else None
            return ConditionFailed(index=index)
    if any(code in _CONFLICT_CODES for code in codes):
        return _Conflict(str(exc))
    detail = _cause_error(exc, "Message") or _cause_error(exc, "Code") or exc.msg
    return StoreUnavailable(f"DynamoDB transaction failed: {detail} {codes or ''}".rstrip())


def _retrying_conflicts(call: Callable[[], _T]) -> _T:
    """Run ``call``, retrying with jittered backoff while DynamoDB reports transaction conflicts."""
    for attempt in range(_CONFLICT_ATTEMPTS):
        try:
            return call()
        except _Conflict as conflict:
            if attempt == _CONFLICT_ATTEMPTS - 1:
                raise StoreUnavailable(f"DynamoDB: transaction conflict persisted: {conflict}") from conflict
            logger.info("DynamoDB transaction conflict, retrying (attempt %d)", attempt + 1)
            time.sleep(random.uniform(0, _CONFLICT_BACKOFF_SECONDS * 2**attempt))
    raise AssertionError("unreachable")


# -- the driver ------------------------------------------------------------------------------------
class DynamoMetadataStore(MetadataStore):
    """The storage contract on one DynamoDB table (see ``TABLE_SCHEMA``), through pynamodb.

    Reads are strongly consistent on the table and its local indexes; ``gsi1`` queries are eventually
    consistent (DynamoDB offers nothing else on a global index).
    """

    def __init__(self, table_name: str, *, region: str, host: str | None = None) -> None:
        self._model = _bind_model(table_name, region, host)
        # pynamodb's transactions take a Connection; built once, like the model's own.
        self._connection = Connection(
            region=region,
            host=host,
            connect_timeout_seconds=_CONNECT_TIMEOUT_SECONDS,
            read_timeout_seconds=_READ_TIMEOUT_SECONDS,
        )
        self.table_name = table_name

    # -- schema ------------------------------------------------------------------------------------
    def create_table(self, wait: bool = True) -> None:
        """Create the table from the model (tests and the local CLI; CDK creates it in production)."""
        with _translated_errors():
            self._model.create_table(wait=wait, billing_mode=PAY_PER_REQUEST_BILLING_MODE)

    # -- conversions -------------------------------------------------------------------------------
    def _to_model(self, item: Item) -> _ItemModel:
        pk, sk = item.get("pk"), item.get("sk")
        if not isinstance(pk, str) or not isinstance(sk, str) or not pk or not sk:
            raise ValueError("an item needs non-empty string 'pk' and 'sk' attributes")
        model = self._model(
            pk,
            sk,
            ct_sk=_index_value("ct_sk", item.get("ct_sk")),
            ut_sk=_index_value("ut_sk", item.get("ut_sk")),
            gsi1pk=_index_value("gsi1pk", item.get("gsi1pk")),
            gsi1sk=_index_value("gsi1sk", item.get("gsi1sk")),
        )
        extra = {name: value for name, value in item.items() if name not in KEY_ATTRS + INDEX_ATTRS}
        model.extra = _normalized(extra)
        return model

    @staticmethod
    def _to_item(model: _ItemModel) -> Item:
        item: Item = {"pk": model.pk, "sk": model.sk}
        for name in INDEX_ATTRS:
            value = getattr(model, name)
            if value is not None:
                item[name] = value
        item.update(model.extra)
        return item

    # -- the contract ------------------------------------------------------------------------------
    def get(self, pk: str, sk: str) -> Item | None:
        with _translated_errors():
            try:
                return self._to_item(self._model.get(pk, sk, consistent_read=True))
            except self._model.DoesNotExist:
                return None

    def batch_get(self, keys: Sequence[tuple[str, str]], attributes: Sequence[str] | None = None) -> list[Item]:
        if not keys:
            return []
        # A projection (ProjectionExpression) always names the key, which the answer is matched by.
        projected = None if attributes is None else list(dict.fromkeys(["pk", "sk", *attributes]))
        with _translated_errors():
            # pynamodb pages the keys (100 per call) and resends unprocessed ones.
            found = {
                (model.pk, model.sk): self._to_item(model)
                for model in self._model.batch_get(
                    list(dict.fromkeys(keys)), consistent_read=True, attributes_to_get=projected
                )
            }
        return [found[key] for key in keys if key in found]

    def put(self, item: Item, condition: Condition | None = None) -> None:
        model = self._to_model(item)

        def write() -> None:
            with _translated_errors():
                model.save(condition=_to_condition(condition))

        _retrying_conflicts(write)

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
        actions = _update_actions(Update(pk, sk, set or {}, add or {}, remove, condition))
        if not actions:
            current = self.get(pk, sk)
            if current is None or not _holds(condition, current):
                raise ConditionFailed()
            return current
        model = self._model(pk, sk)
        # A missing item must fail, not be created by UpdateItem.
        guard = _both(Path(["pk"]).exists(), _to_condition(condition))

        def write() -> Item:
            with _translated_errors():
                model.update(actions=actions, condition=guard)
            return self._to_item(model)

        return _retrying_conflicts(write)

    def delete(self, pk: str, sk: str, condition: Condition | None = None) -> None:
        model = self._model(pk, sk)

        def write() -> None:
            with _translated_errors():
                model.delete(condition=_to_condition(condition))

        _retrying_conflicts(write)

    def _range_condition(self, index: IndexName, sk_prefix: str) -> PynamoCondition | None:
        if not sk_prefix:
            return None
        sort_attr: UnicodeAttribute = getattr(self._model, INDEX_KEYS[index][1])
        return sort_attr.startswith(sk_prefix)

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
        if limit is not None and limit <= 0:
            return []
        # DynamoDB has no offset: read offset + limit items (pynamodb pages them) and drop the first.
        wanted = None if limit is None else offset + limit
        with _translated_errors():
            results = self._model.query(
                pk,
                range_key_condition=self._range_condition(index, sk_prefix),
                consistent_read=index != "gsi1",
                index_name=None if index == "main" else index,
                scan_index_forward=ascending,
                limit=wanted,
            )
            items = [self._to_item(model) for model in results]
        return items[offset:]

    def count(self, pk: str, *, index: IndexName = "main", sk_prefix: str = "") -> int:
        with _translated_errors():
            # Select=COUNT, paginated by pynamodb until the partition is exhausted.
            return self._model.count(
                pk,
                range_key_condition=self._range_condition(index, sk_prefix),
                consistent_read=index != "gsi1",
                index_name=None if index == "main" else index,
            )

    def transact(self, ops: Sequence[WriteOp]) -> None:
        if not ops:
            return
        if len(ops) > MAX_TRANSACTION_OPS:
            raise ValueError(f"a transaction holds at most {MAX_TRANSACTION_OPS} ops, got {len(ops)}")
        keys = [(op.item.get("pk"), op.item.get("sk")) if isinstance(op, Put) else (op.pk, op.sk) for op in ops]
        if len(set(keys)) != len(keys):
            # DynamoDB evaluates every condition against the state before the transaction, and so
            # refuses two ops on one item; say so clearly instead of a ValidationException.
            raise ValueError("a transaction cannot hold two ops on the same item")
        _retrying_conflicts(lambda: self._transact_once(ops))

    def _transact_once(self, ops: Sequence[WriteOp]) -> None:
        token = str(uuid.uuid4())  # makes botocore's own retries of this attempt idempotent
        sent_kind: list[int] = []
        with _translated_errors():
            try:
                with TransactWrite(connection=self._connection, client_request_token=token) as transaction:
                    for op in ops:
                        sent_kind.append(self._add_to(transaction, op))
            except TransactWriteError as exc:
                # pynamodb sends condition checks, then deletes, puts and updates; CancellationReasons
                # follow that order, so map each sent item back to the caller's op (the sort is stable).
                sent_order = sorted(range(len(ops)), key=sent_kind.__getitem__)
                raise _transaction_error(exc, sent_order) from exc

    def _add_to(self, transaction: TransactWrite, op: WriteOp) -> int:
        """Add ``op`` to the transaction; returns the group pynamodb sends it in (0 check … 3 update)."""
        if isinstance(op, Check):
            check = _to_condition(op.condition)
            assert check is not None  # a Check always carries a condition
            transaction.condition_check(self._model, op.pk, op.sk, condition=check)
            return 0
        if isinstance(op, Delete):
            transaction.delete(self._model(op.pk, op.sk), condition=_to_condition(op.condition))
            return 1
        if isinstance(op, Put):
            transaction.save(self._to_model(op.item), condition=_to_condition(op.condition))
            return 2
        guard = _both(Path(["pk"]).exists(), _to_condition(op.condition))
        actions = _update_actions(op)
        if not actions:
            transaction.condition_check(self._model, op.pk, op.sk, condition=guard)
            return 0
        transaction.update(self._model(op.pk, op.sk), actions=actions, condition=guard)
        return 3

    def ping(self) -> None:
        with _translated_errors():
            self._model.describe_table()
