"""The ``flowless`` command: run the local server, administer tenants (locally or on a deployed table)."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import time
from pathlib import Path

from shared.access import ResourceKind
from shared.config import Settings
from shared.constants import LOCAL_API_KEY_FILE
from shared.container import Container
from shared.errors import FlowlessError
from shared.services.tenants import FactorySetting, ModelSetting

DEFAULT_DATA_DIR = Path(os.environ.get("FLOWLESS_DATA_DIR", "data"))
#: Names the local server's chat model when ``--chat-model`` does not (``NAME@FACTORY``).
CHAT_MODEL_VARIABLE = "FLOWLESS_CHAT_MODEL"


def _write_key_file(path: Path, api_key: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(api_key + "\n")


def _serve(args: argparse.Namespace) -> int:
    # Single-threaded BLAS, set before numpy loads: the server's products are small (a few thousand rows
    # rescored, a question's vectors), and OpenBLAS workers spinning after each one took the core the next
    # request's embedding needed (at 100k chunks, /retrieval p99 62 -> 36 ms, p50 32 -> 28 ms). A value
    # the environment sets wins.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import uvicorn

    from functions.local.server import (
        build_local_app,
        rebuild_index_if_needed,
        resume_background_work,
        resume_webhook_deliveries,
    )

    data_dir = Path(args.data_dir).resolve()
    container = _local_container(data_dir)
    tenant_id, api_key = container.tenant_service.ensure_default_tenant()
    key_file = data_dir / LOCAL_API_KEY_FILE
    if api_key is not None:
        _write_key_file(key_file, api_key)
        print(f"Created tenant {tenant_id}. API key: {api_key}", flush=True)
        print(f"The key is also in {key_file}", flush=True)
    else:
        print(f"Tenant {tenant_id}; its first API key is in {key_file}", flush=True)
    chat_model = _serve_chat_model(args)
    if chat_model is not None:
        container.tenant_service.set_models(tenant_id, [chat_model])
        where = chat_model.api_base or "its factory's default endpoint"
        print(f"Chat model of tenant {tenant_id}: {chat_model.model_id} ({where})", flush=True)
    rebuilt = rebuild_index_if_needed(container)
    if rebuilt is not None:
        print(f"Search index rebuilt from the metadata store ({rebuilt} chunks)", flush=True)
    resumed = resume_background_work(container)
    if resumed:
        print(f"Resumed {resumed} interrupted parse(s) and build(s)", flush=True)
    pending = resume_webhook_deliveries(container)
    if pending:
        print(f"Resumed {pending} pending webhook deliveries", flush=True)
    app = build_local_app(container)
    # What is loaded by now lives as long as the server (the index's chunk ids and maps: hundreds of
    # thousands of references at 100k chunks). Frozen, it is left out of the collector's full passes, which
    # otherwise paused a request for up to 18 ms every ~15 retrievals (in-process p99 39.6 -> 25.1 ms).
    gc.freeze()
    print(f"flowless serving on http://{args.host}:{args.port} (data in {data_dir})", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def _serve_chat_model(args: argparse.Namespace) -> ModelSetting | None:
    """The default tenant's chat model from ``--chat-model`` or ``FLOWLESS_CHAT_MODEL`` (NAME@FACTORY), with
    the endpoint and key from the flags or OpenAI's standard environment; None when neither names one."""
    model_id = args.chat_model or os.environ.get(CHAT_MODEL_VARIABLE)
    if not model_id:
        return None
    api_base = args.model_base_url or os.environ.get("OPENAI_BASE_URL") or None
    api_key = args.model_api_key or os.environ.get("OPENAI_API_KEY") or None
    return ModelSetting(model_id, "chat", api_base, api_key)


