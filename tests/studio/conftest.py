"""The console on the handcrafted warehouse (a copy given two syncs' runs, two ledger rows of Mario's,
an A/B test of favourite_on_promotion sent to Mario and Laura with Paola held out, and a page view of
Mario's whose URL carries his email, so every part of the pages has something to show), with a viewer,
a marketer and an admin, served by uvicorn over loopback."""

from __future__ import annotations

import email
import email.policy
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
import requests

from activations.engine.state import ensure_state
from activations.serve.app import running_server
from activations.studio import reading
from activations.studio.app import Studio, create_app
from activations.studio.users import add_user
from sandbox.smtp import running_smtp

SECRET = "test-studio-secret-0123456789"
PASSWORDS = {"vera": "viewer-password", "mara": "marketer-password", "ada": "admin-password"}
ROLES = {"vera": "viewer", "mara": "marketer", "ada": "admin"}
# Mario (tests/fixtures/handcrafted): in aud_champions, with an email, a phone and a name.
MARIO = "cus_4ce3022f960f7fa7"
MARIO_PII = ("mario.rossi@gmail.com", "+393331234567", "3331234567", "Mario", "Rossi", "1985-11-25")

SYNC_RUNS = [  # run_id, sync_name, status, started_at, audience_rows, sent, confirmed, rejected, invalid, error
    ("r1", "aud_champions__hubspot", "success", datetime(2026, 11, 18, 6, 0), 2, 2, 2, 0, 0, None),
    ("r2", "aud_champions__hubspot", "delivered_except_invalid", datetime(2026, 11, 20, 6, 0), 1, 1, 0, 0, 1, None),
    ("r3", "aud_champions__meta", "failed", datetime(2026, 11, 20, 6, 5), 1, 0, 0, 1, 0, "HTTP 503 from meta"),
]
LEDGER = [  # campaign, trigger_key, step, state, reason, occurred_at, sent_at
    ("win_back", f"{MARIO}:2026-01-10", 1, "sent", None, datetime(2026, 11, 1, 9, 0), datetime(2026, 11, 1, 10, 0)),
    ("birthday", f"{MARIO}:2026", 1, "suppressed", "frequency cap: 2 marketing messages in 7 days",
     datetime(2026, 11, 19, 8, 0), None),
]

# favourite_on_promotion's A/B step (thompson): Mario got variant a, Laura b, Paola was held out.
LAURA, PAOLA = "cus_29368edbe721d21b", "cus_6d1fe2493eb0ff4e"
PROMOTION = "favourite_on_promotion"
MARIOS_OCCURRENCE = f"{MARIO}:PR1"
# A tracked link that put Mario's address in the query string: a viewer must not see it in his timeline.
MARIOS_TRACKED_VIEW = ("E_STUDIO", datetime(2026, 11, 18, 8, 0),
                       "https://shop.example/account?email=mario.rossi@gmail.com#orders")
AB_TEST = [  # customer, template, state, variant_probability
    (MARIO, "favourite_on_promotion", "sent", 0.5),
    (LAURA, "favourite_on_promotion_b", "sent", 0.5),
    (PAOLA, "favourite_on_promotion", "held_out", 0.5),
]


