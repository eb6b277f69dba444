"""Reading untrusted JSON before any model sees it: size, depth, string length, Unicode and number limits.

``json.loads`` alone is not safe to hand a hostile client's bytes: it recurses (a body nested 100,000 deep
raises RecursionError), accepts ``NaN``/``Infinity`` (which then overflow integer conversions), decodes
``"\\ud800"`` into a lone surrogate that no encoder can write back (UnicodeEncodeError at the first log line
or storage write), and returns integers of any size (SQLite and DynamoDB refuse them later, mid-write).
``load_json`` refuses all of these up front with a RAGFlow-style 101, so a request is either read whole
and safe, or refused before anything is changed.

Framework-free: the HTTP layer (functions/api) and services that receive JSON inside a string (the
``metadata_condition`` query parameter) read it the same way.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.errors import ArgumentError

MALFORMED_JSON = "Malformed JSON syntax: Missing commas/brackets or invalid encoding"
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class JsonLimits:
    """What a request's JSON may hold. The defaults leave every documented RAGFlow payload room to spare:
    its deepest (an agent DSL) is about a dozen levels; its longest strings are chunk contents and prompts."""

    max_depth: int = 64
    max_string_chars: int = 4 * 1024 * 1024
    max_values: int = 1_000_000


DEFAULT_LIMITS = JsonLimits()


class MalformedJson(ArgumentError):
    """The text is not JSON at all (as opposed to JSON beyond the limits); callers with their own message for
    unparsable JSON (RAGFlow's ``metadata_condition must be valid JSON.``) catch this one."""

    def __init__(self) -> None:
        super().__init__(MALFORMED_JSON)


def _refuse_constant(token: str) -> Any:
    raise ArgumentError(f"Invalid JSON number: {token} (NaN and Infinity are not allowed)")


def _checked_int(text: str) -> int:
    # Python refuses integers above 4,300 digits itself (ValueError); anything beyond 64 bits is refused here,
    # before it can reach a storage driver.
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise ArgumentError(f"Integer out of range: {shown} (integers must fit in 64 bits)")
    return value


def _checked_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 parses to inf
        raise ArgumentError(f"Invalid JSON number: {text[:40]} (out of range)")
    return value


def load_json(raw: bytes | str, limits: JsonLimits = DEFAULT_LIMITS) -> Any:
    """Parse ``raw`` as JSON within ``limits``; ArgumentError (101) with a clear message otherwise."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedJson() from None
    try:
        value = json.loads(raw, parse_constant=_refuse_constant, parse_int=_checked_int, parse_float=_checked_float)
    except RecursionError:
        raise ArgumentError(f"JSON nested too deeply (more than {limits.max_depth} levels)") from None
    except ArgumentError:
        raise
    except ValueError:
        raise MalformedJson() from None
    check_json_value(value, limits)
    return value


def check_json_value(value: Any, limits: JsonLimits = DEFAULT_LIMITS) -> None:
    """Walk a decoded JSON value (without recursion) and refuse what ``load_json`` refuses."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > limits.max_values:
            raise ArgumentError(f"The request holds too many values (more than {limits.max_values})")
        if isinstance(item, str):
            _check_string(item, limits)
        elif isinstance(item, Mapping):
            if depth > limits.max_depth:
                raise ArgumentError(f"JSON nested too deeply (more than {limits.max_depth} levels)")
            for key, child in item.items():
                _check_string(str(key), limits)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth > limits.max_depth:
                raise ArgumentError(f"JSON nested too deeply (more than {limits.max_depth} levels)")
            stack.extend((child, depth + 1) for child in item)


def _check_string(text: str, limits: JsonLimits) -> None:
    if len(text) > limits.max_string_chars:
        raise ArgumentError(f"A string in the request is too long (more than {limits.max_string_chars} characters)")
    match = _SURROGATE.search(text)
    if match is not None:
        raise ArgumentError(
            f"Invalid Unicode in the request: lone surrogate \\u{ord(match.group()):04x} is not a character"
        )


def check_text(text: str, limits: JsonLimits = DEFAULT_LIMITS) -> str:
    """Apply the string rules to one text outside JSON (a query parameter, a form field, a file name)."""
    _check_string(text, limits)
    return text
