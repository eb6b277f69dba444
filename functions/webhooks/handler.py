"""Lambda entry point of the webhooks route group."""

from functions.api.lambda_app import build_handler

handler = build_handler("webhooks")
