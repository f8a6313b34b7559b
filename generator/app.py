"""The mobile app: each installation's push registrations (the `app_installations` export) and the push
consent the app asks for, with the truth of which tokens are dead.

Every app device of the events (an iOS or Android install) registered an FCM token. Exports are messy as
real ones are: a token that rotated leaves its older registration in the file (the latest per installation
wins), a few registrations are exported twice, an install nobody logged into carries no account, and an
uninstalled app's last token stays in the export: the app never said goodbye, only FCM knows
(`uninstalled_tokens`, which the demo hands to the sandbox's FCM so it answers UNREGISTERED).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from generator.clock import DAY, HOUR
from generator.streams import increasing_ids, push_tokens

LOGGED_IN_SHARE = 0.9  # of installs by people with a shop account
EMAIL_EXPORTED_SHARE = 0.3  # of logged-in rows whose export also carries the account's email
ROTATED_SHARE = 0.15  # installations whose token rotated: the old registration is still in the export
REPLAYED_SHARE = 0.03  # registrations exported twice
UNINSTALLED_SHARE = 0.08  # installations since uninstalled: their last token is dead
PUSH_GRANTED_SHARE = 0.6  # logged-in users who allowed notifications when the app asked
PUSH_REVOKED_SHARE = 0.1  # of those, who later turned them off in the app's settings
VERSIONS = ("4.0.3", "4.1.0", "4.2.1", "4.3.0")


@dataclass(frozen=True)
class App:
    installations: pl.DataFrame  # the export's columns (registered_at in epoch s) plus person_index
    consent: pl.DataFrame  # push consent records, the consent export's columns plus person_index
    uninstalled_tokens: pl.DataFrame  # truth: token, person_index of the tokens FCM answers UNREGISTERED


def app(rng: np.random.Generator, devices: pl.DataFrame, people: pl.DataFrame, shop_id: pl.Series,
        as_of: int) -> App:
    """The app's registrations and push consent for every app device in `devices`."""
    installs = devices.filter(pl.col("platform") != "web")
    n = installs.height
    person = installs["person_index"].to_numpy()
    account = shop_id.gather(person)
    logged_in = account.is_not_null().to_numpy() & (rng.random(n) < LOGGED_IN_SHARE)
    with_email = logged_in & (rng.random(n) < EMAIL_EXPORTED_SHARE)
    registered_at = as_of - rng.integers(HOUR, 300 * DAY, n)
    current = pl.DataFrame({
        "installation_id": installs["anonymous_id"],
        "shop_customer_id": pl.select(pl.when(pl.lit(pl.Series(logged_in))).then(pl.lit(account))).to_series(),
        "email": pl.select(pl.when(pl.lit(pl.Series(with_email))).then(
            pl.lit(people["shop_email"].gather(person)))).to_series(),
        "push_token": push_tokens(rng, n),
        "platform": installs["platform"],
        "app_version": pl.Series(VERSIONS).gather(rng.integers(0, len(VERSIONS), n)),
        "registered_at": registered_at.astype(np.int64),
        "person_index": person.astype(np.int64),
    })
    rotated = np.flatnonzero(rng.random(n) < ROTATED_SHARE)
    older = current[rotated].with_columns(
        push_token=push_tokens(rng, len(rotated)),
        registered_at=pl.Series((registered_at[rotated] - rng.integers(DAY, 120 * DAY, len(rotated))).astype(np.int64)),
        app_version=pl.lit(VERSIONS[0]))
    rows = pl.concat([older, current])
    replayed = rows.filter(pl.Series(rng.random(rows.height) < REPLAYED_SHARE))
    rows = pl.concat([rows, replayed]).sort("registered_at", maintain_order=True)
    gone = rng.random(n) < UNINSTALLED_SHARE
    uninstalled = current.filter(pl.Series(gone)).select("push_token", "person_index")

    asked = np.flatnonzero(logged_in & (rng.random(n) < PUSH_GRANTED_SHARE))
    revoked = asked[rng.random(len(asked)) < PUSH_REVOKED_SHARE]
    revoked_at = registered_at[revoked] + ((as_of - registered_at[revoked]) * rng.random(len(revoked))).astype(np.int64)
    at = np.concatenate([registered_at[asked], revoked_at]).astype(np.int64)
    which = np.concatenate([asked, revoked])
    consent = pl.DataFrame({
        "consent_id": pl.Series(increasing_ids(rng, len(which), 990_000_000, 5)).cast(pl.String),
        "email": pl.Series([None] * len(which), dtype=pl.String),
        "phone": pl.Series([None] * len(which), dtype=pl.String),
        "shop_customer_id": account.gather(which),
        "channel": pl.repeat("push", len(which), eager=True, dtype=pl.String),
        "status": pl.Series(["granted"] * len(asked) + ["revoked"] * len(revoked), dtype=pl.String),
        "recorded_at": at,
        "source": pl.repeat("app", len(which), eager=True, dtype=pl.String),
        "person_index": person[which].astype(np.int64),
    }).filter(pl.col("recorded_at") <= as_of)
    return App(installations=rows, consent=consent, uninstalled_tokens=uninstalled)
