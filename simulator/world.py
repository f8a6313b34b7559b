"""The simulated customers: who they are, how often they buy on their own, how they answer a message.

The people are the generator's (its ground truth in `<landing>/_truth/people.parquet` and
`person_map.parquet`), so the warehouse already knows them from the landing files. Each person
gets latent traits, drawn from the seed:

- an organic purchase rate per day, whatever Attiva does, that goes on from their own history: a draw
  from the Gamma posterior of a Gamma(0.6, mean 1/180) prior given the completed orders the shop
  exported for them over the generator's three years (someone who bought ten times goes on buying
  about three times a year; someone who never bought, once in five years);
- a day they churn, planted: a hazard per day drawn Gamma(1, mean 1/365), so about four in ten
  churn within 200 days. From then on they neither buy, visit nor answer a message. The
  warehouse never sees it; a propensity model has to find it (benchmarks/propensity_simulated.py);
- a browsing rate per day (Gamma, mean 1/20): a visit views a few products and, one time in three,
  puts one in the cart; most carts are left, which is what the abandoned-cart journey answers;
- a responsiveness, Gamma(2, 0.5) (mean 1), that scales every campaign's planted effect;
- for an open lead (a CRM contact at stage lead, mql or sql who never bought): an intent,
  Gamma(0.5, mean 1), that sets how often they go in market: buying windows of a few weeks
  (about one a year at average intent, 21 days long on average). Only in a window do they fill in
  the site's forms often (contact sales, download, webinar: one a week; one in six months
  otherwise), look at the products from their own device (a visit every three days), and may
  become a customer with a first order (1/30 a day, so four windows in ten end in a purchase).
  A B2B buyer's interest comes and goes this way; the lead score's rule counts every form ever
  filled, so a lead whose window closed a year ago still scores high, and only a model that
  weighs how recent the signals are can tell;
- a preferred local hour for reading mail, planted by the generator (`people.parquet`, generator/send_hours.py:
  most of the opens in the ESP's history fall in it): mail that reaches them in that hour is opened
  `HABIT_OPEN_LIFT` times as often (the sandbox's recipients do it, sandbox/engagement.py), which is what
  send-time optimization can win;
- their tastes: seven times in ten a visit or a purchase is of a product they bought before (from
  the shop's exports), else any product, so favourites drift slowly, as real ones do.

A received message makes a purchase that would not have happened: with probability
`uplift[campaign] x responsiveness` (capped at 0.95) the person buys once, after an exponential
delay (mean one day) that falls inside the attribution window. Those probabilities are the planted
truth the measurement is checked against: `expected_uplift` gives what a holdout comparison
should find for a set of recipients.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from generator.orders import HISTORY_DAYS
from generator.send_hours import zone_of
from generator.streams import stream
from sandbox.engagement import OPEN as SANDBOX_OPEN
from sandbox.engagement import open_probability

DAY = 86_400
# Planted: the chance a received message causes a purchase within the window, for an average person.
UPLIFT: Mapping[str, float] = {
    "abandoned_cart": 0.12, "browse_abandonment": 0.06, "welcome": 0.05, "favourite_on_promotion": 0.04,
    "birthday": 0.05, "cross_sell": 0.03, "win_back": 0.03, "lead_nurture": 0.02,
}
DEFAULT_UPLIFT = 0.02  # a campaign the world was not told about still moves people a little
# Planted: an A/B test's true click rates (of opened mail), per template: the second subject line is better.
VARIANT_CLICKS: Mapping[str, float] = {"favourite_on_promotion": 0.20, "favourite_on_promotion_b": 0.32}
OPEN_RATE = SANDBOX_OPEN  # of delivered mail, as the sandbox's recipients open it (every template)
HABIT_OPEN_LIFT = 1.6  # mail reaching a reader in their preferred hour is opened this many times as often
ORGANIC_SHAPE, ORGANIC_MEAN = 0.6, 1 / 180  # purchases per day: the prior the person's history updates
CHURN_MEAN = 1 / 365  # mean hazard per day of churning: afterwards no purchase, visit or answer
LEAD_STAGES = ("lead", "mql", "sql")
# Planted for open leads: buying windows (docs/simulator.md).
WINDOW_START_MEAN = 1 / 365  # per day, a lead of average intent going in market
WINDOW_DAYS_MEAN = 21  # how long a buying window lasts, if it does not end in a purchase
WINDOWS_HORIZON_DAYS = 5 * 365  # windows are drawn this far from the world's beginning
IN_MARKET_CONVERSION = 1 / 30  # per day in a window: becoming a customer (a first order)
IN_MARKET_FORMS = 1 / 7  # forms a lead fills in per day in a window, until they convert
IN_MARKET_VISITS = 1 / 3  # visits to the shop's product pages per day in a window, from their device
IDLE_FORMS = 1 / 180  # forms per day outside a window (a newsletter, a webinar)
NEVER = 10**11  # epoch seconds (year 5138) of an event that does not happen
VISIT_SHAPE, VISIT_MEAN = 0.5, 1 / 20  # visits to the shop per day
CART_SHARE = 1 / 3  # of visits
FAMILIAR_SHARE = 0.7  # of products viewed or bought: one bought before, when there is one
RESPONSE_DELAY_MEAN = DAY  # seconds from receiving a message to the purchase it causes
WINDOW_DAYS = 7  # the attribution window the responses fall within (dbt var attribution_window_days)


@dataclass(frozen=True)
class Customers:
    """Per person (row i = person_ids[i]): identifiers to buy with and latent traits."""

    person_ids: np.ndarray
    shop_customer_id: list[str | None]
    email: list[str | None]
    organic_rate: np.ndarray  # purchases per day while active
    visit_rate: np.ndarray  # visits per day while active
    responsiveness: np.ndarray
    churn_at: np.ndarray  # epoch seconds: from then on the person does nothing
    lead_email: list[str | None]  # an open lead's CRM address (forms and the first order carry it); None otherwise
    lead_intent: np.ndarray  # 0 for everyone who is not an open lead
    lead_windows: np.ndarray  # (row, start, end) per buying window, epoch seconds; the last ends at conversion
    converts_at: np.ndarray  # epoch seconds of an open lead's first order (NEVER for everyone else)
    by_email: dict[str, int]  # any address a person is known by -> row
    bought: list[np.ndarray]  # per row: product ids of their past purchases (repeats count)
    preferred_hour: np.ndarray  # local hour they read mail in; -1 when the generator planted none
    zone: list[str]  # their country's timezone
    uplift: Mapping[str, float] = field(default_factory=lambda: dict(UPLIFT))  # planted per campaign (a rehearsal plants the one it tries)

    def open_probability(self, rows: np.ndarray, sent_at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The planted chance each message is opened once delivered (as the sandbox draws it), and whether it
        reached the reader in their preferred hour."""
        found = [open_probability(OPEN_RATE, HABIT_OPEN_LIFT,
                                  [int(self.preferred_hour[r]), self.zone[r]] if self.preferred_hour[r] >= 0 else None,
                                  float(at)) for r, at in zip(rows, sent_at, strict=True)]
        return np.array([p for p, _ in found], dtype=float), np.array([h for _, h in found], dtype=bool)

    def readers(self) -> dict[str, list]:
        """Every address the person is known by -> [preferred hour, timezone]: the sandbox's planted habits."""
        return {address: [int(self.preferred_hour[row]), self.zone[row]] for address, row in self.by_email.items()
                if self.preferred_hour[row] >= 0}

    def products_for(self, rows: np.ndarray, catalog: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A product per row: one the person bought before (FAMILIAR_SHARE of the time, when any), else any."""
        picked = catalog[rng.integers(0, len(catalog), len(rows))]
        familiar = rng.random(len(rows)) < FAMILIAR_SHARE
        for i in np.flatnonzero(familiar):
            history = self.bought[rows[i]]
            if len(history):
                picked[i] = history[rng.integers(0, len(history))]
        return picked

    def response_probability(self, rows: np.ndarray, campaigns: list[str], at: int) -> np.ndarray:
        """The chance a message received at `at` causes a purchase: none once the person has churned."""
        planted = np.array([self.uplift.get(c, DEFAULT_UPLIFT) for c in campaigns])
        return np.where(self.churn_at[rows] > at, np.minimum(planted * self.responsiveness[rows], 0.95), 0.0)

    def active_days(self, rows: np.ndarray, since: int, until: int) -> np.ndarray:
        """Days of [since, until) each person spends before churning."""
        return np.clip(np.minimum(self.churn_at[rows], until) - since, 0, None) / DAY

    def in_market(self, since: int, until: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The buying windows overlapping [since, until) before their lead churned: (row, first moment, days)."""
        rows = self.lead_windows[:, 0]
        start = np.maximum(self.lead_windows[:, 1], since)
        end = np.minimum(np.minimum(self.lead_windows[:, 2], until), self.churn_at[rows])
        keep = end > start
        return rows[keep], start[keep], (end[keep] - start[keep]) / DAY

    def organic_probability(self, rows: np.ndarray, since: int, days: float) -> np.ndarray:
        """The chance of at least one organic purchase in the `days` days from `since`."""
        return 1 - np.exp(-self.organic_rate[rows] * self.active_days(rows, since, since + int(days * DAY)))


def load(landing: Path, seed: int, origin: int, uplift: Mapping[str, float] | None = None) -> Customers:
    """The generator's people with traits drawn from `seed` (same seed, same world); `origin` is the
    moment the world began (epoch seconds), which the churn days count from. `uplift` replaces the planted
    effect of the campaigns it names."""
    truth = Path(landing) / "_truth"
    people = pl.read_parquet(truth / "people.parquet").sort("person_id")
    records = pl.read_parquet(truth / "person_map.parquet")
    n = people.height
    row_of = {int(p): i for i, p in enumerate(people["person_id"].to_list())}

    accounts = _shop_accounts(Path(landing), records)
    shop_id: list[str | None] = [None] * n
    account_email: list[str | None] = [None] * n
    for person, account, address in accounts.iter_rows():
        i = row_of.get(person)
        if i is not None and shop_id[i] is None:
            shop_id[i], account_email[i] = account, address

    by_email: dict[str, int] = {}
    for column in ("email", "personal_email", "other_surname_email"):
        for i, address in enumerate(people[column].to_list()):
            if address:
                by_email.setdefault(address.strip().lower(), i)
    for i, address in enumerate(account_email):
        if address:
            by_email.setdefault(address.strip().lower(), i)
    contacts = _crm_contacts(Path(landing), records)
    for address, person in contacts.drop_nulls("email").select("email", "person_id").iter_rows():
        if person in row_of:
            by_email.setdefault(address.strip().lower(), row_of[person])

    emails = [e or a for e, a in zip(people["email"].to_list(), account_email, strict=True)]
    row_of_account = {a: i for i, a in enumerate(shop_id) if a is not None}
    orders = _orders(Path(landing), row_of_account, by_email)
    rng = stream(seed, "simulator/traits")
    # The generator's own orders only: what the world adds must not move the traits it was drawn from.
    generated = orders.filter(~pl.col("simulated") & (pl.col("status") == "completed")).unique("order_id")
    past = np.bincount(generated["row"].to_numpy(), minlength=n)
    rate = rng.gamma(ORGANIC_SHAPE + past, 1 / (ORGANIC_SHAPE / ORGANIC_MEAN + HISTORY_DAYS))
    hazard = rng.exponential(CHURN_MEAN, n)  # Gamma with shape 1
    lead_email, intent, windows, converts_at = _leads(contacts, row_of, past, origin,
                                                      stream(seed, "simulator/leads"))
    return Customers(
        person_ids=people["person_id"].to_numpy(),
        shop_customer_id=shop_id,
        email=emails,
        organic_rate=rate,
        visit_rate=rng.gamma(VISIT_SHAPE, VISIT_MEAN / VISIT_SHAPE, n),
        responsiveness=rng.gamma(2.0, 0.5, n),
        churn_at=origin + np.minimum(rng.exponential(1 / hazard) * DAY, NEVER - origin).astype(np.int64),
        lead_email=lead_email,
        lead_intent=intent,
        lead_windows=windows,
        converts_at=converts_at,
        by_email=by_email,
        bought=_bought(Path(landing), orders, n),
        preferred_hour=(people["preferred_hour"].fill_null(-1).to_numpy() if "preferred_hour" in people.columns
                        else np.full(n, -1)),
        zone=zone_of(people["country"]).to_list(),
        uplift={**UPLIFT, **(uplift or {})},
    )


def _shop_accounts(landing: Path, records: pl.DataFrame) -> pl.DataFrame:
    """person_id, shop_customer_id, the account's email: from the shop's customer exports."""
    files = sorted((landing / "shop" / "customers").glob("*.csv"))
    accounts = (pl.concat([pl.read_csv(f, columns=["shop_customer_id", "email"], infer_schema=False,
                                       truncate_ragged_lines=True) for f in files])
                if files else pl.DataFrame(schema={"shop_customer_id": pl.String, "email": pl.String}))
    mapped = records.filter(pl.col("source") == "shop_customers").select("person_id",
                                                                        pl.col("record_id").alias("shop_customer_id"))
    return mapped.join(accounts.unique("shop_customer_id"), on="shop_customer_id", how="left").select(
        "person_id", "shop_customer_id", "email")


def _read_shop(landing: Path, folder: str, columns: list[str]) -> pl.DataFrame:
    """Every export of a shop folder, as text, with whether the simulator wrote the file."""
    files = sorted((landing / "shop" / folder).glob("*.csv"))
    schema = dict.fromkeys(columns, pl.String) | {"simulated": pl.Boolean}
    return pl.concat([pl.read_csv(f, columns=columns, infer_schema=False, truncate_ragged_lines=True)
                      .with_columns(simulated=pl.lit("_simulated" in f.name)) for f in files]
                     ) if files else pl.DataFrame(schema=schema)


def _orders(landing: Path, row_of_account: dict[str, int], by_email: dict[str, int]) -> pl.DataFrame:
    """order_id, row (the person), status, simulated: the orders the shop exported that name a known person."""
    orders = _read_shop(landing, "orders", ["order_id", "shop_customer_id", "email", "status"])
    rows = [row_of_account.get(account) if account else None for account in orders["shop_customer_id"].to_list()]
    rows = [r if r is not None else by_email.get((e or "").strip().lower()) for r, e in
            zip(rows, orders["email"].to_list(), strict=True)]
    return orders.select("order_id", "status", "simulated", row=pl.Series(rows, dtype=pl.Int64)).drop_nulls("row")


def _bought(landing: Path, orders: pl.DataFrame, n: int) -> list[np.ndarray]:
    """Per person, the product ids of the order lines the shop exported (the generator's and the simulator's)."""
    items = _read_shop(landing, "order_items", ["order_id", "product_id"]).drop_nulls(["order_id", "product_id"])
    owners = orders.select("order_id", "row").unique("order_id")
    lines = items.join(owners, on="order_id").with_columns(
        pl.col("product_id").cast(pl.Int64, strict=False)).drop_nulls("product_id")
    bought: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * n
    for row, products in lines.group_by("row").agg("product_id").iter_rows():
        bought[row] = np.asarray(products, dtype=np.int64)
    return bought


def _crm_contacts(landing: Path, records: pl.DataFrame) -> pl.DataFrame:
    """person_id, email, lifecycle_stage: each CRM contact's latest exported version."""
    files = sorted((landing / "crm" / "contacts").glob("*.csv"))
    columns = ["contact_id", "email", "lifecycle_stage", "updated_at"]
    if not files:
        return pl.DataFrame(schema={"person_id": pl.Int64, "email": pl.String, "lifecycle_stage": pl.String})
    contacts = pl.concat([pl.read_csv(f, columns=columns, infer_schema=False, truncate_ragged_lines=True)
                          for f in files]).sort("updated_at", nulls_last=False).unique("contact_id", keep="last")
    mapped = records.filter(pl.col("source") == "crm_contacts").join(
        contacts, left_on="record_id", right_on="contact_id")
    return mapped.select(pl.col("person_id").cast(pl.Int64), "email", "lifecycle_stage")


def _leads(contacts: pl.DataFrame, row_of: dict[int, int], past: np.ndarray, origin: int,
           rng: np.random.Generator) -> tuple[list[str | None], np.ndarray, np.ndarray, np.ndarray]:
    """Open leads (a CRM contact at a lead stage with an email, no order in the shop's history): their
    address, an intent, their buying windows and the moment they would buy for the first time."""
    n = len(past)
    email: list[str | None] = [None] * n
    open_leads = contacts.filter(pl.col("lifecycle_stage").str.strip_chars().str.to_lowercase().is_in(LEAD_STAGES))
    addresses = open_leads.select("person_id", email=pl.col("email").str.strip_chars()).filter(pl.col("email") != "")
    for person, address in addresses.iter_rows():  # an export's blank address is no address
        i = row_of.get(person)
        if i is not None and past[i] == 0 and email[i] is None:
            email[i] = address
    is_lead = np.array([e is not None for e in email], dtype=bool)
    intent = np.where(is_lead, rng.gamma(0.5, 2.0, n), 0.0)
    windows, converts_at = _buying_windows(np.flatnonzero(is_lead), intent, origin, rng)
    return email, intent, windows, np.where(is_lead, converts_at, NEVER).astype(np.int64)


def _buying_windows(leads: np.ndarray, intent: np.ndarray, origin: int,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each lead's buying windows from `origin` on, one after another until one ends in a purchase or
    the horizon: (row, start, end) rows, and per row of `intent` the moment of that purchase (NEVER)."""
    converts_at = np.full(len(intent), NEVER, dtype=np.int64)
    horizon = origin + WINDOWS_HORIZON_DAYS * DAY
    clock = np.full(len(leads), float(origin))
    drawn = []
    searching = np.ones(len(leads), dtype=bool)
    while searching.any():
        at = np.flatnonzero(searching)
        rows = leads[at]
        start = clock[at] + rng.exponential(1.0, len(at)) / np.maximum(intent[rows] * WINDOW_START_MEAN, 1e-12) * DAY
        length = rng.exponential(WINDOW_DAYS_MEAN * DAY, len(at))
        wait = rng.exponential(DAY / IN_MARKET_CONVERSION, len(at))
        inside = start < horizon
        buys = inside & (wait < length)
        end = start + np.where(buys, wait, length)
        drawn.append(np.column_stack([rows[inside], start[inside], end[inside]]).astype(np.int64))
        converts_at[rows[buys]] = (start[buys] + wait[buys]).astype(np.int64)
        clock[at] = end
        searching[at[~inside | buys]] = False
    windows = np.concatenate(drawn) if drawn else np.zeros((0, 3), dtype=np.int64)
    return windows, converts_at


def expected_uplift(p_respond: np.ndarray, p_organic: np.ndarray) -> float:
    """What a holdout comparison should find among recipients: the purchases the message added, on
    top of the ones that would have happened anyway (someone who buys on their own still converts once)."""
    return float(np.mean(p_respond * (1 - p_organic))) if len(p_respond) else 0.0
