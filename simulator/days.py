"""One step of the simulated world: read the mail Attiva sent, then let time pass and land the orders.

The world keeps its state beside the generator's truth, in `<landing>/_truth/simulation/`:
`state.json` (its clock, how much of the sandbox's mailbox it has read, the next order number),
`pending.parquet` (purchases a message caused that are not due yet) and `messages.parquet`, the
planted truth per message received: who, which campaign, the chance it had to cause a purchase,
the chance of an organic one in the window, and whether it did. The warehouse never reads them
(ingestion skips `_` folders); the simulator's summary compares them with what Attiva measured.

Orders reach the warehouse as the shop exports them: a CSV of orders and one of order lines
per simulated day under `shop/orders/` and `shop/order_items/`, ingested like any other file.
A purchase a message caused carries the message's UTM tags (the customer clicked through) and the
address the message went to as checkout email. Visits land as the site's events (`events/`,
JSON lines): logged-in product views and add-to-carts. The shop keeps the promotions running
when the simulation starts running until the end of the simulated month (a promotions file), so
the promotion audiences do not empty because the clock moved.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from generator.events import FORMS
from generator.streams import stream
from sandbox.engagement import epoch
from simulator.world import (
    CART_SHARE,
    DAY,
    IDLE_FORMS,
    IN_MARKET_FORMS,
    IN_MARKET_VISITS,
    RESPONSE_DELAY_MEAN,
    WINDOW_DAYS,
    Customers,
)

FOLDER = "_truth/simulation"
ORDER_ID_BASE = 9_000_000_000  # far above the generator's order numbers
STAMP = "%Y-%m-%dT%H:%M:%SZ"
LEAD_FORMS = ("contact_sales", "download", "webinar")  # the site's forms a lead fills in (generator.events.FORMS)
PENDING_SCHEMA = {"row": pl.Int64, "at": pl.Int64, "campaign": pl.String, "email": pl.String}
MESSAGE_SCHEMA = {"message_id": pl.String, "campaign": pl.String, "person_id": pl.Int64, "received_at": pl.Int64,
                  "p_respond": pl.Float64, "p_organic": pl.Float64, "responded": pl.Boolean,
                  "response_at": pl.Int64, "template": pl.String, "p_open": pl.Float64, "in_hour": pl.Boolean}


@dataclass
class State:
    clock: int  # epoch seconds: the world has lived up to here
    origin: int = 0  # epoch seconds: when the world began (churn days count from here); 0: at the clock
    mail_cursor: int = 0  # lines of the sandbox's messages.jsonl already read
    next_order: int = 0
    unknown_recipients: int = 0  # mail to addresses no simulated person has (seed lists, typos)

    def __post_init__(self) -> None:
        self.origin = self.origin or self.clock  # a state written before churn was planted

    @classmethod
    def read(cls, landing: Path) -> State | None:
        path = Path(landing) / FOLDER / "state.json"
        return cls(**json.loads(path.read_text())) if path.exists() else None

    def write(self, landing: Path) -> None:
        folder = Path(landing) / FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "state.json").write_text(json.dumps(self.__dict__, indent=2) + "\n")


@dataclass(frozen=True)
class DayReport:
    received: int
    caused: int  # purchases the received messages will cause (now or later in the window)
    organic: int
    responses_landed: int
    orders_file: Path | None


def receive(landing: Path, customers: Customers, state: State, mailbox: Path, seed: int) -> tuple[int, int]:
    """Read the mail sent since the last step, received when its Date header says (else at the world's clock);
    returns (read, purchases caused). Each message's planted chance of being opened is kept beside it."""
    lines = mailbox.read_text().splitlines() if mailbox.exists() else []
    new = [json.loads(line) for line in lines[state.mail_cursor:] if line.strip()]
    state.mail_cursor = len(lines)
    rows, campaigns, ids, emails, sent, templates = [], [], [], [], [], []
    for message in new:
        message_id = message.get("attiva_message_id") or ""
        address = (message.get("rcpt_tos") or [""])[0].strip().lower()
        row = customers.by_email.get(address)
        if row is None or not message_id:
            state.unknown_recipients += 1
            continue
        rows.append(row)
        campaigns.append(message_id.split(".", 1)[0])
        ids.append(message_id)
        emails.append(address)
        sent.append(int(epoch(message["date"])) if message.get("date") else state.clock)
        templates.append(message.get("attiva_template"))
    if not rows:
        return len(new), 0
    rng = stream(seed, f"simulator/responses/{state.clock}")
    at = np.array(rows)
    sent_at = np.array(sent, dtype=np.int64)  # as the sandbox's recipients read it (sandbox/engagement.py)
    received_at = np.maximum(sent_at, state.clock)
    p_respond = customers.response_probability(at, campaigns, state.clock)
    delay = rng.exponential(RESPONSE_DELAY_MEAN, len(at)).astype(np.int64)
    responded = (rng.random(len(at)) < p_respond) & (delay < WINDOW_DAYS * DAY)
    response_at = np.where(responded, received_at + delay, 0)
    p_open, in_hour = customers.open_probability(at, sent_at)
    truth = pl.DataFrame({
        "message_id": ids, "campaign": campaigns, "person_id": customers.person_ids[at], "received_at": received_at,
        "p_respond": p_respond, "p_organic": customers.organic_probability(at, state.clock, WINDOW_DAYS),
        "responded": responded, "response_at": pl.Series(response_at).replace(0, None), "template": templates,
        "p_open": p_open, "in_hour": in_hour}, schema=MESSAGE_SCHEMA)
    _append(landing, "messages.parquet", truth, MESSAGE_SCHEMA)
    caused = pl.DataFrame({"row": at[responded], "at": response_at[responded],
                           "campaign": np.array(campaigns)[responded], "email": np.array(emails)[responded]},
                          schema=PENDING_SCHEMA)
    _append(landing, "pending.parquet", caused, PENDING_SCHEMA)
    return len(new), int(responded.sum())


def live_until(landing: Path, customers: Customers, state: State, until: int, seed: int) -> tuple[int, int, Path | None]:
    """Let the world live from its clock to `until`: organic purchases, and those messages caused that
    fall due. Lands them as one day's shop export; returns (organic, caused, the orders file)."""
    since = state.clock
    if until <= since:
        return 0, 0, None
    rng = stream(seed, f"simulator/organic/{since}")
    everyone = np.arange(len(customers.person_ids))
    active = customers.active_days(everyone, since, until)
    counts = rng.poisson(customers.organic_rate * active)
    can_buy = np.array([s is not None or e is not None
                        for s, e in zip(customers.shop_customer_id, customers.email, strict=True)])
    buyers = np.repeat(np.flatnonzero(can_buy), counts[can_buy])
    organic = pl.DataFrame({"row": buyers, "at": _moments(rng, since, active[buyers]),
                            "campaign": None, "email": None}, schema=PENDING_SCHEMA)
    converting = np.flatnonzero((customers.converts_at > since) & (customers.converts_at <= until)
                                & (customers.converts_at < customers.churn_at))
    first_orders = pl.DataFrame({"row": converting, "at": customers.converts_at[converting], "campaign": None,
                                 "email": [customers.lead_email[r] for r in converting]}, schema=PENDING_SCHEMA)
    organic = pl.concat([organic, first_orders])
    pending = _read(landing, "pending.parquet", PENDING_SCHEMA)
    due = pending.filter(pl.col("at") <= until)
    _write(landing, "pending.parquet", pending.filter(pl.col("at") > until))
    orders = pl.concat([organic, due]).sort("at")
    path = _land_orders(landing, customers, state, orders, until, rng) if orders.height else None
    _land_visits(landing, customers, since, until, rng)
    _land_forms(landing, customers, since, until, rng)
    _land_lead_visits(landing, customers, since, until, rng)
    state.clock = until
    return organic.height, due.height, path


def _moments(rng: np.random.Generator, since: int, active_days: np.ndarray) -> np.ndarray:
    """A moment after `since` within each person's active days (epoch seconds)."""
    return since + 1 + (rng.random(len(active_days)) * np.maximum(active_days * DAY - 1, 0)).astype(np.int64)


def _land_orders(landing: Path, customers: Customers, state: State, orders: pl.DataFrame, until: int,
                 rng: np.random.Generator) -> Path:
    products = _products(landing)
    chosen = customers.products_for(orders["row"].to_numpy(), products["product_id"].to_numpy(), rng)
    prices = dict(zip(products["product_id"].to_list(), products["price"].to_list(), strict=True))
    known = np.array([p in prices for p in chosen])  # bought before, since withdrawn: any active product instead
    chosen[~known] = products["product_id"].to_numpy()[rng.integers(0, products.height, int((~known).sum()))]
    quantity = rng.choice([1, 1, 1, 2, 3], orders.height)
    price = np.array([prices[p] for p in chosen])
    ids = ORDER_ID_BASE + state.next_order + np.arange(orders.height)
    state.next_order += orders.height
    rows = orders["row"].to_numpy()
    campaign = orders["campaign"]
    stamp = pl.from_epoch(orders["at"], time_unit="s").dt.strftime(STAMP)
    shop = pl.DataFrame({
        "order_id": ids.astype(str),
        "shop_customer_id": [customers.shop_customer_id[r] for r in rows],
        "email": [e or customers.email[r] for e, r in zip(orders["email"].to_list(), rows, strict=True)],
        "phone": None, "ordered_at": stamp, "status": "completed",
        "total_amount": np.round(price * quantity, 2), "channel": "web",
        "utm_source": None, "utm_medium": None, "utm_campaign": campaign, "coupon_code": None,
    }).with_columns(  # a purchase a message caused came through its link
        utm_source=pl.when(pl.col("utm_campaign").is_not_null()).then(pl.lit("attiva")),
        utm_medium=pl.when(pl.col("utm_campaign").is_not_null()).then(pl.lit("email")))
    items = pl.DataFrame({"order_item_id": ids.astype(str), "order_id": ids.astype(str),
                          "product_id": chosen, "quantity": quantity,
                          "unit_price": price})
    day = _day(until)
    orders_path = Path(landing) / "shop" / "orders" / f"shop_orders_{day}_simulated.csv"
    orders_path.parent.mkdir(parents=True, exist_ok=True)
    shop.write_csv(orders_path)
    items_path = Path(landing) / "shop" / "order_items" / f"shop_order_items_{day}_simulated.csv"
    items_path.parent.mkdir(parents=True, exist_ok=True)
    items.write_csv(items_path)
    return orders_path


def _land_visits(landing: Path, customers: Customers, since: int, until: int, rng: np.random.Generator) -> int:
    """Logged-in visits between `since` and `until`: 1-4 product views, a third of them an add to cart."""
    logged_in = np.array([s is not None for s in customers.shop_customer_id])
    active = customers.active_days(np.arange(len(logged_in)), since, max(since, until - 600))
    counts = rng.poisson(customers.visit_rate * active) * logged_in
    visitors = np.repeat(np.arange(len(counts)), counts)
    if not len(visitors):
        return 0
    catalog = _products(landing)["product_id"].to_numpy()
    views = rng.integers(1, 5, len(visitors))
    carts = rng.random(len(visitors)) < CART_SHARE
    start = _moments(rng, since, active[visitors])
    session = np.arange(len(visitors))
    # one row per event: the views, then the add to cart on the last product viewed
    per_visit = views + carts
    visit = np.repeat(session, per_visit)
    nth = np.arange(len(visit)) - np.repeat(np.cumsum(per_visit) - per_visit, per_visit)
    is_cart = nth >= np.repeat(views, per_visit)
    product = customers.products_for(visitors[visit], catalog, rng)
    product = np.where(is_cart, np.roll(product, 1), product)  # the cart holds the product just viewed
    tag = f"{since:x}"
    frame = pl.DataFrame({
        "event_id": [f"sim-{tag}-{i}" for i in range(len(visit))],
        "event_type": np.where(is_cart, "add_to_cart", "product_view"),
        "occurred_at": pl.from_epoch(pl.Series(start[visit] + nth * 45), time_unit="s").dt.strftime(STAMP),
        "user_id": [customers.shop_customer_id[r] for r in visitors[visit]],
        "platform": "web", "session_id": [f"sim-{tag}-s{v}" for v in visit],
        "product_id": product, "is_cart": is_cart,
    }).with_columns(quantity=pl.when("is_cart").then(pl.lit(1, pl.Int64))).drop("is_cart")
    path = Path(landing) / "events" / f"events_{_day(until)}_simulated.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_ndjson(path)
    return frame.height


def _land_forms(landing: Path, customers: Customers, since: int, until: int, rng: np.random.Generator) -> int:
    """The open leads' form submissions between `since` and `until`, until they convert or churn: the
    site's form_submit events with the address they typed, from a device of their own. Often in a
    buying window, now and then outside one."""
    open_leads = np.flatnonzero(customers.lead_intent > 0)
    end = np.minimum(np.minimum(customers.converts_at[open_leads], customers.churn_at[open_leads]), until)
    idle_days = np.clip(end - since, 0, None) / DAY
    rows, first, days = customers.in_market(since, until)
    idle = rng.poisson(IDLE_FORMS * idle_days)
    eager = rng.poisson(IN_MARKET_FORMS * days)
    leads = np.concatenate([np.repeat(open_leads, idle), np.repeat(rows, eager)])
    moments = np.concatenate([_moments(rng, since, np.repeat(idle_days, idle)),
                              _moments(rng, 0, np.repeat(days, eager)) + np.repeat(first, eager) - 1])
    if not len(leads):
        return 0
    tag = f"{since:x}"
    forms = rng.choice(list(LEAD_FORMS), len(leads))
    frame = pl.DataFrame({
        "event_id": [f"sim-{tag}-form-{i}" for i in range(len(leads))], "event_type": "form_submit",
        "occurred_at": pl.from_epoch(pl.Series(moments), time_unit="s").dt.strftime(STAMP),
        "anonymous_id": [_device(customers, r) for r in leads],
        "email": [customers.lead_email[r] for r in leads], "platform": "web",
        "session_id": [f"sim-{tag}-form-s{i}" for i in range(len(leads))],
        "url": [f"https://www.emporionove.it{FORMS[f][0]}" for f in forms], "form_name": forms,
        "lead_source": [FORMS[f][1][0] for f in forms]})
    path = Path(landing) / "events" / f"events_{_day(until)}_forms_simulated.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_ndjson(path)
    return frame.height


def _land_lead_visits(landing: Path, customers: Customers, since: int, until: int, rng: np.random.Generator) -> int:
    """Leads in a buying window look at the products: 1-4 product views a visit from their own device,
    not logged in (the device is theirs through the forms they filled in from it)."""
    rows, first, days = customers.in_market(since, until)
    visits = rng.poisson(IN_MARKET_VISITS * days)
    visitors = np.repeat(rows, visits)
    if not len(visitors):
        return 0
    start = _moments(rng, 0, np.repeat(days, visits)) + np.repeat(first, visits) - 1
    views = rng.integers(1, 5, len(visitors))
    visit = np.repeat(np.arange(len(visitors)), views)
    nth = np.arange(len(visit)) - np.repeat(np.cumsum(views) - views, views)
    catalog = _products(landing)["product_id"].to_numpy()
    tag = f"{since:x}"
    frame = pl.DataFrame({
        "event_id": [f"sim-{tag}-lead-{i}" for i in range(len(visit))], "event_type": "product_view",
        "occurred_at": pl.from_epoch(pl.Series(start[visit] + nth * 45), time_unit="s").dt.strftime(STAMP),
        "anonymous_id": [_device(customers, r) for r in visitors[visit]], "platform": "web",
        "session_id": [f"sim-{tag}-lead-s{v}" for v in visit],
        "product_id": catalog[rng.integers(0, len(catalog), len(visit))]})
    path = Path(landing) / "events" / f"events_{_day(until)}_lead_visits_simulated.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_ndjson(path)
    return frame.height


def _device(customers: Customers, row: int) -> str:
    return f"sim-device-{customers.person_ids[row]}"


def keep_promotions_running(landing: Path, since: int, until: int) -> Path | None:
    """The promotions running at `since` extended to `until`: a promotions file, as the shop exports it."""
    files = sorted((Path(landing) / "shop" / "promotions").glob("*.csv"))
    if not files:
        return None
    frame = pl.concat([pl.read_csv(f, infer_schema=False, truncate_ragged_lines=True) for f in files],
                      how="diagonal_relaxed").unique("promotion_id", keep="last")
    at = pl.col("ends_at").str.to_datetime(strict=False, time_zone="UTC")
    starts = pl.col("starts_at").str.to_datetime(strict=False, time_zone="UTC")
    moment = pl.from_epoch(pl.lit(since), time_unit="s").dt.replace_time_zone("UTC")
    running = frame.filter((starts <= moment) & (at > moment))
    if running.is_empty():
        return None
    end = pl.from_epoch(pl.Series([until]), time_unit="s").dt.strftime("%Y-%m-%d %H:%M:%S").item()
    path = Path(landing) / "shop" / "promotions" / f"shop_promotions_{_day(since)}_simulated.csv"
    running.with_columns(ends_at=pl.lit(end)).write_csv(path)
    return path


def _day(epoch: int) -> str:
    return pl.from_epoch(pl.Series([epoch]), time_unit="s").dt.strftime("%Y%m%dT%H%M").item()


def _products(landing: Path) -> pl.DataFrame:
    files = sorted((Path(landing) / "shop" / "products").glob("*.csv"))
    frame = pl.concat([pl.read_csv(f, columns=["product_id", "price", "is_active"], infer_schema=False,
                                   truncate_ragged_lines=True) for f in files])
    frame = frame.filter(pl.col("is_active") == "true").with_columns(
        pl.col("product_id").cast(pl.Int64, strict=False), pl.col("price").cast(pl.Float64, strict=False)
    ).drop_nulls().unique("product_id", keep="last")
    return frame.sort("product_id")


def _read(landing: Path, name: str, schema: dict) -> pl.DataFrame:
    """The file with every column of `schema` (null where a world written before it had none)."""
    path = Path(landing) / FOLDER / name
    if not path.exists():
        return pl.DataFrame(schema=schema)
    frame = pl.read_parquet(path)
    return frame.with_columns(pl.lit(None, dtype).alias(c) for c, dtype in schema.items() if c not in frame.columns)


def _write(landing: Path, name: str, frame: pl.DataFrame) -> None:
    folder = Path(landing) / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(folder / name)


def _append(landing: Path, name: str, frame: pl.DataFrame, schema: dict) -> None:
    _write(landing, name, pl.concat([_read(landing, name, schema), frame]))


def write_traits(landing: Path, customers: Customers) -> None:
    """The planted traits per person (`traits.parquet`): what a model of the warehouse should find."""
    _write(landing, "traits.parquet", pl.DataFrame({
        "person_id": customers.person_ids, "organic_rate": customers.organic_rate,
        "visit_rate": customers.visit_rate, "responsiveness": customers.responsiveness,
        "churn_at": _utc(customers.churn_at), "lead_intent": customers.lead_intent,
        "converts_at": _utc(customers.converts_at)}))
    windows = customers.lead_windows
    _write(landing, "lead_windows.parquet", pl.DataFrame({
        "person_id": customers.person_ids[windows[:, 0]], "starts_at": _utc(windows[:, 1]),
        "ends_at": _utc(windows[:, 2])}))


def _utc(epochs: np.ndarray) -> pl.Series:
    return pl.from_epoch(pl.Series(epochs), time_unit="s").dt.replace_time_zone("UTC")


def traits(landing: Path) -> pl.DataFrame:
    return pl.read_parquet(Path(landing) / FOLDER / "traits.parquet")


def lead_windows(landing: Path) -> pl.DataFrame:
    """The planted buying windows: person_id, starts_at, ends_at."""
    return pl.read_parquet(Path(landing) / FOLDER / "lead_windows.parquet")


def messages(landing: Path) -> pl.DataFrame:
    """The planted truth per message the world received."""
    return _read(landing, "messages.parquet", MESSAGE_SCHEMA)