def _admin_container(args: argparse.Namespace) -> Container:
    if args.table:
        return Container(
            Settings(
                backend="aws",
                table_name=args.table,
                aws_region=args.region
                or os.environ.get("AWS_REGION")
                or os.environ.get("AWS_DEFAULT_REGION")
                or "us-east-1",
                dynamodb_endpoint=args.endpoint_url,
                secrets_prefix=args.secrets_prefix,
                secrets_kms_key=args.secrets_kms_key,
            )
        )
    return _local_container(Path(args.data_dir).resolve())


def _model_settings(args: argparse.Namespace) -> list[ModelSetting]:
    settings = []
    if args.chat_model:
        settings.append(ModelSetting(args.chat_model, "chat", args.model_base_url, args.model_api_key))
    if args.embedding_model:
        settings.append(ModelSetting(args.embedding_model, "embedding", args.model_base_url, args.model_api_key))
    if args.rerank_model:
        settings.append(ModelSetting(args.rerank_model, "rerank", args.model_base_url, args.model_api_key))
    if args.image2text_model:
        settings.append(ModelSetting(args.image2text_model, "image2text", args.model_base_url, args.model_api_key))
    return settings


def _tenant_create(args: argparse.Namespace) -> int:
    container = _admin_container(args)
    tenant, api_key = container.tenant_service.create(args.name, _model_settings(args))
    print(f"created tenant {tenant.id}", file=sys.stderr)
    print(api_key)
    return 0


def _tenant_factory(args: argparse.Namespace) -> int:
    setting = FactorySetting(args.factory, args.base_url, args.api_key)
    tenant = _admin_container(args).tenant_service.set_factory(args.tenant_id, setting)
    print(f"tenant {tenant.id}: {args.factory} configured (its models are authorized)")
    return 0


def _tenant_key(args: argparse.Namespace) -> int:
    # A list given (even empty) restricts the key; kinds without one are closed to a restricted key.
    options: tuple[tuple[ResourceKind, str | None], ...] = (
        ("dataset", args.datasets),
        ("chat", args.chats),
        ("agent", args.agents),
    )
    ids = {kind: [i.strip() for i in value.split(",") if i.strip()] for kind, value in options if value is not None}
    print(_admin_container(args).tenant_service.issue_key(args.tenant_id, args.scope, ids or None))
    return 0


def _tenant_keys(args: argparse.Namespace) -> int:
    keys = _admin_container(args).tenant_service.list_keys(args.tenant_id)
    print(f"{'id':<13}{'created':<21}{'scope':<7}restricted to")
    for key in keys:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime((key["create_time"] or 0) / 1000))
        ids = key["ids"]
        limits = (
            "; ".join(f"{kind}s: {','.join(values) or '-'}" for kind, values in sorted(ids.items()))
            if ids is not None
            else "(all)"
        )
        print(f"{key['id']:<13}{created:<21}{key['scope']:<7}{limits}   …{key['hint']}")
    return 0


def _tenant_revoke(args: argparse.Namespace) -> int:
    _admin_container(args).tenant_service.revoke_key(args.tenant_id, args.key_id)
    print(f"revoked {args.key_id}", file=sys.stderr)
    return 0


def _tenant_models(args: argparse.Namespace) -> int:
    tenant = _admin_container(args).tenant_service.set_models(args.tenant_id, _model_settings(args))
    print(f"tenant {tenant.id}: chat={tenant.llm_id} embedding={tenant.embd_id} rerank={tenant.rerank_id}")
    return 0


