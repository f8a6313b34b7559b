"""Firebase Cloud Messaging: the HTTP v1 `messages:send` API as a mobile push channel (messages.py)."""
