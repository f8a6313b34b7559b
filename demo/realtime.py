"""The always-on event path in the demo: an add-to-cart posted to `attiva serve`, and the reminder that
`attiva realtime`'s loop (activations/messaging/realtime.py) sends for it, timed end to end.

The cart is dated 2 h 5 min before the demo's "now", so the campaign's 2 h wait has passed and the
reminder is due at once; the shopper is an Italian customer (the demo runs outside Rome's quiet hours)
who may be emailed, is not in the campaign's holdout and has had no message yet."""

from __future__ import annotations

import time
from datetime import timedelta

import requests

from activations import settings, warehouse
from activations.messaging.ledger import in_holdout
from activations.messaging.realtime import Realtime
from activations.serve.app import create_app, running_server
from activations.serve.keys import ApiKey, KeysConfig, hash_key, new_key

CAMPAIGN = "abandoned_cart"


def shopper() -> tuple[str, str, str, str] | None:
    """(customer_id, email, shop customer id, a product in stock) of someone the reminder can reach, or None."""
    with warehouse.connect(read_only=True) as con:
        people = con.sql("""
            select c.customer_id, c.email, min(i.identifier_value) as shop_customer_id
            from marts.customers as c
            join marts.customer_identifiers as i
              on i.customer_id = c.customer_id and i.identifier_type = 'shop_customer_id'
            where c.email_marketable and c.country = 'IT'
              and c.customer_id not in (select customer_id from triggers.trg_abandoned_cart)
              and c.customer_id not in (select customer_id from activation.message_ledger)
            group by c.customer_id, c.email
            order by hash(c.customer_id)
            limit 50""").pl()
        product = con.execute("select product_id from marts.products order by product_id limit 1").fetchone()
    people = people.filter(~in_holdout(CAMPAIGN, people["customer_id"], 0.1))
    if people.is_empty() or product is None:
        return None
    first = people.row(0)
    return first[0], first[1], first[2], product[0]


def cart_to_reminder(base: str) -> bool:
    """Post a cart to a local `attiva serve`, run the always-on loop, and say how long the reminder took."""
    found = shopper()
    if found is None:
        print("==> attiva realtime: no customer left whom a cart reminder could reach; skipped")
        return True
    customer_id, email, shop_id, product = found
    now = settings.as_of()
    key = new_key()
    keys = KeysConfig([ApiKey("demo-realtime", hash_key(key), frozenset({"events"}), frozenset(), 50.0, 100,
                              "server")])
    loop = Realtime(settings.landing_path(), settings.warehouse_path(),
                    now if settings.as_of_pinned() else None)
    try:
        ready = loop.turn()  # parses the project once; what was already due went out with the Dagster run
        if ready.report is None:
            print(f"FAILED attiva realtime: {ready.error}")
            return False
        event = {"event_id": f"demo-realtime-{customer_id}", "event_type": "add_to_cart", "user_id": shop_id,
                 "product_id": product, "quantity": 1, "platform": "web",
                 "occurred_at": (now - timedelta(hours=2, minutes=5)).isoformat()}
        with running_server(create_app(keys, settings.serving_dir(), settings.landing_path())) as serve:
            started = time.monotonic()
            answer = requests.post(f"{serve}/v1/events", json=event, headers={"Authorization": f"Bearer {key}"},
                                   timeout=10)
            answer.raise_for_status()
            batch = loop.turn()
        mail = requests.get(f"{base}/_sandbox/mail", params={"to": email, "limit": 10}, timeout=10).json()
        sent = [m for m in mail["messages"] if str(m.get("attiva_message_id", "")).startswith(f"{CAMPAIGN}.")]
        took = time.monotonic() - started
    finally:
        loop.close()
    if batch.report is None or not sent:
        print(f"FAILED attiva realtime: no reminder for the cart posted for {customer_id}: "
              f"{batch.error or batch.report}")
        return False
    print(f"==> attiva realtime: an add-to-cart posted to attiva serve for {customer_id} became its reminder, "
          f"accepted by the SMTP server {took:.1f} s later (the always-on path, docs/realtime.md):")
    print("\n".join(f"  {line}" for line in str(batch.report).splitlines()))
    return True

