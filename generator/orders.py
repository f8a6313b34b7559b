"""Orders and order lines over the three years before as_of.

Seasonal (November/December peak, August dip, Black Friday), heavy-tailed per
customer (many one-order customers, some with ten or more), each customer
active over a window so some have lapsed. Baskets mix a customer's favourite
product, popular products and the companions of the first item, so products
that go together are bought together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from generator import mess
from generator.campaigns import campaigns
from generator.catalog import Catalog
from generator.clock import DAY, OFFICE_HOURS, Calendar
from generator.streams import increasing_ids, pick

HISTORY_DAYS = 3 * 365
GUEST_CHECKOUT_BY_ACCOUNT_HOLDERS = 0.04
STATUSES = ("completed", "cancelled", "refunded")
UTM = (
    ("google", "cpc", "brand_search", 0.25),
    ("google", "cpc", "generic_shopping", 0.15),
    ("facebook", "paid_social", "prospecting", 0.12),
    ("instagram", "paid_social", "retargeting", 0.12),
    ("newsletter", "email", None, 0.25),  # the campaign the customer last received
    ("awin", "affiliate", "affiliate_program", 0.08),
    ("bing", "cpc", "brand_search", 0.03),
)
COUPONS = ("BENVENUTO10", "WELCOME10", "SPEDIZIONEGRATIS", "CAFFE15", "AMICO-10", "benvenuto10")


@dataclass(frozen=True)
class Orders:
    orders: pl.DataFrame  # one row per order, sorted by ordered_at (epoch s); person_index says whose
    items: pl.DataFrame  # one row per order line, with order_index and product_index

    def person_times(self, n_people: int, completed_only: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Each person's first and last order time (epoch s); -1 for people without orders."""
        frame = self.orders.filter(pl.col("status") == "completed") if completed_only else self.orders
        person = frame["person_index"].to_numpy()
        at = frame["ordered_at"].to_numpy()
        first = np.full(n_people, np.iinfo(np.int64).max)
        last = np.full(n_people, -1, dtype=np.int64)
        np.minimum.at(first, person, at)
        np.maximum.at(last, person, at)
        return np.where(last >= 0, first, -1), last


