"""When people read their mail: each person's habitual local hour, planted, and open times that follow it.

Most people open mail at a habit of theirs (first thing at work, lunch, after dinner), not whenever it
arrives. Each person gets a preferred local hour: with probability `GROUP_SHARE` their group's, else any
hour from 08:00 to 20:00. The groups follow how the person shops, which the warehouse's segments see too
(so a segment has a best hour, planted): B2B buyers at 09:00, regulars (six completed orders or more) at
08:00, repeat buyers (two to five) at 18:00, one-time buyers at 13:00, people who never bought at 20:00.
`HABIT` of a person's opens happen in their hour, the first time the clock in their country shows it after
the message arrived; the rest a few hours after arrival, whatever the hour. The hours are planted truth
(`people.parquet`, column `preferred_hour`): the simulator's recipients open more of the mail that reaches
them in that hour (simulator/world.py), and send-time optimization (marts.customer_best_send_hour) has to
find it from the opens alone.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from generator.clock import HOUR

# As dbt_project/seeds/country_timezones.csv has them, for the generator's countries (places.COUNTRY_SHARES).
ZONES = {"IT": "Europe/Rome", "FR": "Europe/Paris", "DE": "Europe/Berlin", "ES": "Europe/Madrid",
         "AT": "Europe/Vienna", "NL": "Europe/Amsterdam"}
DEFAULT_ZONE = "Europe/Rome"
HOURS = np.arange(8, 21)  # 08:00-20:59 local
GROUP_SHARE = 0.7  # of people: their group's hour
B2B_HOUR, REGULAR_HOUR, REPEAT_HOUR, ONCE_HOUR, NEVER_HOUR = 9, 8, 18, 13, 20
HABIT = 0.6  # of a person's opens: in their preferred hour


def preferred_hours(rng: np.random.Generator, people: pl.DataFrame, completed_orders: np.ndarray) -> np.ndarray:
    """A preferred local hour per person (row order of `people`), from their completed orders in the shop."""
    group = np.select([people["is_b2b"].to_numpy(), completed_orders >= 6, completed_orders >= 2,
                       completed_orders == 1], [B2B_HOUR, REGULAR_HOUR, REPEAT_HOUR, ONCE_HOUR], NEVER_HOUR)
    own = rng.random(people.height) < GROUP_SHARE
    return np.where(own, group, rng.choice(HOURS, people.height))


def zone_of(countries: pl.Series) -> pl.Series:
    return countries.replace_strict(ZONES, default=DEFAULT_ZONE, return_dtype=pl.String)


def next_local_hour(utc: np.ndarray, hour: np.ndarray, zones: np.ndarray) -> np.ndarray:
    """Epoch seconds: the start of the first hour in which the clock in `zones` shows `hour`, from the hour
    `utc` falls in on (so the start may be before `utc`, within that same hour)."""
    out = np.empty(len(utc), dtype=np.int64)
    for zone in np.unique(zones):
        rows = np.flatnonzero(zones == zone)
        at = utc[rows].astype(np.int64)
        local = (pl.Series(at * 1000).cast(pl.Datetime("ms", "UTC")).dt.convert_time_zone(str(zone))
                 .dt.replace_time_zone(None).cast(pl.Int64).to_numpy() // 1000)
        offset = local - at
        ahead = (hour[rows] - (local // HOUR) % 24) % 24
        start = local - local % HOUR + ahead * HOUR - offset
        out[rows] = start
    return out


class Habits:
    """Moves opens to the reader's preferred hour: `opened_at(to, delivered_at, opened_at)` for one send."""

    def __init__(self, rng: np.random.Generator, hours: np.ndarray, zones: np.ndarray) -> None:
        self.rng, self.hours, self.zones = rng, hours, zones

    def opened_at(self, to: np.ndarray, delivered_at: np.ndarray, opened_at: np.ndarray) -> np.ndarray:
        habit = self.rng.random(len(to)) < HABIT
        hour_start = next_local_hour(delivered_at, self.hours[to], self.zones[to])
        in_hour = np.maximum(hour_start + self.rng.integers(0, HOUR, len(to)), delivered_at + 60)
        return np.where(habit, in_hour, opened_at)
