"""Time around `as_of`: epoch seconds, the retail calendar (seasonality) and times of day.

Every generated timestamp is an int64 count of seconds since the epoch (UTC),
drawn relative to `as_of`, so the data is always "recent" whatever the day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import numpy as np

from generator.streams import pick

MINUTE = 60
HOUR = 3_600
DAY = 86_400

# Relative demand per month (Jan..Dec): January sales, a summer dip, the November/December peak.
MONTH_DEMAND = np.array([0.95, 0.8, 0.9, 0.95, 1.0, 0.85, 0.8, 0.6, 0.95, 1.05, 1.55, 1.8])
# Relative demand per weekday (Mon..Sun).
WEEKDAY_DEMAND = np.array([1.05, 1.0, 1.0, 1.0, 1.05, 0.95, 0.9])
# Relative activity per UTC hour (Italy is UTC+1/+2): quiet nights, lunch and evening peaks.
SHOPPING_HOURS = np.array([0.4, 0.25, 0.15, 0.1, 0.1, 0.2, 0.5, 1.0, 1.5, 1.8, 2.0, 2.2,
                           2.3, 2.0, 1.8, 1.8, 1.9, 2.1, 2.4, 2.8, 3.0, 2.6, 1.8, 1.0])
OFFICE_HOURS = np.array([0.05, 0.05, 0.05, 0.05, 0.05, 0.1, 0.5, 2.0, 3.0, 3.0, 3.0, 2.0,
                         1.5, 2.5, 3.0, 3.0, 2.5, 1.5, 0.6, 0.3, 0.2, 0.1, 0.05, 0.05])


def epoch_seconds(moment: datetime) -> int:
    """Seconds since the epoch; a naive datetime is taken as UTC."""
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def _black_fridays(first: date, last: date) -> list[date]:
    days = []
    for year in range(first.year, last.year + 1):
        nov1 = date(year, 11, 1)
        fourth_thursday = nov1 + timedelta(days=(3 - nov1.weekday()) % 7 + 21)
        days.append(fourth_thursday + timedelta(days=1))
    return days


class Calendar:
    """The `days` calendar days up to and including as_of's day, each with a demand weight."""

    def __init__(self, as_of: int, days: int, seasonal: bool = True) -> None:
        self.as_of = as_of
        self.days = days
        last_day = as_of // DAY
        self.first_day = last_day - days + 1  # days since the epoch
        day_numbers = np.arange(self.first_day, last_day + 1)
        weights = np.ones(days)
        if seasonal:
            months = day_numbers.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) % 12
            weekdays = (day_numbers + 3) % 7
            growth = 1.0 + 0.25 * np.arange(days) / 365.0  # the shop grows about 25% a year
            weights = MONTH_DEMAND[months] * WEEKDAY_DEMAND[weekdays] * growth
            first = date(1970, 1, 1) + timedelta(days=int(self.first_day))
            for bf in _black_fridays(first, first + timedelta(days=days)):
                for offset, boost in ((0, 3.0), (3, 2.0)):  # Black Friday and Cyber Monday
                    i = (bf - date(1970, 1, 1)).days + offset - self.first_day
                    if 0 <= i < days:
                        weights[i] *= boost
        cdf = np.cumsum(weights)
        self._cdf = cdf / cdf[-1]

    def sample_days(self, rng: np.random.Generator, lo: np.ndarray | int, hi: np.ndarray | int, n: int) -> np.ndarray:
        """`n` day indices, each within its own [lo, hi] (inclusive) and weighted by demand."""
        lo = np.broadcast_to(np.clip(lo, 0, self.days - 1), n)
        hi = np.broadcast_to(np.clip(hi, 0, self.days - 1), n)
        hi = np.maximum(lo, hi)
        below = np.where(lo > 0, self._cdf[np.maximum(lo - 1, 0)], 0.0)
        u = below + rng.random(n) * (self._cdf[hi] - below)
        return np.clip(np.searchsorted(self._cdf, u, side="left"), lo, hi)

    def times(self, rng: np.random.Generator, day_index: np.ndarray, hours: np.ndarray = SHOPPING_HOURS) -> np.ndarray:
        """An epoch second on each given day, at an hour drawn from `hours`; never later than as_of."""
        n = len(day_index)
        seconds = (
            (self.first_day + np.asarray(day_index, dtype=np.int64)) * DAY
            + pick(rng, n, hours) * HOUR
            + rng.integers(0, HOUR, n)
        )
        # A time later today than "now" moves to the same hour yesterday.
        return np.where(seconds > self.as_of, seconds - DAY, seconds)


def uniform_times(rng: np.random.Generator, lo: np.ndarray | int, hi: np.ndarray | int, n: int) -> np.ndarray:
    """`n` epoch seconds uniformly within [lo, hi] (per row when arrays are given)."""
    lo = np.broadcast_to(np.asarray(lo, dtype=np.int64), n)
    hi = np.maximum(lo, np.broadcast_to(np.asarray(hi, dtype=np.int64), n))
    return lo + (rng.random(n) * (hi - lo)).astype(np.int64)
