"""Lambda entry point of the chats route group."""

from functions.api.lambda_app import build_handler

handler = build_handler("chats")
