"""Offline token counting: the shipped cl100k_base file, no network, no home directory."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_socket
import tiktoken.registry

from shared.rag import tokens

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Sockets off, an empty HOME/TMPDIR, a user cache dir that doesn't hold the file, nothing pre-loaded."""
    home = tmp_path / "home"
    home.mkdir()
    user_cache = tmp_path / "user-cache"
    user_cache.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(user_cache))
    monkeypatch.delitem(tiktoken.registry.ENCODINGS, tokens.ENCODING_NAME, raising=False)
    tokens.get_encoding.cache_clear()
    pytest_socket.disable_socket()
    try:
        yield user_cache
    finally:
        pytest_socket.enable_socket()
        tokens.get_encoding.cache_clear()


def test_loads_offline_and_leaves_user_cache_alone(offline: Path) -> None:
    assert tokens.count_tokens("hello world") == 2
    assert os.environ["TIKTOKEN_CACHE_DIR"] == str(offline)  # restored after the load
    assert list(offline.iterdir()) == []  # nothing downloaded or written into the user's cache


def test_fresh_process_without_network_or_home(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import pytest_socket
        pytest_socket.disable_socket()
        from shared.rag.tokens import count_tokens
        print(count_tokens("hello world"))
        """
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "PYTHONPATH": str(REPO_ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("hello world", [15339, 1917]),
        ("tiktoken is great!", [83, 1609, 5963, 374, 2294, 0]),
        ("你好\uff0c世界", [57668, 53901, 3922, 3574, 244, 98220]),
    ],
)
def test_known_token_ids(text: str, expected: list[int]) -> None:
    assert tokens.encode(text) == expected
    assert tokens.count_tokens(text) == len(expected)
    assert tokens.decode(expected) == text


def test_special_token_markup_is_plain_text() -> None:
    assert tokens.count_tokens("<|endoftext|>") == 7


def test_truncate() -> None:
    text = "The quick brown fox jumps over the lazy dog."
    assert tokens.truncate(text, 100) == text
    assert tokens.truncate(text, 3) == "The quick brown"
    assert tokens.truncate(text, 0) == ""
    assert tokens.count_tokens(tokens.truncate(text, 5)) <= 5


def test_truncate_never_splits_a_character() -> None:
    # "世" is two tokens in cl100k_base: cutting after the first must drop it, not emit U+FFFD.
    assert tokens.truncate("你好\uff0c世界", 4) == "你好\uff0c"
    assert tokens.truncate("你好\uff0c世界", 5) == "你好\uff0c世"
