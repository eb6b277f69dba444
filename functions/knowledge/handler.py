"""Lambda entry point of the knowledge route group."""

from functions.api.lambda_app import build_handler

handler = build_handler("knowledge")
