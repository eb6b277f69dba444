"""Variable references in a canvas: ``{component_id@output}`` (with an optional ``.key.path`` into a dict
output), ``{sys.query}`` and the other globals, ``{env.name}`` conversation variables.

Templates name values with the braces; parameters that hold a single reference (``query: "sys.query"``,
``items_ref: "Agent:Foo@content"``) may omit them, as RAGFlow's DSL does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

_REF_BODY = r"[A-Za-z0-9:_\-]+@[A-Za-z0-9_.\-]+|(?:sys|env)\.[A-Za-z0-9_.\-]+"
#: A reference inside a template.
REFERENCE = re.compile(r"\{(" + _REF_BODY + r")\}")
_BARE = re.compile(r"^\s*\{?\s*(" + _REF_BODY + r")\s*\}?\s*$")


def references(text: str) -> list[str]:
    """The references a template names, in order, each once."""
    return list(dict.fromkeys(match.group(1) for match in REFERENCE.finditer(text)))


def bare_reference(value: Any) -> str | None:
    """The reference a parameter holds on its own (``"sys.query"``, ``"{begin@name}"``), else None."""
    if not isinstance(value, str):
        return None
    match = _BARE.match(value)
    return match.group(1) if match else None


def split_template(text: str) -> Iterator[tuple[str, bool]]:
    """The template in pieces: ``(literal, False)`` and ``(reference, True)``, in order."""
    last = 0
    for match in REFERENCE.finditer(text):
        if match.start() > last:
            yield text[last : match.start()], False
        yield match.group(1), True
        last = match.end()
    if last < len(text):
        yield text[last:], False


def render(value: Any) -> str:
    """A value as text in a prompt or message: lists one item per line, objects as JSON, None as nothing."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return json.dumps(value)
    if isinstance(value, list):
        return "\n".join(render(item) for item in value)
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def substitute(text: str, value_of: Callable[[str], str]) -> str:
    """``text`` with every reference replaced by ``value_of(reference)``."""
    return REFERENCE.sub(lambda match: value_of(match.group(1)), text)


def dig(value: Any, path: str) -> Any:
    """``value``'s member at a dotted ``path`` (dict keys, list indexes); None where the path leads nowhere."""
    for key in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(key)
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        elif isinstance(value, str):
            try:
                parsed = json.loads(value)
            except ValueError:
                return None
            value = parsed.get(key) if isinstance(parsed, Mapping) else None
        else:
            return None
    return value
