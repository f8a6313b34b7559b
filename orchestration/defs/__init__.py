"""Dagster definitions, one module per concern; `orchestration.definitions` puts them together."""
