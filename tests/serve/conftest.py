"""Fixtures of the personalization API: the handcrafted warehouse with profiling consent, a snapshot
of it, keys of every kind, and the API served over loopback by uvicorn in a thread."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
import requests

from activations.serve.app import create_app, running_server
from activations.serve.keys import ALL_FIELDS, BROWSER_FIELDS, ENDPOINTS, ApiKey, KeysConfig, hash_key
from activations.serve.store import build_serving_store

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # the handcrafted warehouse's as_of
MARIO = "cus_4ce3022f960f7fa7"
LAURA = "cus_29368edbe721d21b"  # left without profiling consent (in audiences, favourite on promotion)
PAOLA = "cus_6d1fe2493eb0ff4e"  # has a recommendation and her favourite on promotion

IDENTITY_SECRET = "test-identity-secret"  # ATTIVA_IDENTITY_SECRET of the test server
KEYS = {
    "server": ApiKey("server", hash_key("server-key"), frozenset(ENDPOINTS), frozenset(ALL_FIELDS), 1000, 1000,
                     "server"),
    "browser": ApiKey("browser", hash_key("browser-key"), frozenset(ENDPOINTS), frozenset(BROWSER_FIELDS), 1000, 1000,
                      "browser"),
    "slow": ApiKey("slow", hash_key("slow-key"), frozenset(ENDPOINTS), frozenset(ALL_FIELDS), 0.5, 2, "server"),
    "slow-browser": ApiKey("slow-browser", hash_key("slow-browser-key"), frozenset(ENDPOINTS),
                           frozenset(BROWSER_FIELDS), 1, 3, "browser"),
    "collector": ApiKey("collector", hash_key("collector-key"), frozenset({"events"}), frozenset(), 1000, 1000,
                        "server"),
    "narrow": ApiKey("narrow", hash_key("narrow-key"), frozenset({"profiles"}), frozenset({"first_name", "recommendations"}),
                     1000, 1000, "server"),
}


def copy_warehouse(source: Path, target: Path, profiling: bool = True) -> Path:
    """A copy of the handcrafted warehouse. Nobody there granted profiling consent (no record = no
    consent), so the copy grants it to everyone but Laura, as a `consent` landing record would."""
    shutil.copyfile(source, target)
    if profiling:
        with duckdb.connect(str(target)) as con:
            kind = con.execute("select table_type from information_schema.tables where table_schema = 'marts' "
                               "and table_name = 'customers'").fetchone()[0]
            # marts.customers may be a view over intermediate tables: the copy gets a table of its own.
            con.execute("create table marts.customers_consented as select * replace ((customer_id <> ?) as "
                        "consent_profiling) from marts.customers", [LAURA])
            con.execute(f"drop {'table' if kind == 'BASE TABLE' else 'view'} marts.customers")
            con.execute("alter table marts.customers_consented rename to customers")
    return target


@pytest.fixture(scope="session")
def consented_warehouse(handcrafted_warehouse: Path, tmp_path_factory) -> Path:
    return copy_warehouse(handcrafted_warehouse, tmp_path_factory.mktemp("serve") / "warehouse.duckdb")


@pytest.fixture
def serving(consented_warehouse: Path, tmp_path: Path) -> Path:
    out = tmp_path / "serving"
    build_serving_store(consented_warehouse, out)
    return out


class Client:
    """requests against the running API with one key."""

    def __init__(self, base_url: str, key: str | None = "server-key"):
        self.base_url = base_url
        self.session = requests.Session()
        if key:
            self.session.headers["Authorization"] = f"Bearer {key}"

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(self.base_url + path, timeout=10, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return self.session.post(self.base_url + path, timeout=10, **kwargs)

    def as_key(self, key: str | None) -> Client:
        return Client(self.base_url, key)


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    return tmp_path / "landing"


@pytest.fixture
def api(serving: Path, landing: Path) -> Iterator[Client]:
    app = create_app(KeysConfig(list(KEYS.values()), ["https://shop.example.it"]), serving, landing,
                     clock=lambda: NOW, check_seconds=0, identity_secret=IDENTITY_SECRET, demo=True)
    with running_server(app) as url:
        yield Client(url)
