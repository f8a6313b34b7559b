"""Web and app events over the 30 days before as_of.

Every visitor has one or two devices (a browser cookie or an app install: the
anonymous_id). Devices browse anonymously until a login (shop customers) or an
identify (an email typed into a form or a guest checkout) ties them to a person;
events after a login carry the user_id. Sessions are of five kinds:

- browse: page and product views;
- browse abandonment: the same product viewed again and again, with no add_to_cart;
- abandoned cart: add_to_cart (and sometimes checkout_started) with no order
  after it, a third of them in the last 24 hours;
- converting: the views, add_to_carts and checkout_started before each web or
  app order of the last 30 days, with that order's products and quantities;
- form: a form_submit (newsletter, contact_sales, webinar, download) with email,
  names, company and lead_source; B2B people not yet in the CRM become leads here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from generator import mess
from generator.catalog import Catalog
from generator.clock import DAY, MINUTE, Calendar, uniform_times
from generator.orders import Orders
from generator.streams import pick, uuids

WINDOW_DAYS = 30
SITE = "https://www.emporionove.it"
EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "checkout_started", "identify", "login", "form_submit",
               "app_open")
PAGE_VIEW, PRODUCT_VIEW, ADD_TO_CART, CHECKOUT, IDENTIFY, LOGIN, FORM_SUBMIT, APP_OPEN = range(8)
PLATFORMS = ("web", "ios", "android")
BROWSE, BROWSE_ABANDON, CART_ABANDON, CONVERTING, FORM = range(5)
PAGES = ("/", "/c/caffe", "/c/te", "/c/abbigliamento", "/c/scarpe", "/c/accessori", "/c/casa", "/c/cucina",
         "/offerte", "/blog/come-preparare-la-moka", "/blog/guida-ai-te-verdi", "/chi-siamo", "/b2b", "/contatti")
LANDING_UTM = ("?utm_source=google&utm_medium=cpc&utm_campaign=brand_search",
               "?utm_source=instagram&utm_medium=paid_social&utm_campaign=retargeting",
               "?utm_source=newsletter&utm_medium=email&utm_campaign=weekly",
               "?gclid=Cj0KCQjw")
FORMS = {
    "newsletter": ("/newsletter", ("web_form", "social")),
    "contact_sales": ("/b2b/contatti", ("web_form", "referral", "partner")),
    "webinar": ("/b2b/webinar-caffe-per-uffici", ("event",)),
    "download": ("/b2b/listino-horeca", ("paid_search", "social", "web_form")),
}
RANDOM_VISITOR_SHARE = 0.12
CART_ABANDON_SHARE = 0.08  # of devices
CART_LAST_DAY_SHARE = 0.35  # of abandoned carts, placed in the last 24 hours


@dataclass(frozen=True)
class Events:
    frame: pl.DataFrame  # events columns, occurred_at in epoch milliseconds, plus person_index
    devices: pl.DataFrame  # anonymous_id, person_index, platform


def events(rng: np.random.Generator, people: pl.DataFrame, shop_id: pl.Series, orders: Orders, catalog: Catalog,
           as_of: int) -> Events:
    """Sessions of the last 30 days on every visitor's devices, as one event table."""
    n_people = people.height
    window_start = as_of - WINDOW_DAYS * DAY
    recent = orders.orders.filter((pl.col("ordered_at") >= window_start) & (pl.col("channel") != "store"))
    has_account = shop_id.is_not_null().to_numpy()
    b2b = people["is_b2b"].to_numpy()
    has_email = people["shop_email"].is_not_null().to_numpy()

    # Who visits: recent online buyers, form fillers, website-only people and a random share of everyone.
    need_web = np.zeros(n_people, dtype=bool)
    need_app = np.zeros(n_people, dtype=bool)
    need_web[recent.filter(pl.col("channel") == "web")["person_index"].to_numpy()] = True
    need_app[recent.filter(pl.col("channel") == "app")["person_index"].to_numpy()] = True
    b2b_form = b2b & people["email"].is_not_null().to_numpy() & (~people["in_crm"].to_numpy() | (rng.random(n_people) < 0.08))
    newsletter = ~b2b & has_email & (rng.random(n_people) < np.where(people["visitor_only"].to_numpy(), 0.4, 0.03))
    visitor = (need_web | need_app | b2b_form | newsletter | people["visitor_only"].to_numpy()
               | (rng.random(n_people) < RANDOM_VISITOR_SHARE))

    devices = _devices(rng, np.flatnonzero(visitor), need_web, need_app)
    device_person = devices["person_index"].to_numpy()
    on_app = (devices["platform"] != "web").to_numpy()
    first_device = _first_device(n_people, device_person, np.ones(len(on_app), dtype=bool))
    web_device = _first_device(n_people, device_person, ~on_app)
    app_device = _first_device(n_people, device_person, on_app)

    calendar = Calendar(as_of, WINDOW_DAYS, seasonal=False)
    _, last_order = orders.person_times(n_people, completed_only=False)
    sessions = _sessions(rng, devices, calendar, recent, web_device, app_device, first_device, last_order,
                         b2b_form, newsletter, catalog, as_of)
    rows = _session_events(rng, sessions, orders, catalog).with_columns(detail=pl.lit(-1, pl.Int64))
    # Logins, identifies and forms carry typed details (email, names...), kept aside until the end.
    id_rows, id_details = _identification(rng, rows, sessions, devices, people, has_account, recent)
    form_rows, form_details = _forms(rng, sessions, people)
    details = pl.concat([id_details, form_details], how="vertical_relaxed")
    form_rows = form_rows.with_columns(pl.col("detail") + id_details.height)
    rows = pl.concat([rows, id_rows, form_rows], how="vertical_relaxed")
    rows = _timing(rng, rows, sessions)
    frame = _columns(rng, rows, details, sessions, devices, shop_id, catalog, as_of)
    return Events(frame=frame, devices=devices)