def _add_store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR), help="local data folder (default: data)")
    parser.add_argument("--table", help="DynamoDB table of a deployed stack (uses your AWS credentials)")
    parser.add_argument("--region", help="AWS region of --table")
    parser.add_argument("--endpoint-url", help="DynamoDB endpoint override (tests, DynamoDB Local)")
    parser.add_argument(
        "--secrets-prefix",
        default=os.environ.get("FLOWLESS_SECRETS_PREFIX"),
        help="SSM path of --table's stack for models' API keys (its ModelKeysPrefix output)",
    )
    parser.add_argument(
        "--secrets-kms-key",
        default=os.environ.get("FLOWLESS_SECRETS_KMS_KEY"),
        help="KMS key of --table's stack that encrypts them (its DataKeyArn output)",
    )


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chat-model", help="default chat model, NAME@FACTORY")
    parser.add_argument("--embedding-model", help="default embedding model, NAME@FACTORY")
    parser.add_argument("--rerank-model", help="default rerank model, NAME@FACTORY")
    parser.add_argument("--image2text-model", help="image2text (vision) model for the picture method, NAME@FACTORY")
    parser.add_argument("--model-base-url", help="base URL of the models' OpenAI-compatible endpoint")
    parser.add_argument("--model-api-key", help="API key for the models' endpoint")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flowless", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API locally")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=9380)
    serve.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR))
    serve.add_argument("--log-level", default="warning")
    serve.add_argument(
        "--chat-model",
        help=f"the default tenant's chat model, NAME@FACTORY (default: ${CHAT_MODEL_VARIABLE}), e.g. llama3.2@Ollama",
    )
    serve.add_argument(
        "--model-base-url", help="the chat model's endpoint (default: $OPENAI_BASE_URL, else the factory's)"
    )
    serve.add_argument("--model-api-key", help="the chat model's API key (default: $OPENAI_API_KEY)")
    serve.set_defaults(run=_serve)

    tenant = commands.add_parser("tenant", help="administer tenants and API keys")
    tenant_commands = tenant.add_subparsers(dest="tenant_command", required=True)
    create = tenant_commands.add_parser("create", help="create a tenant; prints its API key")
    create.add_argument("--name", default="tenant")
    _add_store_options(create)
    _add_model_options(create)
    create.set_defaults(run=_tenant_create)

    key = tenant_commands.add_parser("key", help="issue another API key for a tenant (optionally scoped)")
    key.add_argument("tenant_id")
    key.add_argument(
        "--scope",
        choices=("read", "write"),
        default="write",
        help="read: GET routes, retrieval and completions; write: everything (default)",
    )
    key.add_argument("--datasets", help="comma-separated dataset ids the key is restricted to")
    key.add_argument("--chats", help="comma-separated chat ids the key is restricted to")
    key.add_argument("--agents", help="comma-separated agent ids the key is restricted to")
    _add_store_options(key)
    key.set_defaults(run=_tenant_key)

    keys = tenant_commands.add_parser("keys", help="list a tenant's API keys with their scopes (never the keys)")
    keys.add_argument("tenant_id")
    _add_store_options(keys)
    keys.set_defaults(run=_tenant_keys)

    revoke = tenant_commands.add_parser("revoke", help="revoke an API key by the id `flowless tenant keys` shows")
    revoke.add_argument("tenant_id")
    revoke.add_argument("key_id")
    _add_store_options(revoke)
    revoke.set_defaults(run=_tenant_revoke)

    factory = tenant_commands.add_parser(
        "factory", help="set a tenant's API key (and endpoint) for a model factory: authorizes its models"
    )
    factory.add_argument("tenant_id")
    factory.add_argument("factory", help="the factory as RAGFlow names it (OpenAI, DeepSeek, Ollama, ...)")
    factory.add_argument("--api-key", help="the factory's API key")
    factory.add_argument("--base-url", help="the factory's endpoint (default: its documented one)")
    _add_store_options(factory)
    factory.set_defaults(run=_tenant_factory)

    models = tenant_commands.add_parser("models", help="set a tenant's default models")
    models.add_argument("tenant_id")
    _add_store_options(models)
    _add_model_options(models)
    models.set_defaults(run=_tenant_models)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except FlowlessError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    except SettingsInvalid as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


class SettingsInvalid(Exception):
    """A ``FLOWLESS_*`` variable with an invalid value (the message names it)."""


def _local_container(data_dir: Path) -> Container:
    from functions.local.server import local_container

    try:
        return local_container(data_dir)
    except ValueError as exc:  # Settings.from_env's refusal of a variable
        raise SettingsInvalid(str(exc)) from None


if __name__ == "__main__":
    sys.exit(main())
