"""E-mail .eml (stdlib email): a header section, then the body text; attachments are listed, not parsed."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage, Message
from typing import Any

from shared.rag.types import ExtractedDocument, Section

from ._common import finish, paragraphs
from .html import html_to_text
from .txt import decode_text

_HEADERS = (("from", "From"), ("to", "To"), ("cc", "Cc"), ("subject", "Subject"), ("date", "Date"))


def _part_text(part: Message, filename: str) -> str:
    """Text of a text/* part, surviving unknown or lying charsets."""
    try:
        content = part.get_content() if isinstance(part, EmailMessage) else None
        if isinstance(content, str):
            return content
    except (LookupError, UnicodeError, ValueError, AssertionError):
        pass
    payload = part.get_payload(decode=True)
    return decode_text(payload, filename) if isinstance(payload, bytes) else ""


def _header(message: EmailMessage, name: str) -> str:
    try:
        value: object = message.get(name)
    except (ValueError, IndexError, TypeError):  # a header too malformed to parse: fall back to its raw text
        value = next((raw for key, raw in message.raw_items() if key.lower() == name.lower()), None)
    return " ".join(str(value).split()) if value else ""


def parse(filename: str, data: bytes) -> ExtractedDocument:
    message = message_from_bytes(data, policy=policy.default)
    assert isinstance(message, EmailMessage)  # policy.default builds EmailMessage objects
    headers = {key: value for key, name in _HEADERS if (value := _header(message, name))}
    sections: list[Section] = []
    if headers:
        text = "\n".join(f"{name}: {headers[key]}" for key, name in _HEADERS if key in headers)
        sections.append(Section(text=text, kind="email_header", meta=dict(headers)))

    body = message.get_body(preferencelist=("plain", "html"))
    if body is not None:
        text = _part_text(body, filename)
        if body.get_content_subtype() == "html":
            text = html_to_text(text)
        sections.extend(paragraphs(text))

    attachments: list[dict[str, Any]] = []
    for part in message.iter_attachments():
        payload = part.get_payload(decode=True)
        attachments.append(
            {
                "filename": part.get_filename() or "",
                "content_type": part.get_content_type(),
                "size": len(payload) if isinstance(payload, bytes) else 0,
            }
        )
    if sections and sections[0].kind == "email_header":
        sections[0].meta["attachments"] = [item["filename"] for item in attachments]
    return finish(filename, sections, meta={**headers, "attachments": attachments})
