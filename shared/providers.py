"""Which adapter serves each factory of RAGFlow's catalog, and where its API lives by default.

Light on purpose (no imports): read by the model factories in ``shared/rag`` and by the CLI.

Most providers speak OpenAI's HTTP API, so one adapter (``shared/adapters/openai_chat.py``,
``openai_embedder.py``) serves them all; a tenant's ``api_base`` for the factory (or the model) overrides the
default below. ``None`` as a base URL means there is no public default (a server of the user's own, or a
resource-specific address such as Azure's): the tenant must give one. A factory absent from a table has no
adapter for that kind of model in flowless; its models are still known (Unauthorized until configured), and
once configured they answer a clear error when used.
"""

from __future__ import annotations

#: Factories whose chat (and vision) models speak OpenAI's ``/chat/completions``, with their documented
#: base URLs (RAGFlow's rag/llm defaults where it has one, else the provider's documentation).
OPENAI_COMPATIBLE_CHAT: dict[str, str | None] = {
    "OpenAI": "https://api.openai.com/v1",
    "OpenAI-API-Compatible": None,
    "Azure-OpenAI": None,  # https://<resource>.openai.azure.com/openai/v1
    "Anthropic": "https://api.anthropic.com/v1",
    "Gemini": "https://generativelanguage.googleapis.com/v1beta/openai",
    "Mistral": "https://api.mistral.ai/v1",
    "xAI": "https://api.x.ai/v1",
    "Cohere": "https://api.cohere.ai/compatibility/v1",
    "DeepSeek": "https://api.deepseek.com/v1",
    "Moonshot": "https://api.moonshot.cn/v1",
    "ZHIPU-AI": "https://open.bigmodel.cn/api/paas/v4",
    "Tongyi-Qianwen": "https://dashscope.aliyuncs.com/compatible-mode/v1",
    "BaiChuan": "https://api.baichuan-ai.com/v1",
    "MiniMax": "https://api.minimax.chat/v1",
    "StepFun": "https://api.stepfun.com/v1",
    "Tencent Hunyuan": "https://api.hunyuan.cloud.tencent.com/v1",
    "VolcEngine": "https://ark.cn-beijing.volces.com/api/v3",
    "BaiduYiyan": "https://qianfan.baidubce.com/v2",
    "XunFei Spark": "https://spark-api-open.xf-yun.com/v1",
    "ModelScope": "https://api-inference.modelscope.cn/v1",
    "Groq": "https://api.groq.com/openai/v1",
    "TogetherAI": "https://api.together.xyz/v1",
    "OpenRouter": "https://openrouter.ai/api/v1",
    "SILICONFLOW": "https://api.siliconflow.cn/v1",
    "NVIDIA": "https://integrate.api.nvidia.com/v1",
    "DeepInfra": "https://api.deepinfra.com/v1/openai",
    "Upstage": "https://api.upstage.ai/v1/solar",
    "NovitaAI": "https://api.novita.ai/v3/openai",
    "PPIO": "https://api.ppinfra.com/v3/openai",
    "GiteeAI": "https://ai.gitee.com/v1",
    "302.AI": "https://api.302.ai/v1",
    "CometAPI": "https://api.cometapi.com/v1",
    "DeerAPI": "https://api.deerapi.com/v1",
    "Jiekou.AI": "https://api.jiekou.ai/openai",
    "LongCat": "https://api.longcat.chat/openai",
    "TokenPony": "https://ragflow.vip-api.tokenpony.cn/v1",
    # Servers run by the user: their documented local address.
    "Ollama": "http://localhost:11434/v1",
    "LocalAI": "http://localhost:8080/v1",
    "VLLM": "http://localhost:8000/v1",
    "LM-Studio": "http://localhost:1234/v1",
    "Xinference": "http://localhost:9997/v1",
    "GPUStack": None,
}

#: Factories whose embedding models speak OpenAI's ``/embeddings``.
OPENAI_COMPATIBLE_EMBEDDING: dict[str, str | None] = {
    factory: OPENAI_COMPATIBLE_CHAT[factory]
    for factory in (
        "OpenAI",
        "OpenAI-API-Compatible",
        "Azure-OpenAI",
        "Gemini",
        "Mistral",
        "Cohere",
        "ZHIPU-AI",
        "Tongyi-Qianwen",
        "BaiChuan",
        "VolcEngine",
        "TogetherAI",
        "SILICONFLOW",
        "NVIDIA",
        "DeepInfra",
        "Upstage",
        "NovitaAI",
        "GiteeAI",
        "302.AI",
        "CometAPI",
        "DeerAPI",
        "Jiekou.AI",
        "Ollama",
        "LocalAI",
        "VLLM",
        "LM-Studio",
        "Xinference",
        "GPUStack",
    )
} | {
    "Jina": "https://api.jina.ai/v1",
    "Voyage AI": "https://api.voyageai.com/v1",
    "HuggingFace": None,  # a text-embeddings-inference server
}

#: Factories whose rerank models answer the common ``POST {base}/rerank`` API (Cohere's shape), with the
#: request field naming how many results to return (Voyage calls it ``top_k``).
HTTP_RERANK: dict[str, tuple[str | None, str]] = {
    "Cohere": ("https://api.cohere.com/v2", "top_n"),
    "Jina": ("https://api.jina.ai/v1", "top_n"),
    "Voyage AI": ("https://api.voyageai.com/v1", "top_k"),
    "SILICONFLOW": ("https://api.siliconflow.cn/v1", "top_n"),
    "OpenAI-API-Compatible": (None, "top_n"),
    "Xinference": ("http://localhost:9997/v1", "top_n"),
    "GPUStack": (None, "top_n"),
    "HuggingFace": (None, "top_n"),
}

#: Served through Amazon Bedrock (Converse for chat; InvokeModel for embeddings and rerank).
BEDROCK_FACTORY = "Bedrock"

#: The factories ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` stand in for when a tenant set neither (the standard
#: environment of OpenAI's client; sending OpenAI's key to another provider would leak it).
OPENAI_ENVIRONMENT_FACTORIES = frozenset({"OpenAI", "OpenAI-API-Compatible"})
#: Environment variables holding rerank services' keys (``COHERE_API_KEY`` as Cohere's own client reads it).
RERANK_KEY_VARIABLES = {"Cohere": "COHERE_API_KEY", "OpenAI-API-Compatible": "OPENAI_API_KEY"}
#: The key sent to servers that need none (the OpenAI client insists on one).
NO_KEY = "not-needed"


def endpoint(
    default_base: str | None,
    api_base: str | None,
    api_key: str | None,
    *,
    env_base: str | None = None,
    env_key: str | None = None,
) -> tuple[str | None, str | None]:
    """``(base_url, api_key)`` for a call: the tenant's settings, else the environment's (``env_*``, for the
    factories it applies to), else the documented default. The key is None when a hosted provider's public
    API would be called without one; a server of the user's own (a local default, or a base URL the tenant
    or the environment chose) gets :data:`NO_KEY`. The base URL is None when nothing gives one."""
    base = api_base or env_base or default_base
    key = api_key or env_key
    if not key and base and (base != default_base or not base.startswith("https://")):
        key = NO_KEY
    return base or None, key or None
