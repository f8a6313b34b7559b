"""Confidence intervals for a difference of two rates, as the report states them."""

from __future__ import annotations

import math

Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson's score interval for a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return centre - half, centre + half


def rate_difference(a: int, n_a: int, b: int, n_b: int, z: float = Z95) -> tuple[float, float, float]:
    """a/n_a - b/n_b with Newcombe's hybrid score interval (Newcombe 1998, method 10), the interval
    measurement.campaign_uplift gives conversion uplift: (difference, low, high)."""
    p_a, p_b = a / n_a, b / n_b
    low_a, high_a = wilson(a, n_a, z)
    low_b, high_b = wilson(b, n_b, z)
    difference = p_a - p_b
    return (difference, difference - math.sqrt((p_a - low_a) ** 2 + (high_b - p_b) ** 2),
            difference + math.sqrt((high_a - p_a) ** 2 + (p_b - low_b) ** 2))