def orders(rng: np.random.Generator, people: pl.DataFrame, catalog: Catalog, as_of: int) -> Orders:
    """Every order and order line of the shop's three-year history."""
    n = people.height
    b2b = people["is_b2b"].to_numpy()
    cal = Calendar(as_of, HISTORY_DAYS)

    buyer = people["in_shop"].to_numpy() & (rng.random(n) < np.where(b2b, 0.9, 0.78))
    n_account = np.where(buyer, 1 + rng.negative_binomial(np.where(b2b, 1.0, 0.6), np.where(b2b, 0.12, 0.2)), 0)
    n_account = np.minimum(n_account, 150)
    n_guest = np.where(people["guest_buyer"].to_numpy(), 1 + rng.negative_binomial(0.5, 0.6, n), 0)
    total = n_account + n_guest

    # Each customer buys within an active window; windows ending long before as_of are lapsed customers.
    span = (total * rng.exponential(80, n)).astype(np.int64) + rng.integers(0, 60, n)
    middle = cal.sample_days(rng, 0, cal.days - 1, n)
    start = np.maximum(0, middle - span // 2)
    end = np.minimum(middle + span // 2, cal.days - 1)

    person = np.repeat(np.arange(n), total)
    m = len(person)
    nth = np.arange(m) - np.repeat(np.cumsum(total) - total, total)
    # Account holders check out as guests now and then, when they have an email to type.
    has_email = people["shop_email"].is_not_null().to_numpy()[person]
    is_guest = (nth >= n_account[person]) | (has_email & (rng.random(m) < GUEST_CHECKOUT_BY_ACCOUNT_HOLDERS))
    order_b2b = b2b[person]
    day = cal.sample_days(rng, start[person], end[person], m)
    at = np.where(order_b2b, cal.times(rng, day, OFFICE_HOURS), cal.times(rng, day))
    order = np.argsort(at, kind="stable")
    person, is_guest, order_b2b, at = person[order], is_guest[order], order_b2b[order], at[order]

    channel = np.where(
        is_guest,
        pick(rng, m, [0.9, 0.1, 0.0]),
        np.where(order_b2b, pick(rng, m, [0.85, 0.0, 0.15]), pick(rng, m, [0.58, 0.27, 0.15])),
    )
    status = pick(rng, m, [0.93, 0.04, 0.03])
    status = np.where((status == STATUSES.index("refunded")) & (at > as_of - 7 * DAY), 0, status)  # too soon
    frame = pl.DataFrame(
        {
            "order_index": np.arange(m),
            "order_id": pl.Series(increasing_ids(rng, m, 1_000_000, 3)).cast(pl.String),
            "person_index": person,
            "is_guest": is_guest,
            "is_b2b": order_b2b,
            "ordered_at": at,
            "status": pl.Series(STATUSES).gather(status),
            "channel": pl.Series(["web", "app", "store"]).gather(channel),
        }
    )
    frame = frame.with_columns(**_marketing(rng, frame, as_of), **_contacts(rng, frame, people))
    items = _items(rng, frame, people, catalog)
    totals = np.bincount(
        items["order_index"].to_numpy(),
        weights=items["quantity"].to_numpy() * items["unit_price"].to_numpy(),
        minlength=m,
    )
    return Orders(orders=frame.with_columns(total_amount=pl.Series(np.round(totals, 2))), items=items)


def _marketing(rng: np.random.Generator, frame: pl.DataFrame, as_of: int) -> dict[str, pl.Series]:
    """utm fields on a share of web and app orders, coupon codes on a few."""
    m = frame.height
    online = (frame["channel"] != "store").to_numpy()
    tagged = online & (rng.random(m) < 0.35)
    which = pick(rng, m, [u[3] for u in UTM])
    source = pl.select(pl.when(pl.Series(tagged)).then(pl.Series([u[0] for u in UTM]).gather(which))).to_series()
    medium = pl.select(pl.when(pl.Series(tagged)).then(pl.Series([u[1] for u in UTM]).gather(which))).to_series()
    campaign = pl.Series([u[2] for u in UTM], dtype=pl.String).gather(which)

    # Email-driven orders carry the name of the latest campaign sent before the order.
    sent = campaigns(as_of)
    at = frame["ordered_at"].to_numpy()
    latest = np.searchsorted(sent["sent_at"].to_numpy(), at, side="right") - 1
    if sent.height:
        recent = pl.select(
            pl.when(pl.lit(pl.Series(latest >= 0))).then(pl.lit(sent["campaign"].gather(np.maximum(latest, 0))))
        ).to_series()
    else:
        recent = pl.repeat(None, m, eager=True, dtype=pl.String)
    month_label = pl.Series(at * 1000).cast(pl.Datetime("ms")).dt.strftime("%Y-%m") + "_newsletter"
    campaign = pl.select(
        pl.when(~pl.Series(tagged)).then(None)
        .when(pl.lit(campaign).is_null()).then(pl.coalesce(pl.lit(recent), pl.lit(month_label)))
        .otherwise(pl.lit(campaign))
    ).to_series()

    month = frame.select(pl.from_epoch("ordered_at", time_unit="s").dt.month()).to_series()
    pool = pl.Series(COUPONS).gather(rng.integers(0, len(COUPONS), m))
    code = pl.select(
        pl.when(pl.lit(pl.Series(rng.random(m) >= 0.08))).then(None)
        .when(pl.lit(frame["is_b2b"])).then(pl.lit("HORECA5"))
        .when(pl.lit(frame["channel"] == "app")).then(pl.lit("APP10"))
        .when(pl.lit(month) == 11).then(pl.lit("BLACKFRIDAY25"))
        .when(pl.lit(month) == 12).then(pl.lit("NATALE20"))
        .otherwise(pl.lit(pool))
    ).to_series()
    return {"utm_source": source, "utm_medium": medium, "utm_campaign": campaign, "coupon_code": code}


def _contacts(rng: np.random.Generator, frame: pl.DataFrame, people: pl.DataFrame) -> dict[str, pl.Series]:
    """Checkout email and phone, as typed at checkout: always an email for guests, often none in store."""
    m = frame.height
    person = frame["person_index"].to_numpy()
    guest = frame["is_guest"].to_numpy()
    online = (frame["channel"] != "store").to_numpy()
    with_email = np.flatnonzero(guest | (online & (rng.random(m) < 0.9)) | (rng.random(m) < 0.4))
    at_work = (guest & frame["is_b2b"].to_numpy() & (rng.random(m) < 0.5))[with_email]
    who = person[with_email]
    typed = pl.select(
        pl.when(pl.lit(pl.Series(at_work))).then(pl.lit(people["email"].gather(who)))
        .otherwise(pl.lit(people["shop_email"].gather(who)))
    ).to_series()
    typed = mess.with_placeholders(rng, mess.spell_emails(rng, typed, 0.3), 0.02, mess.EMAIL_PLACEHOLDERS)
    email = pl.repeat(None, m, eager=True, dtype=pl.String).scatter(with_email, typed)

    with_phone = np.flatnonzero(rng.random(m) < 0.35)
    who = person[with_phone]
    typed = mess.spell_phones(rng, people["phone"].gather(who), people["country"].gather(who))
    typed = mess.with_placeholders(rng, typed, 0.03, mess.PHONE_PLACEHOLDERS)
    phone = pl.repeat(None, m, eager=True, dtype=pl.String).scatter(with_phone, typed)
    return {"email": email.alias("email"), "phone": phone.alias("phone")}


def _items(rng: np.random.Generator, frame: pl.DataFrame, people: pl.DataFrame, catalog: Catalog) -> pl.DataFrame:
    m = frame.height
    n_people = people.height
    b2b = frame["is_b2b"].to_numpy()
    products = catalog.products
    popularity = catalog.popularity
    coffee = (products["category"] == "coffee").to_numpy()

    # Everyone has a favourite they come back for; for bars and offices it is a coffee.
    favourite = pick(rng, n_people, popularity)
    coffee_idx = np.flatnonzero(coffee)
    office_favourite = coffee_idx[pick(rng, n_people, popularity[coffee_idx])]
    favourite = np.where(people["is_b2b"].to_numpy(), office_favourite, favourite)

    size = np.where(b2b, pick(rng, m, [0.3, 0.25, 0.2, 0.15, 0.1]), pick(rng, m, [0.45, 0.25, 0.15, 0.09, 0.06])) + 1
    order_of = np.repeat(np.arange(m), size)
    k = len(order_of)
    slot = np.arange(k) - np.repeat(np.cumsum(size) - size, size)
    anchor = np.where(rng.random(m) < 0.45, favourite[frame["person_index"].to_numpy()], pick(rng, m, popularity))
    companion = catalog.companions[anchor[order_of], rng.integers(0, catalog.companions.shape[1], k)]
    product = np.where(
        slot == 0,
        anchor[order_of],
        np.where(rng.random(k) < 0.65, companion, pick(rng, k, popularity)),
    )
    # A product appears once per basket: drop a slot that repeats an earlier slot of the same order.
    repeated = np.zeros(k, dtype=bool)
    for back in range(1, int(size.max(initial=1))):
        repeated[back:] |= (order_of[back:] == order_of[:-back]) & (product[back:] == product[:-back])
    order_of, product = order_of[~repeated], product[~repeated]
    k = len(product)

    quantity = pick(rng, k, [0.8, 0.13, 0.05, 0.02]) + 1
    bulk = b2b[order_of] & coffee[product]
    quantity = np.where(bulk, rng.integers(4, 25, k), quantity)

    at = frame["ordered_at"].to_numpy()[order_of]
    discount = _discounts(catalog, product, at)
    price = products["price"].to_numpy()[product]
    unit_price = np.round(price * (1 - discount / 100.0), 2)
    return pl.DataFrame(
        {
            "order_item_id": pl.Series(np.arange(50_000_001, 50_000_001 + k)).cast(pl.String),
            "order_id": frame["order_id"].gather(order_of),
            "product_id": products["product_id"].gather(product),
            "quantity": quantity.astype(np.int64),
            "unit_price": unit_price,
            "order_index": order_of,
            "product_index": product,
        }
    )


def _discounts(catalog: Catalog, product: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The best promotion discount running on each line's product when it was ordered (0 when none)."""
    lines = pl.DataFrame({"line": np.arange(len(product)), "product_index": product, "at": at})
    promos = catalog.promotions.select("product_index", "starts_at", "ends_at", "discount_pct")
    hits = (
        lines.join(promos, on="product_index", how="inner")
        .filter((pl.col("at") >= pl.col("starts_at")) & (pl.col("at") < pl.col("ends_at")))
        .select("line", "discount_pct")
    )
    discount = np.zeros(len(product))
    np.maximum.at(discount, hits["line"].to_numpy(), hits["discount_pct"].to_numpy())
    return discount