def _first_device(n_people: int, device_person: np.ndarray, among: np.ndarray) -> np.ndarray:
    """Per person, their first device among `among` (-1 when they have none)."""
    first = np.full(n_people, np.iinfo(np.int64).max)
    np.minimum.at(first, device_person[among], np.flatnonzero(among))
    return np.where(first < np.iinfo(np.int64).max, first, -1)


def _devices(rng: np.random.Generator, visitors: np.ndarray, need_web: np.ndarray, need_app: np.ndarray) -> pl.DataFrame:
    """One device per visitor, a second for a quarter of them (and for anyone who ordered on both)."""
    v = len(visitors)
    web, app = need_web[visitors], need_app[visitors]
    first_is_app = np.where(app & ~web, True, np.where(web, False, rng.random(v) < 0.38))
    second = (web & app) | (rng.random(v) < 0.25)
    person = np.concatenate([visitors, visitors[second]])
    is_app = np.concatenate([first_is_app, ~first_is_app[second]])
    platform = np.where(is_app, np.where(rng.random(len(person)) < 0.55, 1, 2), 0)
    order = np.argsort(person, kind="stable")
    return pl.DataFrame(
        {
            "anonymous_id": uuids(rng, len(person)),
            "person_index": person[order],
            "platform": pl.Series(PLATFORMS).gather(platform[order]),
        }
    )


