"""What the OpenAI-compatible chat and embedding adapters say the same way about the endpoint they call."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar
from urllib.parse import urlsplit

import openai

E = TypeVar("E", bound=Exception)


def endpoint_label(client: openai.OpenAI) -> str:
    """Where the client's models run, for messages: scheme and host only, never credentials or query strings."""
    url = urlsplit(str(client.base_url))
    return f"{url.scheme}://{url.hostname}" + (f":{url.port}" if url.port else "")


def provider_message(exc: openai.APIError) -> str:
    """The provider's own error message, kept short."""
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or exc.message)[:300]


def request_error(
    exc: openai.APIError,
    *,
    noun: str,
    model: str,
    model_id: str,
    where: str,
    timeout_s: float,
    detail: str,
    config: Callable[[str], E],
    service: Callable[[str], E],
    timeout: Callable[[str], E],
    midstream: bool = False,
) -> E | None:
    """The user-facing error for the failures every OpenAI-compatible endpoint reports alike (timeout, no
    connection, key rejected, unknown model, rate limit, HTTP error), made with the port's ``config``, ``service``
    and ``timeout`` errors; None for the others. ``noun`` names the model's kind ("chat model"), ``model`` its
    provider name, ``where`` the endpoint, ``detail`` the provider's message as the adapter passes it on, and
    ``midstream`` says the answer was being streamed when the connection failed. The API key never appears."""
    if isinstance(exc, openai.APITimeoutError):
        return timeout(f"The {noun} {model_id} timed out after {timeout_s:g}s.")
    if isinstance(exc, openai.APIConnectionError):
        if midstream:
            return service(f"The connection to {where} broke off in the middle of the answer of {model_id}.")
        return service(f"Could not connect to {where} for model {model_id}.")
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        # OpenAI's own message echoes part of the key, so it is not passed on.
        return config(f"The API key was rejected by {where} for model {model_id}.")
    if isinstance(exc, openai.NotFoundError):
        return config(f"The {noun} {model} was not found at {where}.")
    if isinstance(exc, openai.RateLimitError):
        return service(f"The {noun} {model_id} is rate limited; try again later.")
    if isinstance(exc, openai.APIStatusError):
        return service(f"The {noun} {model_id} failed (HTTP {exc.status_code}): {detail}")
    return None
