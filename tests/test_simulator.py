"""The simulated world (simulator/): what it lands is what real exports look like, and the uplift
measurement finds what it planted.

- One simulated day on generated customers: the mail Attiva sent (the sandbox SMTP store's shape)
  is read, the world buys and browses, and ingestion loads every row it landed, none quarantined;
  a purchase a message caused carries the campaign's UTM tags and the address it went to.
- Calibration: measurement.campaign_uplift (the dbt model, run by dbt) on 400 simulated campaigns
  whose conversions the world draws; its 95 % interval must cover the planted uplift about 95 %
  of the time.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import polars as pl
import pytest

from activations.ingest import load_landing
from generator import generate
from generator.clock import epoch_seconds
from simulator import calibration, days
from simulator.world import DAY, NEVER, UPLIFT, WINDOW_DAYS, load

AS_OF = datetime(2026, 11, 2, 10, tzinfo=UTC)


def _mail(path, messages: list[tuple[str, str]]) -> None:
    """Mail as the sandbox's SMTP server stores it (one JSON object per message)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        for n, (address, campaign) in enumerate(messages):
            message_id = f"{campaign}.{n:020x}.1@attiva"
            out.write(json.dumps({"id": f"{n:016x}", "rcpt_tos": [address], "message_id": message_id,
                                  "attiva_message_id": message_id, "subject": "Ciao"}) + "\n")


def test_a_simulated_day_lands_orders_and_visits_that_ingest_cleanly(tmp_path):
    landing = tmp_path / "landing"
    generate(customers=600, seed=5, out=landing, as_of=AS_OF)
    world = load(landing, seed=5, origin=epoch_seconds(AS_OF))
    people = pl.read_parquet(landing / "_truth" / "people.parquet").drop_nulls("email")
    recipients = people["email"].head(200).to_list()
    mailbox = tmp_path / "smtp" / "messages.jsonl"
    _mail(mailbox, [(a, "abandoned_cart") for a in recipients] + [("seed-list@example.com", "welcome")])

    state = days.State(clock=epoch_seconds(AS_OF))
    read, caused = days.receive(landing, world, state, mailbox, seed=5)
    assert read == 201 and state.unknown_recipients == 1
    truth = days.messages(landing)
    assert truth.height == 200 and truth["responded"].sum() == caused
    assert truth["p_respond"].mean() == pytest.approx(UPLIFT["abandoned_cart"], rel=0.3)  # planted, scaled per person
    assert days.receive(landing, world, state, mailbox, seed=5) == (0, 0)  # each message is read once

    organic, due_caused = 0, 0
    for day in range(1, WINDOW_DAYS + 1):
        o, c, _ = days.live_until(landing, world, state, epoch_seconds(AS_OF + timedelta(days=day)), seed=5)
        organic, due_caused = organic + o, due_caused + c
    assert due_caused == caused and organic > 0  # every caused purchase falls due inside the window
    promotions = days.keep_promotions_running(landing, epoch_seconds(AS_OF), epoch_seconds(AS_OF) + 30 * DAY)

    warehouse = tmp_path / "warehouse.duckdb"
    report = load_landing(landing, warehouse)
    simulated = [f for f in report.files if "_simulated" in f.file]
    sources = {f.source for f in simulated}
    assert sources >= {"shop_orders", "shop_order_items", "events"} | ({"shop_promotions"} if promotions else set())
    assert all(f.rows_quarantined == 0 and f.rows_loaded > 0 for f in simulated), [str(f) for f in simulated]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        caused_orders = con.execute("""select count(*), count(distinct lower(email)), min(utm_source), max(utm_medium)
                                       from raw.shop_orders where utm_campaign = 'abandoned_cart'""").fetchone()
        carts = con.execute("select count(*) from raw.events where event_type = 'add_to_cart' and event_id like 'sim-%'"
                            ).fetchone()[0]
    assert caused_orders[0] == caused and caused_orders[2:] == ("attiva", "email")
    assert caused_orders[1] <= caused and set(truth.filter("responded")["person_id"]) <= set(people["person_id"])
    assert carts > 0


