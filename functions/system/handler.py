"""Lambda entry point of the system route group (health, ping)."""

from functions.api.lambda_app import build_handler

handler = build_handler("system")
