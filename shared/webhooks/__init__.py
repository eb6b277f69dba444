"""Webhooks' pure parts: the outbound URL policy and the delivery signature (no I/O here)."""
