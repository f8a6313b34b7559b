"""The activation engine: plan (diff in SQL) -> execute (batches, limits, retries) -> commit.

Imports no Dagster. State lives in the warehouse, schema `activation`.
"""