@pytest.fixture(scope="session")
def studio_warehouse(handcrafted_warehouse: Path, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("studio") / "warehouse.duckdb"
    shutil.copyfile(handcrafted_warehouse, target)
    with duckdb.connect(str(target)) as con:
        for run_id, sync, status, started, rows, sent, confirmed, rejected, invalid, error in SYNC_RUNS:
            con.execute("insert into activation.sync_runs (run_id, sync_name, status, started_at, audience_rows, "
                        "sent, confirmed, rejected, invalid, error) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [run_id, sync, status, started, rows, sent, confirmed, rejected, invalid, error])
        # Two builds' quality gates measured aud_at_risk, which no sync reads: 5 then 3 customers.
        con.execute("create table activation.quality_gate_counts (asset varchar not null, row_count bigint not null, "
                    "passed boolean not null, run_id varchar, checked_at timestamp not null)")
        con.execute("insert into activation.quality_gate_counts values "
                    "('audiences/aud_at_risk', 5, true, 'b1', '2026-11-18 05:00'), "
                    "('audiences/aud_at_risk', 3, true, 'b2', '2026-11-20 05:00'), "
                    "('marts/customers', 12, true, 'b2', '2026-11-20 05:00')")
        ensure_state(con)  # r3's rejected row, waiting to be resent
        con.execute("insert into activation.sync_rejects values ('aud_champions__meta', ?, 'add', 'rejected', "
                    "'HTTP 503 from meta: Service temporarily unavailable', 503, 3, ?, ?, 'r3')",
                    [MARIO, datetime(2026, 11, 20, 6, 5), datetime(2026, 11, 20, 6, 5)])
        for campaign, key, step, state, reason, occurred, sent_at in LEDGER:
            con.execute("insert into activation.message_ledger (campaign, trigger_key, step, customer_id, channel, "
                        "template, state, reason, marketing, occurred_at, sent_at, provider_id) "
                        "values (?, ?, ?, ?, 'email', ?, ?, ?, true, ?, ?, ?)",
                        [campaign, key, step, MARIO, f"{campaign}_1", state, reason, occurred, sent_at,
                         "msg-1" if state == "sent" else None])
        event_id, occurred, url = MARIOS_TRACKED_VIEW
        con.execute("insert into intermediate.int_events (event_id, customer_id, event_type, occurred_at, "
                    "anonymous_id, platform, url) values (?, ?, 'page_view', ?, 'D1', 'web', ?)",
                    [event_id, MARIO, occurred, url])
        for customer, template, state, probability in AB_TEST:
            con.execute("insert into activation.message_ledger (campaign, trigger_key, step, customer_id, channel, "
                        "template, state, reason, marketing, occurred_at, due_at, planned_at, updated_at, sent_at, "
                        "message_id, variant_probability) values ('favourite_on_promotion', ?, 1, ?, 'email', ?, ?, "
                        "?, true, ?, ?, ?, ?, ?, ?, ?)",
                        [f"{customer}:PR1", customer, template, state,
                         "holdout (10% of customers)" if state == "held_out" else None, datetime(2026, 11, 15),
                         datetime(2026, 11, 15), datetime(2026, 11, 15, 1), datetime(2026, 11, 15, 9),
                         datetime(2026, 11, 15, 9) if state == "sent" else None,
                         f"favourite_on_promotion.{customer}.1@attiva", probability])
    return target


@pytest.fixture(scope="session")
def users_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("studio-users") / "studio_users.yml"
    for name, role in ROLES.items():
        add_user(path, name, role, PASSWORDS[name])
    return path


@pytest.fixture(scope="session")
def studio(studio_warehouse: Path, users_file: Path) -> Studio:
    return Studio(users_file, studio_warehouse)


@pytest.fixture(scope="session")
def console(studio: Studio) -> Iterator[str]:
    """The console's base URL: uvicorn on a free loopback port."""
    with running_server(create_app(studio, SECRET)) as url:
        yield url


class Visitor:
    """A requests session that logs in like a person: reads the form's token, posts it back."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.session = requests.Session()

    def get(self, path: str) -> requests.Response:
        return self.session.get(self.base_url + path, timeout=10)

    def post(self, path: str, data: dict, token: bool = True) -> requests.Response:
        if token:
            data = {"csrf_token": self.token(), **data}
        return self.session.post(self.base_url + path, data=data, timeout=10)

    def token(self) -> str:
        return form_token(self.get("/login").text)

    def log_in(self, name: str, password: str | None = None) -> requests.Response:
        return self.post("/login", {"name": name, "password": password or PASSWORDS[name], "next": "/audiences"})


def form_token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html)[1]


def text_of(html: str) -> str:
    """What the page says, without its markup."""
    return " ".join(re.sub(r"<style.*?</style>|<[^>]+>", " ", html, flags=re.S).split())


@pytest.fixture
def visitor(console: str) -> Visitor:
    return Visitor(console)


@pytest.fixture
def as_viewer(visitor: Visitor) -> Visitor:
    assert visitor.log_in("vera").status_code == 200
    return visitor


@pytest.fixture
def as_marketer(visitor: Visitor) -> Visitor:
    assert visitor.log_in("mara").status_code == 200
    return visitor


@pytest.fixture
def as_admin(visitor: Visitor) -> Visitor:
    assert visitor.log_in("ada").status_code == 200
    return visitor


@pytest.fixture
def smtp_store(tmp_path, monkeypatch) -> Iterator[Path]:
    """The sandbox SMTP server, which channels.yml's `email` channel points at (ATTIVA_SMTP_PORT); its store."""
    for name in ("ATTIVA_EMAIL_HOST", "ATTIVA_EMAIL_PORT", "ATTIVA_EMAIL_USERNAME", "ATTIVA_EMAIL_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    with running_smtp(tmp_path) as (_, port):
        monkeypatch.setenv("ATTIVA_SMTP_PORT", str(port))
        yield tmp_path / "smtp" / "messages.jsonl"


def received(store: Path) -> list[email.message.EmailMessage]:
    lines = store.read_text(encoding="utf-8").splitlines() if store.exists() else []
    return [email.message_from_string(json.loads(line)["raw"].replace("\r\n", "\n"), policy=email.policy.default)
            for line in lines]


@contextmanager
def holding_for_writing(warehouse: Path) -> Iterator[subprocess.Popen]:
    """Another process holding the warehouse open for writing until the block ends (or it is killed)."""
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; con = duckdb.connect(sys.argv[1]); "
                               "print('held', flush=True); time.sleep(60)", str(warehouse)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder
    finally:
        holder.kill()
        holder.wait()


@pytest.fixture
def writer_holding(studio, monkeypatch) -> Iterator[subprocess.Popen]:
    """Another process holding the warehouse open for writing until killed; the console waits 0.5 s for it."""
    monkeypatch.setattr(reading, "READ_WAIT", 0.5)
    with holding_for_writing(studio.warehouse_path) as holder:
        yield holder
