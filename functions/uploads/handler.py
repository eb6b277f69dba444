"""Lambda entry point of the uploads route group."""

from functions.api.lambda_app import build_handler

handler = build_handler("uploads")