def _sessions(rng: np.random.Generator, devices: pl.DataFrame, calendar: Calendar, recent: pl.DataFrame,
              web_device: np.ndarray, app_device: np.ndarray, first_device: np.ndarray, last_order: np.ndarray,
              b2b_form: np.ndarray, newsletter: np.ndarray, catalog: Catalog, as_of: int) -> pl.DataFrame:
    """One row per session: device, kind, anchor time (start; the end for converting sessions), order, product."""
    n_devices = devices.height
    person = devices["person_index"].to_numpy()

    # Browsing: 1-7 sessions per device (mostly 1-2), some spent on one product over and over.
    count = 1 + np.minimum(rng.poisson(1.0, n_devices), 6)
    device = np.repeat(np.arange(n_devices), count)
    k = len(device)
    start = calendar.times(rng, calendar.sample_days(rng, 0, calendar.days - 1, k))
    kind = np.where(rng.random(k) < 0.15, BROWSE_ABANDON, BROWSE)
    browse = {"device": device, "kind": kind, "anchor": start, "order_index": np.full(k, -1)}

    # Abandoned carts: some in the last 24 hours by people with no order since then.
    carts = np.flatnonzero(rng.random(n_devices) < CART_ABANDON_SHARE)
    quiet = last_order[person[carts]] < as_of - DAY
    last_day = quiet & (rng.random(len(carts)) < CART_LAST_DAY_SHARE)
    if not last_day.any() and quiet.any():
        last_day[np.flatnonzero(quiet)[:3]] = True
    cart_start = np.where(
        last_day,
        uniform_times(rng, as_of - DAY + MINUTE, as_of - 45 * MINUTE, len(carts)),
        calendar.times(rng, calendar.sample_days(rng, 0, calendar.days - 2, len(carts))),
    )
    # An older cart is kept only if no order followed it: an abandoned cart, not a postponed purchase.
    keep = last_day | (last_order[person[carts]] < cart_start)
    carts, cart_start = carts[keep], cart_start[keep]
    cart = {"device": carts, "kind": np.full(len(carts), CART_ABANDON), "anchor": cart_start,
            "order_index": np.full(len(carts), -1)}

    # Converting sessions end at checkout, minutes before each recent web or app order.
    buyer = recent["person_index"].to_numpy()
    on_app = (recent["channel"] == "app").to_numpy()
    conv_device = np.where(on_app, app_device[buyer], web_device[buyer])
    conv_device = np.where(conv_device >= 0, conv_device, first_device[buyer])
    ordered_at = recent["ordered_at"].to_numpy()
    converting = {"device": conv_device, "kind": np.full(len(buyer), CONVERTING),
                  "anchor": ordered_at - rng.integers(30, 300, len(buyer)),
                  "order_index": recent["order_index"].to_numpy()}

    # Form sessions: on the person's first device, any time in the window.
    filler = np.flatnonzero(b2b_form | newsletter)
    filler = filler[first_device[filler] >= 0]
    form = {"device": first_device[filler], "kind": np.full(len(filler), FORM),
            "anchor": calendar.times(rng, calendar.sample_days(rng, 0, calendar.days - 1, len(filler))),
            "order_index": np.full(len(filler), -1)}

    parts = [browse, cart, converting, form]
    frame = pl.DataFrame({key: np.concatenate([p[key] for p in parts]).astype(np.int64) for key in browse})
    active = catalog.products["is_active"].to_numpy()
    weights = catalog.popularity * active
    frame = frame.with_columns(
        focus=pl.Series(pick(rng, frame.height, weights)),
        session_id=uuids(rng, frame.height),
        person_index=pl.Series(person).gather(frame["device"]),
        is_app=pl.Series(devices["platform"] != "web").gather(frame["device"]),
    )
    return frame.sort("device", "anchor", maintain_order=True).with_row_index("session", offset=0).with_columns(
        pl.col("session").cast(pl.Int64)
    )


def _session_events(rng: np.random.Generator, sessions: pl.DataFrame, orders: Orders, catalog: Catalog) -> pl.DataFrame:
    """The page, product, cart and checkout events of each session, in order (session, seq)."""
    kind = sessions["kind"].to_numpy()
    session = sessions["session"].to_numpy()
    focus = sessions["focus"].to_numpy()
    weights = catalog.popularity * catalog.products["is_active"].to_numpy()
    parts = []

    def part(s: np.ndarray, seq: np.ndarray, etype: np.ndarray, product: np.ndarray, quantity: np.ndarray) -> None:
        parts.append(pl.DataFrame({"session": s, "seq": seq.astype(np.float64), "etype": etype,
                                   "product": product, "quantity": quantity}))

    # Every session opens with the app (on apps) and a landing page or screen.
    app = sessions["is_app"].to_numpy()
    part(session[app], np.full(app.sum(), -1.0), np.full(app.sum(), APP_OPEN), np.full(app.sum(), -1),
         np.zeros(app.sum(), dtype=np.int64))
    part(session, np.zeros(len(session)), np.full(len(session), PAGE_VIEW), np.full(len(session), -1),
         np.zeros(len(session), dtype=np.int64))

    # Browsing: page and product views; browse abandonment: mostly views of the session's one product.
    for wanted, mean, extra, product_share, focus_share in ((BROWSE, 2.5, 0, 0.6, 0.0), (BROWSE_ABANDON, 3.0, 2, 0.9, 0.8)):
        s = np.flatnonzero(kind == wanted)
        length = np.minimum(rng.poisson(mean, len(s)), 10) + extra
        owner = np.repeat(s, length)
        m = len(owner)
        seq = 1 + np.arange(m) - np.repeat(np.cumsum(length) - length, length)
        product_view = rng.random(m) < product_share
        product = np.where(rng.random(m) < focus_share, focus[owner], pick(rng, m, weights))
        part(session[owner], seq, np.where(product_view, PRODUCT_VIEW, PAGE_VIEW),
             np.where(product_view, product, -1), np.zeros(m, dtype=np.int64))

    # Abandoned carts: view and add 1-3 products, sometimes start the checkout.
    s = np.flatnonzero(kind == CART_ABANDON)
    size = 1 + pick(rng, len(s), [0.6, 0.3, 0.1])
    owner = np.repeat(s, size)
    nth = np.arange(len(owner)) - np.repeat(np.cumsum(size) - size, size)
    product = np.where(nth == 0, focus[owner], pick(rng, len(owner), weights))
    quantity = 1 + pick(rng, len(owner), [0.85, 0.12, 0.03])
    _cart_lines(part, session[owner], nth, product, quantity)
    started = rng.random(len(s)) < 0.45
    part(session[s[started]], 1.0 + 2 * size[started], np.full(started.sum(), CHECKOUT), np.full(started.sum(), -1),
         np.zeros(started.sum(), dtype=np.int64))

    # Converting sessions: exactly the lines of the order that follows.
    s = np.flatnonzero(kind == CONVERTING)
    lines = (
        pl.DataFrame({"order_index": sessions["order_index"].gather(s), "s": s})
        .join(orders.items.select("order_index", "product_index", "quantity"), on="order_index",
              how="inner", maintain_order="left")
    )
    owner = lines["s"].to_numpy()
    nth = lines.select(pl.int_range(pl.len()).over("s")).to_series().to_numpy()
    _cart_lines(part, session[owner], nth, lines["product_index"].to_numpy(), lines["quantity"].to_numpy())
    size = np.bincount(owner, minlength=len(kind))[s]
    part(session[s], 1.0 + 2 * size, np.full(len(s), CHECKOUT), np.full(len(s), -1), np.zeros(len(s), dtype=np.int64))
    return pl.concat(parts)


