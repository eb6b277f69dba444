"""Token counting with tiktoken's ``cl100k_base``, offline.

RAGFlow counts tokens with tiktoken's ``cl100k_base`` (chunk token budgets, ``token_count`` fields, prompt
fitting). Stock tiktoken downloads its encoding files on first use; Lambda and the build machine have no
route to the blob store, so the file ships in ``shared/rag/data/tiktoken`` under the name tiktoken's cache
uses (sha1 of the download URL) and tiktoken is pointed at that folder.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import tiktoken

ENCODING_NAME = "cl100k_base"
ENCODING_DIR = Path(__file__).resolve().parent / "data" / "tiktoken"
# sha1("https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"): tiktoken's cache key.
_ENCODING_FILE = "9b5ad71b2ce5302211f9c61530b329a4922fc6a4"
_CACHE_ENV = "TIKTOKEN_CACHE_DIR"

_load_lock = threading.Lock()


class TokenizerUnavailable(RuntimeError):
    """The shipped encoding file is missing; tiktoken would otherwise try to download it."""


@lru_cache(maxsize=1)
def get_encoding() -> tiktoken.Encoding:
    """The ``cl100k_base`` encoding, loaded once from the file shipped with the project.

    ``TIKTOKEN_CACHE_DIR`` is set to our folder for the duration of the load, whatever the user set: tiktoken
    reads that variable on every load, and a cache dir of the user's (or tiktoken's default under /tmp) does
    not hold the file, so tiktoken would fall back to a download, which fails on Lambda after a network
    timeout. The previous value is restored afterwards so other users of tiktoken in the process keep their
    own cache; tiktoken's registry keeps the loaded encoding, so a later ``tiktoken.get_encoding("cl100k_base")``
    anywhere in the process is offline too.
    """
    if not (ENCODING_DIR / _ENCODING_FILE).is_file():
        raise TokenizerUnavailable(
            f"tiktoken encoding file {ENCODING_DIR / _ENCODING_FILE} is missing from the package; "
            "it must ship with the code (see shared/rag/data/tiktoken/README.md)"
        )
    with _load_lock:  # the env var is process-global: don't let two threads interleave the swap
        previous = os.environ.get(_CACHE_ENV)
        os.environ[_CACHE_ENV] = str(ENCODING_DIR)
        try:
            return tiktoken.get_encoding(ENCODING_NAME)
        finally:
            if previous is None:
                del os.environ[_CACHE_ENV]
            else:
                os.environ[_CACHE_ENV] = previous


def encode(text: str) -> list[int]:
    """Token ids of ``text``; special-token markup such as ``<|endoftext|>`` is treated as plain text."""
    return get_encoding().encode_ordinary(text)


def decode(tokens: Sequence[int]) -> str:
    """Text of ``tokens`` (invalid UTF-8 at a cut is replaced with U+FFFD)."""
    return get_encoding().decode(list(tokens))


def count_tokens(text: str) -> int:
    """Number of ``cl100k_base`` tokens in ``text``."""
    if not text:
        return 0
    return len(encode(text))


def truncate(text: str, max_tokens: int) -> str:
    """The longest prefix of ``text`` that fits in ``max_tokens`` tokens.

    A cut inside a multi-byte character drops the incomplete character rather than leaving U+FFFD.
    """
    if max_tokens <= 0 or not text:
        return ""
    tokens = encode(text)
    if len(tokens) <= max_tokens:
        return text
    return get_encoding().decode_bytes(tokens[:max_tokens]).decode("utf-8", errors="ignore")
