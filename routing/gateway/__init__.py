"""Serving the OpenAI-compatible API (/v1): see app.py."""
