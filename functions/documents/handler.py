"""Lambda entry point of the documents route group."""

from functions.api.lambda_app import build_handler

handler = build_handler("documents")