def _cart_lines(part, session: np.ndarray, nth: np.ndarray, product: np.ndarray, quantity: np.ndarray) -> None:
    part(session, 1.0 + 2 * nth, np.full(len(session), PRODUCT_VIEW), product, np.zeros(len(session), dtype=np.int64))
    part(session, 2.0 + 2 * nth, np.full(len(session), ADD_TO_CART), product, quantity)


DETAILS = ("email", "phone", "form_name", "lead_source", "company", "first_name", "last_name")


def _special(session: np.ndarray, seq: np.ndarray, etype: int, **details: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows of one special event type and their details (detail = row number in the details)."""
    k = len(session)
    rows = pl.DataFrame(
        {
            "session": np.asarray(session, dtype=np.int64),
            "seq": np.asarray(seq, dtype=np.float64),
            "etype": np.full(k, etype, dtype=np.int64),
            "product": np.full(k, -1, dtype=np.int64),
            "quantity": np.zeros(k, dtype=np.int64),
            "detail": np.arange(k, dtype=np.int64),
        }
    )
    columns = {name: details.get(name, pl.repeat(None, k, eager=True, dtype=pl.String)) for name in DETAILS}
    return rows, pl.DataFrame(columns)


def _stack(*parts: tuple[pl.DataFrame, pl.DataFrame]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Concatenate (rows, details) pairs, shifting each part's detail numbers."""
    rows, details, offset = [], [], 0
    for r, d in parts:
        rows.append(r.with_columns(pl.col("detail") + offset))
        details.append(d)
        offset += d.height
    return pl.concat(rows), pl.concat(details, how="vertical_relaxed")


def _identification(rng: np.random.Generator, rows: pl.DataFrame, sessions: pl.DataFrame, devices: pl.DataFrame,
                    people: pl.DataFrame, has_account: np.ndarray,
                    recent: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Logins and identifies: the session where each device gets tied to a person, and how."""
    n_devices = devices.height
    device = sessions["device"].to_numpy()
    person = devices["person_index"].to_numpy()
    is_app = (devices["platform"] != "web").to_numpy()
    per_device = np.bincount(device, minlength=n_devices)
    first_session = np.cumsum(per_device) - per_device
    rank = np.arange(len(device)) - first_session[device]

    # Account holders log in at some session; at the latest in the session of an order placed with the account.
    conv = sessions.select("session", "device", "order_index").filter(pl.col("order_index") >= 0).join(
        recent.select("order_index", "is_guest", "email"), on="order_index", how="left", maintain_order="left")
    account_conv = conv.filter(~pl.col("is_guest"))
    never = np.iinfo(np.int64).max
    must_by = np.full(n_devices, never)  # rank of the device's first session ending in an account order
    np.minimum.at(must_by, account_conv["device"].to_numpy(), rank[account_conv["session"].to_numpy()])
    logs_in = has_account[person] & ((rng.random(n_devices) < np.where(is_app, 0.9, 0.6)) | (must_by < never))
    chosen = first_session + np.minimum((rng.random(n_devices) * per_device).astype(np.int64), must_by)
    logged = np.flatnonzero(logs_in)
    who = people[person[logged]]
    login_email = mess.spell_emails(rng, who["shop_email"], 0.2)
    login_email = pl.select(pl.when(pl.lit(pl.Series(rng.random(len(logged)) < 0.5))).then(pl.lit(login_email)))

    # People without an account identify with their email now and then (newsletter popup, wishlist).
    shop_email = people["shop_email"].is_not_null().to_numpy()
    known = np.flatnonzero(~has_account[person] & shop_email[person] & (rng.random(n_devices) < 0.25))
    who = people[person[known]]
    with_phone = pl.lit(pl.Series(rng.random(len(known)) < 0.05))
    phone = pl.select(pl.when(with_phone).then(pl.lit(mess.spell_phones(rng, who["phone"], who["country"]))))

    # Guest checkouts identify with the email typed at checkout, just before checkout_started.
    guest = conv.filter(pl.col("is_guest"))
    checkout_seq = (
        guest.select("session")
        .join(rows.filter(pl.col("etype") == CHECKOUT).select("session", "seq"), on="session", how="left",
              maintain_order="left")["seq"].fill_null(1.0).to_numpy()
    )
    return _stack(
        _special(chosen[logged], np.full(len(logged), 0.5), LOGIN, email=login_email.to_series()),
        _special(chosen[known], np.full(len(known), 0.5), IDENTIFY,
                 email=mess.spell_emails(rng, who["shop_email"], 0.2), phone=phone.to_series()),
        _special(guest["session"].to_numpy(), checkout_seq - 0.5, IDENTIFY, email=guest["email"]),
    )


def _forms(rng: np.random.Generator, sessions: pl.DataFrame, people: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """form_submit events with the details people type, then an identify with the same email."""
    forms = sessions.filter(pl.col("kind") == FORM)
    k = forms.height
    who = people[forms["person_index"].to_numpy()]
    b2b = who["is_b2b"].to_numpy()
    names = list(FORMS)
    form = np.where(b2b, 1 + pick(rng, k, [0.4, 0.35, 0.25]), 0)
    source_pick = rng.random(k)
    sources = pl.repeat("", k, eager=True, dtype=pl.String)
    for fi, name in enumerate(names):
        hit = np.flatnonzero(form == fi)
        options = FORMS[name][1]
        sources.scatter(hit, pl.Series(options).gather((source_pick[hit] * len(options)).astype(np.int64)))
    email = mess.with_placeholders(rng, mess.spell_emails(rng, who["email"], 0.35), 0.02, mess.EMAIL_PLACEHOLDERS)

    def some(share: np.ndarray | float, values: pl.Series) -> pl.Series:
        return pl.select(pl.when(pl.lit(pl.Series(rng.random(k) < share))).then(pl.lit(values))).to_series()

    session = forms["session"].to_numpy()
    return _stack(
        _special(
            session, np.full(k, 1.0), FORM_SUBMIT,
            email=email,
            phone=some(np.where(form == 1, 0.6, 0.0), mess.spell_phones(rng, who["phone"], who["country"])),
            form_name=pl.Series(names).gather(form),
            lead_source=sources,
            company=some(np.where(b2b, 0.97, 0.0), mess.spell_names(rng, who["company"], 0.2)),
            first_name=some(np.where(b2b, 1.0, 0.6), mess.spell_names(rng, who["first_name"], 0.15)),
            last_name=some(np.where(b2b, 1.0, 0.3), mess.spell_names(rng, who["last_name"], 0.15)),
        ),
        _special(session, np.full(k, 1.1), IDENTIFY, email=email),
    )


def _timing(rng: np.random.Generator, rows: pl.DataFrame, sessions: pl.DataFrame) -> pl.DataFrame:
    """Times in epoch ms: a few seconds to minutes between events; converting sessions end at their checkout."""
    rows = rows.sort("session", "seq", maintain_order=True)
    session = rows["session"].to_numpy()
    m = len(session)
    gap = (3_000 + rng.exponential(35_000, m)).astype(np.int64)
    cum = np.cumsum(gap)
    per_session = np.bincount(session, minlength=sessions.height)  # every session has its landing event
    first = np.cumsum(per_session) - per_session
    before = cum[first] - gap[first]  # time elapsed before each session's first event
    within = cum - before[session]
    total = within[first + per_session - 1]
    anchor = sessions["anchor"].to_numpy() * 1000 + rng.integers(0, 1000, sessions.height)
    converting = sessions["kind"].to_numpy() == CONVERTING
    at = np.where(converting[session], anchor[session] - (total[session] - within), anchor[session] + within)
    return rows.with_columns(occurred_at=pl.Series(at))


def _columns(rng: np.random.Generator, rows: pl.DataFrame, details: pl.DataFrame, sessions: pl.DataFrame,
             devices: pl.DataFrame, shop_id: pl.Series, catalog: Catalog, as_of: int) -> pl.DataFrame:
    """The contract columns in time order: ids, user_id after login, platform, urls, typed details."""
    at_all = rows["occurred_at"].to_numpy()
    kept = np.flatnonzero(at_all <= as_of * 1000)
    order = kept[np.argsort(at_all[kept], kind="stable")]
    at = at_all[order]
    session = rows["session"].to_numpy()[order]
    etype = rows["etype"].to_numpy()[order]
    product = rows["product"].to_numpy()[order]
    quantity = rows["quantity"].to_numpy()[order]
    detail = rows["detail"].to_numpy()[order]
    seq = rows["seq"].to_numpy()[order]
    device = sessions["device"].to_numpy()[session]
    person = devices["person_index"].to_numpy()[device]
    m = len(order)

    # A device's events carry the user_id from its login on.
    login_at = np.full(devices.height, np.iinfo(np.int64).max)
    is_login = etype == LOGIN
    np.minimum.at(login_at, device[is_login], at[is_login])
    signed_in = at >= login_at[device]

    platform = devices["platform"].gather(device)
    web = (platform == "web").to_numpy()
    product_id = catalog.products["product_id"]

    def only(mask: np.ndarray, values: pl.Series) -> pl.Series:
        return pl.select(pl.when(pl.lit(pl.Series(mask))).then(pl.lit(values))).to_series()

    url = pl.repeat(None, m, eager=True, dtype=pl.String)
    hit = np.flatnonzero(web & (etype == PAGE_VIEW))
    page = pl.Series(PAGES).gather(pick(rng, len(hit), [8, 3, 2, 2, 2, 1, 1, 1, 2, 1, 1, 0.5, 0.5, 0.5]))
    tagged = (seq[hit] == 0) & (rng.random(len(hit)) < 0.2)
    utm = only(tagged, pl.Series(LANDING_UTM).gather(rng.integers(0, len(LANDING_UTM), len(hit)))).fill_null("")
    url.scatter(hit, SITE + page + utm)
    hit = np.flatnonzero(web & ((etype == PRODUCT_VIEW) | (etype == ADD_TO_CART)))
    url.scatter(hit, SITE + "/p/" + product_id.gather(product[hit]))
    for kind, path in ((CHECKOUT, "/checkout"), (LOGIN, "/account/login")):
        hit = np.flatnonzero(web & (etype == kind))
        url.scatter(hit, pl.repeat(SITE + path, len(hit), eager=True, dtype=pl.String))
    def typed(name: str) -> pl.Series:
        """A detail column (email, names...) on the rows that have details."""
        if not details.height:
            return pl.repeat(None, m, eager=True, dtype=pl.String)
        return only(detail >= 0, details[name].gather(np.maximum(detail, 0)))

    form_name = typed("form_name")
    hit = np.flatnonzero(web & (etype == FORM_SUBMIT))
    url.scatter(hit, SITE + form_name.gather(hit).replace_strict({k: v[0] for k, v in FORMS.items()}))

    frame = pl.DataFrame(
        {
            "event_id": uuids(rng, m),
            "event_type": pl.Series(EVENT_TYPES).gather(etype),
            "occurred_at": at,
            "anonymous_id": devices["anonymous_id"].gather(device),
            "user_id": only(signed_in, shop_id.gather(person)),
            "platform": platform,
            "session_id": sessions["session_id"].gather(session),
            "product_id": only(product >= 0, product_id.gather(np.maximum(product, 0))),
            "quantity": only(etype == ADD_TO_CART, pl.Series(quantity)),
            "url": url,
            "form_name": form_name,
            **{name: typed(name) for name in DETAILS if name != "form_name"},
            "person_index": person,
        }
    )
    return frame.select("event_id", "event_type", "occurred_at", "anonymous_id", "user_id", "email", "phone",
                        "platform", "session_id", "product_id", "quantity", "url", "form_name", "lead_source",
                        "company", "first_name", "last_name", "person_index")
