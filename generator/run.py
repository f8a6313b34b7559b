"""One generator run: draw the people and everything they did, then write each source's landing file."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from activations.ingest.contract import SOURCES_BY_NAME
from generator import addresses, exports, identity_mess, mess, send_hours, truth, write
from generator.accounts import accounts
from generator.app import app
from generator.catalog import catalog
from generator.clock import epoch_seconds
from generator.consent import plan, records
from generator.crm import contacts
from generator.engagement import engagement
from generator.events import events
from generator.listening import mentions
from generator.orders import orders
from generator.people import people
from generator.social import social_interactions, social_leads
from generator.streams import stream

TRUTH_FOLDER = "_truth"


@dataclass(frozen=True)
class GenerateSummary:
    """What a run wrote: data lines per source, the files, their size and how long it took."""

    customers: int
    seed: int
    as_of: datetime
    out: Path
    rows: dict[str, int] = field(default_factory=dict)
    files: tuple[Path, ...] = ()
    bytes_written: int = 0
    seconds: float = 0.0

    def __str__(self) -> str:
        width = max((len(name) for name in self.rows), default=0)
        lines = [
            f"Generated {self.customers:,} customers (seed {self.seed}, as of {self.as_of.isoformat()}) "
            f"into {self.out}",
            *(f"  {name:<{width}}  {count:>12,} rows" for name, count in self.rows.items()),
            f"  {len(self.files)} files, {self.bytes_written / 1e6:,.1f} MB, {self.seconds:.1f} s",
        ]
        return "\n".join(lines)


def generate(customers: int, seed: int, out: Path, as_of: datetime) -> GenerateSummary:
    """Write synthetic landing files for `customers` people around `as_of`; same arguments, same bytes."""
    if customers < 1:
        raise ValueError("customers must be at least 1")
    started = time.perf_counter()
    as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    now = epoch_seconds(as_of)
    out = Path(out)
    stamp = as_of.astimezone(UTC).strftime("%Y%m%d")

    # Files are rendered and written on a second thread while the next source is drawn: writing is
    # mostly formatting and disk I/O, which overlap well with drawing on a 2-core machine.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="attiva-write") as writer:
        pending: list[Future[tuple[str, Path, int]]] = []

        def land(name: str, frame: pl.DataFrame) -> None:
            pending.append(writer.submit(_land, name, frame, seed, out, stamp))

        who = people(stream(seed, "people"), customers, now)
        who = who.with_columns(address=addresses.home_addresses(stream(seed, "addresses"), who))
        shop = catalog(stream(seed, "catalog"), customers, now)
        land("shop_products", shop.products)
        land("shop_promotions", shop.promotions)

        history = orders(stream(seed, "orders"), who, shop, now)
        offices = addresses.office_addresses(stream(seed, "addresses.offices"), who)
        history = replace(history, orders=addresses.on_orders(stream(seed, "addresses.orders"), history.orders, who,
                                                              offices))
        first_any, _ = history.person_times(customers, completed_only=False)
        first_completed, _ = history.person_times(customers)
        bought = np.bincount(history.orders.filter(pl.col("status") == "completed")["person_index"].to_numpy(),
                             minlength=customers)
        account = accounts(stream(seed, "accounts"), who, first_any, now)
        shop_customers, shop_mess = identity_mess.disguise(stream(seed, "identity.shop"), account.frame, who,
                                                           "shop_customers", "shop_customer_id")
        # The default shipping address of most accounts, typed by the customers themselves.
        shop_customers = addresses.on_records(stream(seed, "addresses.shop"), shop_customers, who["address"],
                                              "shop_customer_id", share=0.85, messiness=0.3)
        land("shop_customers", shop_customers)
        land("shop_orders", history.orders.with_columns(shop_customer_id=pl.when(~pl.col("is_guest")).then(
            account.shop_id.gather(history.orders["person_index"]))))
        land("shop_order_items", history.items)

        crm, crm_mess = identity_mess.disguise(stream(seed, "identity.crm"),
                                               contacts(stream(seed, "crm"), who, first_completed, now), who,
                                               "crm_contacts", "contact_id")
        # Fewer contacts carry an address, typed by sales reps and imports: messier. A business
        # contact's is the office's.
        crm = addresses.on_records(stream(seed, "addresses.crm"), crm, offices.fill_null(who["address"]),
                                   "contact_id", share=0.45, messiness=0.4)
        land("crm_contacts", crm)
        land("social_leads", social_leads(stream(seed, "social"), who, now))
        interactions, handles = social_interactions(stream(seed, "social.interactions"), who, now)
        land("social_interactions", interactions)
        pending.append(writer.submit(_truth, "social_handles", handles, out))
        web_mentions, mentions_truth = mentions(stream(seed, "listening"), customers, now)
        land("web_mentions", web_mentions)
        pending.append(writer.submit(_truth, "mentions", mentions_truth, out))

        activity = events(stream(seed, "events"), who, account.shop_id, history, shop, now)
        land("events", activity.frame)
        forms = activity.frame.filter(pl.col("event_type") == "form_submit").select(
            "person_index", pl.col("occurred_at") // 1000)
        devices = activity.devices
        del activity  # the writer holds the events until they are written; nothing else needs them
        mobile = app(stream(seed, "app"), devices, who, account.shop_id, now)
        land("app_installations", mobile.installations)
        pending.append(writer.submit(_truth, "uninstalled_push_tokens", mobile.uninstalled_tokens, out))

        # What the truth and consent still need from the shop history; the rest can go.
        identities = truth.person_map(crm, shop_customers, devices, history.orders)
        del shop_customers
        first_guest_order = _first_at(customers, history.orders.filter(pl.col("is_guest")), "ordered_at")
        first_contact = _first_at(customers, crm, "created_at")
        del history, crm

        consent_plan = plan(stream(seed, "consent.plan"), who, account.created_at, first_guest_order,
                            _first_at(customers, forms, "occurred_at"), first_contact, now)
        who = who.with_columns(preferred_hour=send_hours.preferred_hours(stream(seed, "send_hours"), who, bought))
        habits = send_hours.Habits(stream(seed, "send_hours/opens"), who["preferred_hour"].to_numpy(),
                                   send_hours.zone_of(who["country"]).to_numpy())
        esp, unsubscribes = engagement(stream(seed, "engagement"), who, consent_plan, now, habits)
        land("email_engagement", esp)
        del esp
        consent = records(stream(seed, "consent"), who, consent_plan, account.shop_id, account.created_at,
                          unsubscribes, now)
        land("consent", pl.concat([consent, mobile.consent], how="vertical_relaxed").sort("recorded_at",
                                                                                         maintain_order=True))
        pending.append(writer.submit(_truth, "person_map", identities, out))
        pending.append(writer.submit(_truth, "people", truth.people_truth(who), out))
        pending.append(writer.submit(_truth, "record_mess", truth.record_mess(crm_mess, shop_mess), out))
        pending.append(writer.submit(_truth, "lookalikes", truth.lookalikes(who), out))
        written = [future.result() for future in pending]

    files = tuple(path for _, path, _ in written)
    return GenerateSummary(
        customers=customers,
        seed=seed,
        as_of=as_of,
        out=out,
        rows={name: count for name, _, count in written if name in SOURCES_BY_NAME},
        files=files,
        bytes_written=sum(p.stat().st_size for p in files),
        seconds=time.perf_counter() - started,
    )


def _land(name: str, frame: pl.DataFrame, seed: int, out: Path, stamp: str) -> tuple[str, Path, int]:
    """Render one source as its export text, break a few rows, write its landing file."""
    source = SOURCES_BY_NAME[name]
    rng = stream(seed, f"mess.{name}")
    if name == "events":
        text, broken = mess.malform(rng, exports.render_events(rng, frame, source), source)
        path = out / source.folder / f"{name}_{stamp}.jsonl"
        return name, path, write.write_jsonl(rng, text, path, broken)
    text, broken = mess.malform(rng, exports.render(frame, source), source)
    path = out / source.folder / f"{name}_{stamp}.csv"
    return name, path, write.write_csv(text, path, broken)


def _truth(name: str, frame: pl.DataFrame, out: Path) -> tuple[str, Path, int]:
    path = out / TRUTH_FOLDER / f"{name}.parquet"
    return name, path, write.write_parquet(frame, path)


def _first_at(n_people: int, frame: pl.DataFrame, column: str) -> np.ndarray:
    """Each person's earliest `column` in `frame` (epoch s), -1 where they have no row."""
    first = np.full(n_people, np.iinfo(np.int64).max)
    np.minimum.at(first, frame["person_index"].to_numpy(), frame[column].to_numpy())
    return np.where(first < np.iinfo(np.int64).max, first, -1)
