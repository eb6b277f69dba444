"""What the OpenAI-compatible chat and embedding adapters say the same way about the endpoint they call."""

from __future__ import annotations

from urllib.parse import urlsplit

import openai


def endpoint_label(client: openai.OpenAI) -> str:
    """Where the client's models run, for messages: scheme and host only, never credentials or query strings."""
    url = urlsplit(str(client.base_url))
    return f"{url.scheme}://{url.hostname}" + (f":{url.port}" if url.port else "")


def provider_message(exc: openai.APIError) -> str:
    """The provider's own error message, kept short."""
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or exc.message)[:300]
