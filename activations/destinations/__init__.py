"""Destination clients: one module per platform, all behind the `Destination` protocol.

`load_destinations()` reads the root destinations.yml, `build_client()` makes
the client of one instance; the engine reads only `client.capabilities`.
"""

from activations.destinations.base import (
    BatchPart,
    BatchRefused,
    Capabilities,
    Destination,
    DestinationConfigError,
    DestinationError,
    QuotaExhausted,
    RetryableError,
    RowResult,
    Secret,
)
from activations.destinations.config import DestinationConfig, build_client, load_destinations

__all__ = [
    "BatchPart",
    "BatchRefused",
    "Capabilities",
    "Destination",
    "DestinationConfig",
    "DestinationConfigError",
    "DestinationError",
    "QuotaExhausted",
    "RetryableError",
    "RowResult",
    "Secret",
    "build_client",
    "load_destinations",
]
