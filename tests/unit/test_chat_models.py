"""Chat models without a network: the factory's branches, Bedrock's request/event mapping, error mapping."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import httpx2
import openai
import pytest
import urllib3.exceptions
from botocore.exceptions import EventStreamError, NoCredentialsError
from botocore.stub import Stubber

import shared.rag.chat_models as chat_models
from shared.adapters.aws.bedrock_chat import BedrockChatModel
from shared.adapters.openai_chat import OpenAIChatModel
from shared.catalog import ModelCatalog
from shared.ports.chat_model import (
    ChatDelta,
    ChatMessage,
    ChatModelConfigError,
    ChatModelError,
    ChatModelServiceError,
    ChatModelTimeout,
    ChatOptions,
    ChatUsage,
)
from shared.rag.chat_models import build_chat_model, chat_model_for_tenant, clear_chat_model_cache
from shared.rag.tokens import count_tokens
from shared.repos.tenants import Tenant, TenantModel

CLAUDE = "anthropic.claude-3-5-haiku-20241022-v1:0"
CONVERSATION = [
    ChatMessage("system", "Answer from the knowledge base."),
    ChatMessage("assistant", "Hi! I'm your assistant."),  # a chat's greeting comes before any user turn
    ChatMessage("user", "What is RAG?"),
    ChatMessage("assistant", "Retrieval-augmented generation."),
    ChatMessage("user", "And why?"),
    ChatMessage("user", "Be brief."),
    ChatMessage("system", "Cite sources."),
]


@pytest.fixture
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    # Credentials from the environment, so building a Bedrock client never asks the instance metadata service.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    clear_chat_model_cache()
    yield
    clear_chat_model_cache()


def tenant(llm_id: str | None, *models: TenantModel) -> Tenant:
    return Tenant(id="t1", name="tenant", create_time=0, llm_id=llm_id, models=list(models))


# -- the factory -------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("fresh_cache")
def test_factory_builds_openai_models_once_per_endpoint_and_key() -> None:
    model = build_chat_model("gpt-4o-mini@OpenAI", api_key="sk-a")

    assert isinstance(model, OpenAIChatModel)
    assert model.model == "gpt-4o-mini"
    assert model.model_id == "gpt-4o-mini@OpenAI"
    assert build_chat_model("gpt-4o-mini@OpenAI", api_key="sk-a") is model
    assert build_chat_model("gpt-4o-mini@OpenAI", api_key="sk-b") is not model
    assert build_chat_model("gpt-4o-mini@OpenAI", api_base="http://127.0.0.1:1/v1", api_key="sk-a") is not model


@pytest.mark.usefixtures("fresh_cache")
def test_models_of_one_endpoint_and_key_share_a_client() -> None:
    small = build_chat_model("gpt-4o-mini@OpenAI", api_key="sk-a")
    large = build_chat_model("gpt-4o@OpenAI", api_key="sk-a")
    other_key = build_chat_model("gpt-4o@OpenAI", api_key="sk-b")

    assert isinstance(small, OpenAIChatModel) and isinstance(large, OpenAIChatModel)
    assert isinstance(other_key, OpenAIChatModel)
    assert small._client is large._client
    assert other_key._client is not large._client
    timeout = large._client.timeout
    assert isinstance(timeout, openai.Timeout)
    assert (timeout.connect, timeout.read) == (10.0, 60.0)
    assert large._client.max_retries == 2


@pytest.mark.usefixtures("fresh_cache")
def test_factory_reads_the_standard_openai_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")

    model = build_chat_model("gpt-4.1@OpenAI")

    assert isinstance(model, OpenAIChatModel)
    assert str(model._client.base_url) == "http://127.0.0.1:9/v1/"
    assert model._client.api_key == "sk-env"


@pytest.mark.usefixtures("fresh_cache")
def test_factory_openai_without_a_key_is_a_config_error() -> None:
    with pytest.raises(ChatModelConfigError, match="No API key is configured for the chat model gpt-4o@OpenAI"):
        build_chat_model("gpt-4o@OpenAI")


@pytest.mark.usefixtures("fresh_cache")
def test_factory_openai_compatible_takes_any_model_name_and_needs_no_key_with_an_endpoint() -> None:
    model = build_chat_model("qwen2.5:7b-instruct@OpenAI-API-Compatible", api_base="http://127.0.0.1:9/v1")

    assert isinstance(model, OpenAIChatModel)
    assert model.model == "qwen2.5:7b-instruct"
    assert model.model_id == "qwen2.5:7b-instruct@OpenAI-API-Compatible"


@pytest.mark.usefixtures("fresh_cache")
def test_factory_builds_bedrock_models_sharing_one_client() -> None:
    claude = build_chat_model(f"{CLAUDE}@Bedrock")
    nova = build_chat_model("amazon.nova-lite-v1:0@Bedrock")

    assert isinstance(claude, BedrockChatModel) and isinstance(nova, BedrockChatModel)
    assert claude.model == CLAUDE
    assert claude.model_id == f"{CLAUDE}@Bedrock"
    assert claude._client is nova._client
    assert claude._client.meta.service_model.service_name == "bedrock-runtime"


@pytest.mark.usefixtures("fresh_cache")
@pytest.mark.parametrize(
    "model_id",
    ["no-such-model@OpenAI", "text-embedding-3-small@OpenAI", "gpt-4o", "all-MiniLM-L6-v2@Builtin", "x@Nowhere"],
)
def test_factory_unknown_chat_model(model_id: str) -> None:
    with pytest.raises(ChatModelConfigError, match=f"Unknown chat model: {model_id}"):
        build_chat_model(model_id, api_key="sk-a")


@pytest.mark.usefixtures("fresh_cache")
def test_factory_other_providers_and_image2text_models(monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = ModelCatalog(
        {
            "factories": [
                {"name": "Google Cloud", "models": [{"name": "gemini-pro", "type": "chat"}]},
                {"name": "OpenAI", "models": [{"name": "gpt-4-vision", "type": "image2text"}]},
            ]
        }
    )
    monkeypatch.setattr(chat_models, "get_catalog", lambda: catalog)

    with pytest.raises(ChatModelConfigError, match=r"^No provider for Google Cloud in this deployment$"):
        build_chat_model("gemini-pro@Google Cloud", api_key="sk-a")
    assert isinstance(build_chat_model("gpt-4-vision@OpenAI", api_key="sk-a"), OpenAIChatModel)


@pytest.mark.usefixtures("fresh_cache")
def test_tenant_without_a_chat_model() -> None:
    with pytest.raises(ChatModelConfigError, match=r"^No chat model is configured for this tenant$"):
        chat_model_for_tenant(tenant(None))


@pytest.mark.usefixtures("fresh_cache")
def test_tenant_default_chat_model_with_its_settings() -> None:
    owner = tenant(
        "gpt-4o@OpenAI",
        TenantModel("OpenAI", "text-embedding-3-small", "embedding", api_key="sk-embed"),
        TenantModel("OpenAI", "gpt-4o", "image2text", api_key="sk-vision"),
        TenantModel("OpenAI", "gpt-4o", "chat", api_base="http://127.0.0.1:9/v1", api_key="sk-chat"),
    )

    model = chat_model_for_tenant(owner)

    assert model is build_chat_model("gpt-4o@OpenAI", api_base="http://127.0.0.1:9/v1", api_key="sk-chat")


@pytest.mark.usefixtures("fresh_cache")
def test_tenant_picks_another_model_and_falls_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    owner = tenant("gpt-4o@OpenAI", TenantModel("OpenAI", "gpt-4o-mini", "image2text", api_key="sk-vision"))

    assert chat_model_for_tenant(owner, "gpt-4o-mini@OpenAI") is build_chat_model(
        "gpt-4o-mini@OpenAI", api_key="sk-vision"
    )
    with pytest.raises(ChatModelConfigError, match="No API key"):
        chat_model_for_tenant(owner)  # gpt-4o has no settings and OPENAI_API_KEY is unset
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    assert chat_model_for_tenant(owner) is build_chat_model("gpt-4o@OpenAI")


# -- OpenAI error mapping (the HTTP paths are exercised for real in tests/integration/test_openai_chat.py) ---


def test_openai_model_needs_a_key() -> None:
    with pytest.raises(ChatModelConfigError, match="No API key"):
        OpenAIChatModel("gpt-4o", api_key="")


def test_openai_errors_never_echo_the_key() -> None:
    secret = "sk-live-0123456789abcdef"
    model = OpenAIChatModel("gpt-4o", api_key=secret, base_url="http://user:pw@127.0.0.1:9/v1?token=x")
    request = httpx2.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    response = httpx2.Response(500, request=request)
    body = {"message": f"upstream refused key {secret}"}

    error = model._error(openai.InternalServerError("boom", response=response, body=body), midstream=False)

    assert isinstance(error, ChatModelServiceError)
    assert error.message == "The chat model gpt-4o@OpenAI failed (HTTP 500): upstream refused key ***"
    auth = model._error(
        openai.AuthenticationError(
            f"Incorrect API key {secret}", response=httpx2.Response(401, request=request), body={}
        ),
        midstream=False,
    )
    assert isinstance(auth, ChatModelConfigError)
    assert auth.message == "The API key was rejected by the chat service at http://127.0.0.1:9 for model gpt-4o@OpenAI."


# -- Bedrock converse (botocore Stubber: real request/response validation, no network) ----------------------


@pytest.fixture
def bedrock() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


EXPECTED_REQUEST: dict[str, Any] = {
    "modelId": CLAUDE,
    "system": [{"text": "Answer from the knowledge base."}, {"text": "Cite sources."}],
    "messages": [
        {"role": "user", "content": [{"text": "What is RAG?"}]},
        {"role": "assistant", "content": [{"text": "Retrieval-augmented generation."}]},
        {"role": "user", "content": [{"text": "And why?\n\nBe brief."}]},
    ],
    "inferenceConfig": {"temperature": 0.2, "topP": 0.9, "maxTokens": 256},
}
OPTIONS = ChatOptions(temperature=0.2, top_p=0.9, presence_penalty=0.5, frequency_penalty=0.5, max_tokens=256)


def _converse_answer(*texts: str, usage: tuple[int, int] = (40, 7)) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text} for text in texts]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": usage[0], "outputTokens": usage[1], "totalTokens": sum(usage)},
        "metrics": {"latencyMs": 120},
    }


def test_bedrock_converse_maps_the_conversation_and_the_answer(bedrock: tuple[Any, Stubber]) -> None:
    client, stubber = bedrock
    stubber.add_response("converse", _converse_answer("Because ", "it grounds answers."), EXPECTED_REQUEST)

    result = BedrockChatModel(CLAUDE, client=client).complete(CONVERSATION, OPTIONS)

    assert result.text == "Because it grounds answers."
    assert result.usage == ChatUsage(40, 7, 47)


def test_bedrock_converse_without_options_or_system(bedrock: tuple[Any, Stubber]) -> None:
    client, stubber = bedrock
    expected = {"modelId": CLAUDE, "messages": [{"role": "user", "content": [{"text": "hi"}]}]}
    stubber.add_response("converse", _converse_answer("hello"), expected)

    assert BedrockChatModel(CLAUDE, client=client).complete([ChatMessage("user", "hi")]).text == "hello"


@pytest.mark.parametrize(
    ("code", "status", "error", "message"),
    [
        ("ThrottlingException", 429, ChatModelServiceError, "is throttled; try again later"),
        ("ServiceUnavailableException", 503, ChatModelServiceError, r"is unavailable \(ServiceUnavailableException\)"),
        ("AccessDeniedException", 403, ChatModelConfigError, r"refused the request \(AccessDeniedException\): nope"),
        ("ResourceNotFoundException", 404, ChatModelConfigError, "refused the request"),
        ("ValidationException", 400, ChatModelServiceError, r"failed \(ValidationException\): nope"),
        ("ModelTimeoutException", 408, ChatModelTimeout, "timed out: nope"),
        ("InternalServerException", 500, ChatModelServiceError, r"failed \(InternalServerException\): nope"),
    ],
)
def test_bedrock_converse_errors(
    bedrock: tuple[Any, Stubber], code: str, status: int, error: type[ChatModelError], message: str
) -> None:
    client, stubber = bedrock
    stubber.add_client_error("converse", service_error_code=code, service_message="nope", http_status_code=status)

    with pytest.raises(error, match=message) as caught:
        BedrockChatModel(CLAUDE, client=client).complete([ChatMessage("user", "hi")])
    assert type(caught.value) is error


def test_bedrock_unreadable_answer() -> None:
    # botocore validates stubbed answers, so a malformed one needs a hand-made client.
    class Garbled:
        def converse(self, **request: Any) -> dict[str, Any]:
            return {"output": {}, "usage": {}}

    with pytest.raises(ChatModelServiceError, match="unreadable answer"):
        BedrockChatModel(CLAUDE, client=Garbled()).complete([ChatMessage("user", "hi")])


def test_bedrock_needs_a_user_turn() -> None:
    with pytest.raises(ChatModelError, match="no user message"):
        BedrockChatModel(CLAUDE, client=None).complete([ChatMessage("system", "s"), ChatMessage("assistant", "hi")])


# -- Bedrock converse_stream (a small fake client: botocore's event stream can't be stubbed) --------------------


class FakeEventStream:
    """Yields events (dicts) or raises the exceptions placed among them; remembers being closed."""

    def __init__(self, events: list[Any]) -> None:
        self._events = events
        self.closed = False
        self.consumed = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for event in self._events:
            if self.closed:
                return
            self.consumed += 1
            if isinstance(event, BaseException):
                raise event
            yield event

    def close(self) -> None:
        self.closed = True


class FakeBedrock:
    def __init__(self, *events: Any, error: BaseException | None = None) -> None:
        self.stream = FakeEventStream(list(events))
        self.error = error
        self.requests: list[dict[str, Any]] = []

    def converse_stream(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        return {"stream": self.stream}


def _delta(text: str) -> dict[str, Any]:
    return {"contentBlockDelta": {"delta": {"text": text}, "contentBlockIndex": 0}}


START = {"messageStart": {"role": "assistant"}}
STOP = {"messageStop": {"stopReason": "end_turn"}}


def _metadata(prompt: int, completion: int) -> dict[str, Any]:
    usage = {"inputTokens": prompt, "outputTokens": completion, "totalTokens": prompt + completion}
    return {"metadata": {"usage": usage, "metrics": {"latencyMs": 80}}}


def _stream_error(code: str, message: str) -> EventStreamError:
    return EventStreamError({"Error": {"Code": code, "Message": message}}, "ConverseStream")


def test_bedrock_stream_maps_deltas_and_usage() -> None:
    client = FakeBedrock(
        START,
        {"contentBlockStart": {"start": {}, "contentBlockIndex": 0}},
        _delta("Because "),
        _delta(""),
        _delta("it grounds answers."),
        {"contentBlockStop": {"contentBlockIndex": 0}},
        STOP,
        _metadata(40, 7),
    )

    deltas = list(BedrockChatModel(CLAUDE, client=client).stream(CONVERSATION, OPTIONS))

    assert deltas == [ChatDelta("Because "), ChatDelta("it grounds answers."), ChatDelta("", ChatUsage(40, 7, 47))]
    assert client.requests == [EXPECTED_REQUEST]
    assert client.stream.closed


def test_bedrock_stream_estimates_usage_without_metadata() -> None:
    client = FakeBedrock(START, _delta("Short answer."), STOP)

    *_, last = BedrockChatModel(CLAUDE, client=client).stream([ChatMessage("user", "Why?")])

    assert last == ChatDelta("", ChatUsage.of(count_tokens("Why?"), count_tokens("Short answer.")))


@pytest.mark.parametrize(
    ("code", "error", "message"),
    [
        ("throttlingException", ChatModelServiceError, "is throttled"),
        ("modelStreamErrorException", ChatModelServiceError, r"failed \(ModelStreamErrorException\): model crashed"),
        ("validationException", ChatModelServiceError, r"failed \(ValidationException\): model crashed"),
        ("serviceUnavailableException", ChatModelServiceError, "is unavailable"),
    ],
)
def test_bedrock_stream_error_events_are_raised_after_the_text(
    code: str, error: type[ChatModelError], message: str
) -> None:
    client = FakeBedrock(START, _delta("partial "), _stream_error(code, "model crashed"), _delta("never"))
    texts: list[str] = []

    with pytest.raises(error, match=message):
        for delta in BedrockChatModel(CLAUDE, client=client).stream([ChatMessage("user", "hi")]):
            texts.append(delta.text)

    assert texts == ["partial "]
    assert client.stream.closed


def test_bedrock_stream_read_timeout_and_broken_connection() -> None:
    timeout = urllib3.exceptions.ReadTimeoutError(None, "/", "Read timed out.")  # type: ignore[arg-type]
    broken = urllib3.exceptions.ProtocolError("Connection broken")

    with pytest.raises(ChatModelTimeout):
        list(
            BedrockChatModel(CLAUDE, client=FakeBedrock(START, _delta("a"), timeout)).stream([ChatMessage("user", "x")])
        )
    with pytest.raises(ChatModelServiceError, match="broke off"):
        list(
            BedrockChatModel(CLAUDE, client=FakeBedrock(START, _delta("a"), broken)).stream([ChatMessage("user", "x")])
        )


def test_bedrock_stream_call_errors_are_raised_from_the_iterator() -> None:
    client = FakeBedrock(error=NoCredentialsError())
    stream = BedrockChatModel(CLAUDE, client=client).stream([ChatMessage("user", "x")])

    assert client.requests == []  # nothing is sent before the first next()
    with pytest.raises(ChatModelConfigError, match="No AWS credentials"):
        next(stream)


def test_bedrock_stream_close_closes_the_event_stream() -> None:
    client = FakeBedrock(START, _delta("one "), _delta("two "), _delta("three"), STOP, _metadata(1, 3))
    stream = BedrockChatModel(CLAUDE, client=client).stream([ChatMessage("user", "x")])

    assert next(stream) == ChatDelta("one ")
    stream.close()

    assert client.stream.closed
    assert client.stream.consumed == 2


def test_bedrock_stream_unreadable_event() -> None:
    client = FakeBedrock(START, {"contentBlockDelta": "garbage"})

    with pytest.raises(ChatModelServiceError, match="unreadable answer"):
        list(BedrockChatModel(CLAUDE, client=client).stream([ChatMessage("user", "x")]))
