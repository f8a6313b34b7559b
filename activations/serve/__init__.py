"""Personalization API and event collection (`attiva serve`).

- `store`: the serving store, a read-optimized SQLite snapshot of the warehouse, published
  atomically under ATTIVA_DATA/serving/ and never read half-built.
- `keys`: API keys (sha256 hashes in serve_keys.yml), their endpoints, fields and rate limits.
- `events`: validation and durable append of events to the landing folder.
- `app`: the starlette application and the uvicorn runner.
"""
