"""``parser_config`` as the chunkers read it: token budget, delimiters, spreadsheet rendering, language."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .errors import InvalidParserConfig

DEFAULT_CHUNK_TOKEN_NUM = 512
# RAGFlow stores the default as the two characters backslash-n; both spellings mean a newline.
DEFAULT_DELIMITER = "\\n"

DescribeImage = Callable[[bytes], str]

_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|x[0-9a-fA-F]{2}|[ntrfv0\\])")
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v", "0": "\0", "\\": "\\"}
_BACKTICKED = re.compile(r"`([^`]+)`")


def decode_escapes(raw: str) -> str:
    """Interpret the escape sequences RAGFlow's UI stores literally (``\\n``, ``\\t``, ``\\u3002`` ...).

    Unknown sequences are kept as typed, so a lone backslash stays a backslash delimiter.
    """

    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        if code[0] in "ux":
            return chr(int(code[1:], 16))
        return _SIMPLE_ESCAPES[code]

    return _ESCAPE.sub(replace, raw)


@dataclass(frozen=True)
class Delimiters:
    """How RAGFlow reads the ``delimiter`` string.

    Every character outside backticks is a delimiter on its own ("\\n!?;。" = five delimiters); text inside
    backticks is one multi-character delimiter (`` `##` ``). Single characters end a piece and stay at its
    end; backticked delimiters are explicit cut marks: they are dropped, and no chunk spans one.
    """

    singles: str
    custom: tuple[str, ...]

    @classmethod
    def parse(cls, raw: str) -> Delimiters:
        text = decode_escapes(raw)
        custom = tuple(sorted({m.group(1) for m in _BACKTICKED.finditer(text)}, key=lambda d: (-len(d), d)))
        outside = _BACKTICKED.sub("", text)
        singles = "".join(dict.fromkeys(outside))  # de-duplicated, order kept
        return cls(singles=singles, custom=custom)

    def segments(self, text: str) -> list[str]:
        """``text`` cut at the backticked delimiters (which are dropped); one segment when there are none."""
        if not self.custom:
            return [text]
        return _custom_pattern(self.custom).split(text)

    def pieces(self, segment: str) -> list[str]:
        """``segment`` cut after each run of single-character delimiters; joining the pieces gives it back."""
        if not self.singles:
            return [segment] if segment else []
        return _single_pattern(self.singles).findall(segment)


@lru_cache(maxsize=64)
def _custom_pattern(custom: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(d) for d in custom))


@lru_cache(maxsize=64)
def _single_pattern(singles: str) -> re.Pattern[str]:
    cls = "".join(re.escape(ch) for ch in singles)
    # A piece is non-delimiter text plus the delimiters that end it; a leading delimiter run stands alone.
    return re.compile(f"[^{cls}]+[{cls}]*|[{cls}]+")


@dataclass(frozen=True)
class ChunkOptions:
    """Everything a chunk method reads, parsed once from ``parser_config`` and the call's extras."""

    chunk_token_num: int = DEFAULT_CHUNK_TOKEN_NUM
    delimiters: Delimiters = Delimiters(singles="\n", custom=())
    html4excel: bool = False
    language: str = "English"
    describe_image: DescribeImage | None = None

    @property
    def english(self) -> bool:
        # RAGFlow switches its fixed labels (English or Chinese) on the dataset language.
        return self.language.strip().lower() != "chinese"


def parse_options(
    parser_config: Mapping[str, Any],
    *,
    language: str = "English",
    describe_image: DescribeImage | None = None,
) -> ChunkOptions:
    """Read the fields the chunkers use; everything else in ``parser_config`` is left to other steps."""
    delimiter = parser_config.get("delimiter")
    if delimiter is None:
        delimiter = DEFAULT_DELIMITER
    if not isinstance(delimiter, str):
        raise InvalidParserConfig("parser_config.delimiter must be a string")
    return ChunkOptions(
        chunk_token_num=_positive_int(parser_config, "chunk_token_num", DEFAULT_CHUNK_TOKEN_NUM),
        delimiters=Delimiters.parse(delimiter),
        html4excel=bool(parser_config.get("html4excel", False)),
        language=language or "English",
        describe_image=describe_image,
    )


def _positive_int(config: Mapping[str, Any], key: str, default: int) -> int:
    value = config.get(key)
    if value is None:
        return default
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    if number is None or number < 1:
        raise InvalidParserConfig(f"parser_config.{key} must be a positive integer")
    return number


def wants_llm_enrichment(parser_config: Mapping[str, Any]) -> bool:
    """True when ``auto_keywords`` or ``auto_questions`` ask a chat model to enrich each chunk.

    The chunkers never call models for this; the ingestion pipeline does, after chunking.
    """
    return _count(parser_config.get("auto_keywords")) > 0 or _count(parser_config.get("auto_questions")) > 0


def _count(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
