"""The demo: the product (activations, orchestration) run on the generator's data against the sandbox.

Neither the product nor Dagster's definitions import this package, the generator or the sandbox
(tests/test_boundaries.py): a production install runs without them.
"""