def test_the_uplift_interval_covers_the_planted_uplift_about_95_percent_of_the_time(tmp_path):
    result = calibration.measure(np.random.default_rng(2026), tmp_path / "warehouse.duckdb", count=400, size=3000,
                                 holdout_share=0.2)
    assert result.campaigns == 400 and result.too_small == 0
    covered = result.covered
    # 400 campaigns: a calibrated 95 % interval covers 380 give or take 9 (one standard error 4.4)
    assert 368 <= covered <= 392, covered


def test_the_world_goes_on_from_each_persons_history_and_the_churned_do_nothing(tmp_path):
    landing = tmp_path / "landing"
    generate(customers=1500, seed=8, out=landing, as_of=AS_OF)
    origin = epoch_seconds(AS_OF)
    world = load(landing, seed=8, origin=origin)

    # Heavy buyers of the shop's history go on buying more than those who never bought.
    orders = pl.concat([pl.read_csv(f, infer_schema=False, truncate_ragged_lines=True, columns=["shop_customer_id", "status"])
                       for f in (landing / "shop" / "orders").glob("*.csv")])
    accounts = orders.filter(pl.col("status") == "completed").group_by("shop_customer_id").len()
    past = dict(accounts.iter_rows())
    heavy = [i for i, a in enumerate(world.shop_customer_id) if a and past.get(a, 0) >= 5]
    never = [i for i, a in enumerate(world.shop_customer_id) if a and a not in past]
    assert heavy and never
    assert np.mean(world.organic_rate[heavy]) > 5 * np.mean(world.organic_rate[never])

    # Planted churn: about one in twelve within 30 days (mean hazard 1/365), and it is final.
    churned_in_month = float(np.mean(world.churn_at <= origin + 30 * DAY))
    assert 0.04 < churned_in_month < 0.12, churned_in_month
    # Open leads: an intent, buying windows, and a first order on the day they convert, unless they churned first.
    leads = np.flatnonzero(world.lead_intent > 0)
    assert len(leads) > 20 and all(world.lead_email[i] for i in leads)
    windows = world.lead_windows
    assert set(windows[:, 0]) <= set(leads) and (windows[:, 2] > windows[:, 1]).all()
    ended_in_purchase = windows[np.isin(windows[:, 2], world.converts_at[leads])]
    assert len(ended_in_purchase) == int((world.converts_at[leads] < NEVER).sum())
    converting, eager = leads[-10:], leads[-15:-10]
    world.converts_at[converting] = origin + DAY
    world.churn_at[: len(world.churn_at) // 2] = origin  # half the people churn at once, for a strong test
    world.churn_at[np.concatenate([converting, eager])] = origin + 100 * DAY
    world.converts_at[eager] = NEVER
    # In market: the converting leads for their last day, the eager ones for all 20 days and beyond.
    world = dataclasses.replace(world, lead_windows=np.concatenate([
        windows[~np.isin(windows[:, 0], np.concatenate([converting, eager]))],
        np.column_stack([converting, np.full(10, origin), np.full(10, origin + DAY)]),
        np.column_stack([eager, np.full(5, origin), np.full(5, origin + 60 * DAY)])]))
    gone = set(np.flatnonzero(world.churn_at <= origin).tolist())
    state = days.State(clock=origin)
    mailbox = tmp_path / "smtp" / "messages.jsonl"
    people = pl.read_parquet(landing / "_truth" / "people.parquet")
    _mail(mailbox, [(e, "abandoned_cart") for e in people["email"].drop_nulls().to_list()])
    days.receive(landing, world, state, mailbox, seed=8)
    truth = days.messages(landing).join(pl.DataFrame({"person_id": world.person_ids,
                                                       "row": np.arange(len(world.person_ids))}), on="person_id")
    assert truth.filter(pl.col("row").is_in(list(gone)))["p_respond"].max() == 0  # a churned person answers nothing
    assert truth.filter(~pl.col("row").is_in(list(gone)))["p_respond"].min() > 0
    days.live_until(landing, world, state, origin + 20 * DAY, seed=8)
    landed = pl.read_csv(next((landing / "shop" / "orders").glob("*_simulated.csv")), infer_schema=False)
    gone_accounts = {world.shop_customer_id[i] for i in gone} - {None}
    assert landed.height > 0 and not set(landed["shop_customer_id"].drop_nulls()) & gone_accounts
    events = pl.read_ndjson(next((landing / "events").glob("*[0-9]_simulated.jsonl")))
    assert events.height > 0 and not set(events["user_id"].drop_nulls()) & gone_accounts
    assert {world.lead_email[i] for i in converting} <= set(landed["email"])
    forms = pl.read_ndjson(next((landing / "events").glob("*_forms_simulated.jsonl")))
    assert set(forms["event_type"]) == {"form_submit"}
    in_market = forms.filter(pl.col("email").is_in([world.lead_email[i] for i in eager]))
    assert in_market["email"].n_unique() == 5 and in_market.height >= 10  # about one form a week each, 20 days
    converted = forms.filter(pl.col("email").is_in([world.lead_email[i] for i in converting]))
    assert converted.is_empty() or converted["occurred_at"].max() < "2026-11-03T10"  # none after the first order
    # In a window a lead also looks at the products, from the device they filled the forms in with.
    looked = pl.read_ndjson(next((landing / "events").glob("*_lead_visits_simulated.jsonl")))
    devices = {f"sim-device-{world.person_ids[i]}" for i in eager}
    assert set(looked["event_type"]) == {"product_view"} and devices <= set(looked["anonymous_id"])
    assert set(looked["anonymous_id"]) <= set(forms["anonymous_id"]) | {
        f"sim-device-{world.person_ids[i]}" for i in np.unique(world.lead_windows[:, 0])}


def test_mail_reaching_readers_in_their_hour_is_opened_as_often_as_the_world_planted(tmp_path):
    """Send-time truth, end to end: the world plants each reader's hour in the sandbox (recipients.json), the
    sandbox's readers open by the Date header's hour, and the world's truth per message says the same chance."""
    from sandbox.engagement import new_events
    from simulator.run import plant_recipients
    from simulator.world import HABIT_OPEN_LIFT, OPEN_RATE

    landing, sandbox_state = tmp_path / "landing", tmp_path / "sandbox"
    generate(customers=1500, seed=5, out=landing, as_of=AS_OF)
    world = load(landing, seed=5, origin=epoch_seconds(AS_OF))
    plant_recipients(sandbox_state, world)
    people = pl.read_parquet(landing / "_truth" / "people.parquet").drop_nulls("email")
    # Not a role mailbox shared by colleagues: the world reads such mail as its first user's.
    people = people.filter(pl.Series([bool(world.person_ids[world.by_email[e.strip().lower()]] == p)
                                      for p, e in people.select("person_id", "email").iter_rows()])).head(800)
    mailbox = sandbox_state / "smtp" / "messages.jsonl"
    mailbox.parent.mkdir(parents=True)
    day = datetime(2026, 11, 3, tzinfo=UTC)
    with mailbox.open("w") as out:
        for n, (address, hour) in enumerate(people.select("email", "preferred_hour").iter_rows()):
            # Half at the reader's own hour (Rome, UTC+1 in November: the generator's countries share it), half
            # three hours later.
            at = day + timedelta(hours=hour - 1 + (0 if n % 2 else 3), minutes=10)
            message_id = f"win_back.{n:020x}.1@attiva"
            out.write(json.dumps({"id": f"{n:016x}", "rcpt_tos": [address], "message_id": message_id,
                                  "attiva_message_id": message_id, "received_at": "2026-11-02T10:00:00Z",
                                  "date": at.strftime("%Y-%m-%dT%H:%M:%SZ")}) + "\n")
    state = days.State(clock=epoch_seconds(day))
    days.receive(landing, world, state, mailbox, seed=5)
    truth = days.messages(landing).with_columns(
        own_hour=pl.col("message_id").str.extract(r"\.(\w{20})\.").str.to_integer(base=16) % 2 == 1)
    assert truth.filter("own_hour")["in_hour"].all() and not truth.filter(~pl.col("own_hour"))["in_hour"].any()
    assert truth.filter("own_hour")["p_open"].mean() == pytest.approx(OPEN_RATE * HABIT_OPEN_LIFT)
    assert truth.filter(~pl.col("own_hour"))["p_open"].mean() == pytest.approx(OPEN_RATE)

    events = pl.DataFrame(new_events(sandbox_state, now=epoch_seconds(day + timedelta(days=3))))
    opened = set(events.filter(pl.col("event") == "open")["attiva_message_id"])
    delivered = set(events.filter(pl.col("event") == "delivered")["attiva_message_id"])
    for own in (True, False):
        group = truth.filter((pl.col("own_hour") == own) & pl.col("message_id").is_in(delivered))
        rate = group["message_id"].is_in(opened).mean()
        assert rate == pytest.approx(group["p_open"].mean(), abs=0.08)  # ~390 messages each: one se 0.025


def test_a_rehearsal_reaches_no_real_vendor_and_no_real_warehouse(tmp_path):
    """Before anything runs, every ATTIVA_ variable that could point a rehearsal at production goes: vendor URLs
    and tokens, the warehouse's path, the clock, the event feed; the project's own files stay."""
    from simulator.rehearsal import PROJECT_VARIABLES, isolate

    environ = {"ATTIVA_HOME": "/srv/attiva", "ATTIVA_CHANNELS": "/srv/attiva/channels.yml",
               "ATTIVA_HUBSPOT_URL": "https://api.hubapi.com", "ATTIVA_HUBSPOT_TOKEN": "pat-real",
               "ATTIVA_EMAIL_HOST": "smtp.sendgrid.net", "ATTIVA_EMAIL_PASSWORD": "real",
               "ATTIVA_WAREHOUSE": "/srv/warehouse.duckdb", "ATTIVA_LANDING": "/srv/landing",
               "ATTIVA_ESP_EVENTS_URL": "https://esp.example/events", "ATTIVA_AS_OF": "2026-01-01T00:00:00Z",
               "DAGSTER_HOME": "/srv/dagster", "PATH": "/usr/bin"}
    isolate(tmp_path, environ, mail_channels=["email"])
    assert set(environ) == {"ATTIVA_HOME", "ATTIVA_CHANNELS", "PATH", "ATTIVA_DATA", "ATTIVA_SANDBOX_PORT",
                            "ATTIVA_SMTP_PORT", "ATTIVA_EMAIL_HOST", "ATTIVA_EMAIL_PORT"}
    # channels.yml may name a real mail server: the rehearsal's mail goes to its own sandbox all the same.
    assert (environ["ATTIVA_EMAIL_HOST"], environ["ATTIVA_EMAIL_PORT"]) == ("127.0.0.1", environ["ATTIVA_SMTP_PORT"])
    assert environ["ATTIVA_DATA"] == str(tmp_path) and environ["ATTIVA_SANDBOX_PORT"] != environ["ATTIVA_SMTP_PORT"]
    assert {"ATTIVA_HOME", "ATTIVA_CHANNELS"} <= set(PROJECT_VARIABLES)


def test_a_rehearsal_names_the_campaigns_it_could_try(capsys):
    from activations.cli import main

    assert main(["simulate", "--rehearse", "win_bak"]) == 2
    out = capsys.readouterr().out
    assert "no campaign 'win_bak': declared ones are" in out and "win_back" in out
    assert main(["simulate", "--rehearse", "win_back", "--uplift", "1.5"]) == 2
    assert "--uplift is a share from 0 to below 1" in capsys.readouterr().out


def test_a_rehearsal_plants_the_uplift_the_marketer_expects(tmp_path):
    landing = tmp_path / "landing"
    generate(customers=300, seed=5, out=landing, as_of=AS_OF)
    rows = np.arange(300)
    own = load(landing, seed=5, origin=epoch_seconds(AS_OF))
    tried = load(landing, seed=5, origin=epoch_seconds(AS_OF), uplift={"spring_sale": 0.2})
    at = epoch_seconds(AS_OF)
    assert np.allclose(tried.response_probability(rows, ["win_back"] * 300, at),
                       own.response_probability(rows, ["win_back"] * 300, at))  # the others as planted
    planted = tried.response_probability(rows, ["spring_sale"] * 300, at)
    default = own.response_probability(rows, ["spring_sale"] * 300, at)
    assert (planted > 0).any() and np.allclose(planted, np.minimum(default * 10, 0.95))  # 0.2 planted, 0.02 unnamed
