"""Attiva's signed webhook: audience rows (rows.py, a sync destination) and one message per POST
(messages.py, a channel), signed alike."""

from activations.destinations.webhook.rows import SIGNATURE_HEADER, signature

__all__ = ["SIGNATURE_HEADER", "signature"]
