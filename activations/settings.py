"""Where things live and what time it is, from the environment.

Every path has one environment variable, so tests, the demo and a user's
deployment can point Attiva elsewhere without touching code.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path


def project_root() -> Path:
    """The repository root: ATTIVA_HOME, else the folder holding dbt_project/."""
    if home := os.environ.get("ATTIVA_HOME"):
        return Path(home).resolve()
    here = Path(__file__).resolve().parent.parent
    return here if (here / "dbt_project").is_dir() else Path.cwd()


def data_dir() -> Path:
    return Path(os.environ.get("ATTIVA_DATA", project_root() / "data"))


def warehouse_path() -> Path:
    """The DuckDB file: ATTIVA_WAREHOUSE, default data/warehouse.duckdb."""
    return Path(os.environ.get("ATTIVA_WAREHOUSE", data_dir() / "warehouse.duckdb"))


def spark_dir() -> Path:
    """Where the local Spark target keeps its tables and metastore: ATTIVA_SPARK_DIR, default data/spark."""
    return Path(os.environ.get("ATTIVA_SPARK_DIR", data_dir() / "spark")).resolve()


def landing_path() -> Path:
    """The landing folder: ATTIVA_LANDING, default data/landing."""
    return Path(os.environ.get("ATTIVA_LANDING", data_dir() / "landing"))


def templates_dir() -> Path:
    """The message templates folder: ATTIVA_TEMPLATES, default templates/ at the project root."""
    return Path(os.environ.get("ATTIVA_TEMPLATES", project_root() / "templates"))


def dbt_project_dir() -> Path:
    return project_root() / "dbt_project"


def as_of() -> datetime:
    """The one "now" of the pipeline: ATTIVA_AS_OF (ISO 8601, UTC if no offset), else the current time."""
    raw = os.environ.get("ATTIVA_AS_OF")
    return instant(raw) if raw else datetime.now(UTC).replace(microsecond=0)


def as_of_pinned() -> bool:
    """Whether ATTIVA_AS_OF fixes "now" (a replay, the demo) rather than the clock."""
    return bool(os.environ.get("ATTIVA_AS_OF"))


def instant(value: str) -> datetime:
    """An ISO 8601 date-time, in UTC when it names no offset (ATTIVA_AS_OF, the CLI's --as-of)."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def channels_path() -> Path:
    """The message channels: ATTIVA_CHANNELS, default channels.yml at the project root."""
    return Path(os.environ.get("ATTIVA_CHANNELS", project_root() / "channels.yml"))


def destinations_path() -> Path:
    """The destination instances: ATTIVA_DESTINATIONS, default destinations.yml at the project root."""
    return Path(os.environ.get("ATTIVA_DESTINATIONS", project_root() / "destinations.yml"))


def serve_keys_path() -> Path:
    """The personalization API's keys: ATTIVA_SERVE_KEYS, default serve_keys.yml at the project root."""
    return Path(os.environ.get("ATTIVA_SERVE_KEYS", project_root() / "serve_keys.yml"))


def studio_users_path() -> Path:
    """The console's users and password hashes: ATTIVA_STUDIO_USERS, default studio_users.yml at the project root."""
    return Path(os.environ.get("ATTIVA_STUDIO_USERS", project_root() / "studio_users.yml"))


def studio_secret() -> str | None:
    """ATTIVA_STUDIO_SECRET: signs the console's session cookies (`attiva studio` refuses to start without it)."""
    return os.environ.get("ATTIVA_STUDIO_SECRET") or None


def studio_password() -> str | None:
    """ATTIVA_STUDIO_PASSWORD: the password `attiva studio --add-user` stores (unset: it asks)."""
    return os.environ.get("ATTIVA_STUDIO_PASSWORD") or None


def studio_email_domain() -> str:
    """ATTIVA_STUDIO_EMAIL_DOMAIN: the console's users commit saved audiences as <name>@<this> (default attiva-studio.local)."""
    return os.environ.get("ATTIVA_STUDIO_EMAIL_DOMAIN") or "attiva-studio.local"


def serving_dir() -> Path:
    """The personalization API's serving store: ATTIVA_SERVING, default ATTIVA_DATA/serving."""
    return Path(os.environ.get("ATTIVA_SERVING", data_dir() / "serving"))


def manifest_path() -> Path:
    """The dbt manifest: ATTIVA_MANIFEST, else the one `make dbt-parse` writes (dbt_project/target/manifest.json)."""
    if env := os.environ.get("ATTIVA_MANIFEST"):
        return Path(env)
    return dbt_project_dir() / "target" / "manifest.json"


def dbt_target() -> str | None:
    """The warehouse dbt and the engine work on: ATTIVA_DBT_TARGET (duckdb or spark), None for the default."""
    return os.environ.get("ATTIVA_DBT_TARGET") or None


def messaging_path() -> Path:
    """Frequency caps and default quiet hours: ATTIVA_MESSAGING, default messaging.yml at the root."""
    return Path(os.environ.get("ATTIVA_MESSAGING", project_root() / "messaging.yml"))


def listening_path() -> Path:
    """Web listening's brand, competitors, topics and feeds: ATTIVA_LISTENING, default listening.yml at the root."""
    return Path(os.environ.get("ATTIVA_LISTENING", project_root() / "listening.yml"))


def sync_memory_limit() -> str:
    """DuckDB's memory cap while a sync runs: ATTIVA_SYNC_MEMORY_LIMIT, default 1GB (it spills past it)."""
    return os.environ.get("ATTIVA_SYNC_MEMORY_LIMIT", "1GB")


def matching_memory_limit() -> str:
    """DuckDB's memory cap for probabilistic matching (its own in-memory database): ATTIVA_MATCHING_MEMORY_LIMIT,
    default 4GB (it spills to a temporary folder past it)."""
    return os.environ.get("ATTIVA_MATCHING_MEMORY_LIMIT", "4GB")


def warehouse_wait() -> float:
    """Seconds to wait for a warehouse another process holds: ATTIVA_WAREHOUSE_WAIT, default 600 (longer
    than a demo-sized dbt build or sync holds the file)."""
    return max(_number("ATTIVA_WAREHOUSE_WAIT", 600.0, "a number of seconds"), 0.0)


def match_thresholds() -> dict[str, float]:
    """Probabilistic matching's thresholds set in the environment: ATTIVA_MATCH_THRESHOLD (a pair merges at
    or above it) and ATTIVA_REVIEW_THRESHOLD (goes to review at or above it); unset ones are left out."""
    found = {}
    for name, variable in (("match_threshold", "ATTIVA_MATCH_THRESHOLD"),
                           ("review_threshold", "ATTIVA_REVIEW_THRESHOLD")):
        if os.environ.get(variable):
            found[name] = _number(variable, 0.0, "a probability such as 0.95")
    return found


def unsubscribe_secret() -> str | None:
    """ATTIVA_UNSUBSCRIBE_SECRET: signs unsubscribe links (messaging and `attiva serve` share it)."""
    return os.environ.get("ATTIVA_UNSUBSCRIBE_SECRET") or None


def unsubscribe_base_url() -> str | None:
    """ATTIVA_UNSUBSCRIBE_BASE_URL: where unsubscribe links point (unset: `attiva serve` on this machine)."""
    return os.environ.get("ATTIVA_UNSUBSCRIBE_BASE_URL") or None


def identity_secret() -> str | None:
    """ATTIVA_IDENTITY_SECRET: signs the identity tokens a shop's backend gives the browser."""
    return os.environ.get("ATTIVA_IDENTITY_SECRET") or None


def meta_app_secret() -> str | None:
    """ATTIVA_META_APP_SECRET: the Meta app's secret, which signs what Meta posts to the leadgen webhook."""
    return os.environ.get("ATTIVA_META_APP_SECRET") or None


def meta_verify_token() -> str | None:
    """ATTIVA_META_VERIFY_TOKEN: the token typed into the app's webhook settings, checked at subscription."""
    return os.environ.get("ATTIVA_META_VERIFY_TOKEN") or None


def meta_page_token() -> str | None:
    """ATTIVA_META_PAGE_TOKEN: the Page access token (leads_retrieval) leads are read from the Graph API with."""
    return os.environ.get("ATTIVA_META_PAGE_TOKEN") or None


def meta_graph_url() -> str:
    """ATTIVA_META_GRAPH_URL: where the Graph API is (default https://graph.facebook.com; the sandbox's
    /meta_leads in the demo)."""
    return os.environ.get("ATTIVA_META_GRAPH_URL") or "https://graph.facebook.com"


def meta_graph_version() -> str:
    """ATTIVA_META_GRAPH_VERSION: the Graph API version leads are read with (default v21.0)."""
    return os.environ.get("ATTIVA_META_GRAPH_VERSION") or "v21.0"


def esp_events_url(env: Mapping[str, str] | None = None) -> str | None:
    """ATTIVA_ESP_EVENTS_URL: the ESP's engagement event feed; unset, empty or `none`: landing files only."""
    value = (os.environ if env is None else env).get("ATTIVA_ESP_EVENTS_URL", "").strip()
    return None if value.lower() in ("", "none") else value


def instance_prefix(name: str) -> str:
    """`ATTIVA_<NAME>`: a destination's or channel's name upper-cased, every non-alphanumeric as `_`."""
    return "ATTIVA_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def instance_setting(name: str, suffix: str, env: Mapping[str, str] | None = None) -> str | None:
    """`ATTIVA_<NAME>_<SUFFIX>` of a destination or channel instance (its URL, TOKEN, PASSWORD, ...)."""
    return (os.environ if env is None else env).get(f"{instance_prefix(name)}_{suffix}") or None


def _number(variable: str, default: float, expected: str) -> float:
    return _parsed(variable, default, float, expected, None)


def _parsed(variable: str, default, parse, expected: str, env: Mapping[str, str] | None):
    """`variable` read by `parse`, `default` when unset; a ValueError naming it and what it expects."""
    raw = (os.environ if env is None else env).get(variable)
    if not raw:
        return default
    try:
        return parse(raw)
    except ValueError:
        raise ValueError(f"{variable}={raw!r}: expected {expected}") from None


# A sync's write-ahead log may grow this far before it is checkpointed (see warehouse.connect).
SYNC_CHECKPOINT_THRESHOLD = "1GB"


# The local ports, one variable each: the sandbox (`attiva sandbox`, and the destinations.yml
# defaults that point at it), its mail server, `attiva serve`, the Dagster UI (`make dev`) and `attiva studio`.
SANDBOX_PORT, SMTP_PORT, SERVE_PORT, DAGSTER_PORT, STUDIO_PORT = 8765, 8025, 8766, 3000, 8767


def sandbox_port(env: Mapping[str, str] | None = None) -> int:
    """ATTIVA_SANDBOX_PORT, default 8765."""
    return _port("ATTIVA_SANDBOX_PORT", SANDBOX_PORT, env)


def smtp_port(env: Mapping[str, str] | None = None) -> int:
    """ATTIVA_SMTP_PORT, default 8025 (the sandbox's mail server; 0 turns it off)."""
    return _port("ATTIVA_SMTP_PORT", SMTP_PORT, env)


def serve_port(env: Mapping[str, str] | None = None) -> int:
    """ATTIVA_SERVE_PORT, default 8766."""
    return _port("ATTIVA_SERVE_PORT", SERVE_PORT, env)


def dagster_port(env: Mapping[str, str] | None = None) -> int:
    """ATTIVA_DAGSTER_PORT, default 3000 (`make dev`'s Dagster UI)."""
    return _port("ATTIVA_DAGSTER_PORT", DAGSTER_PORT, env)


def studio_port(env: Mapping[str, str] | None = None) -> int:
    """ATTIVA_STUDIO_PORT, default 8767 (`attiva studio`, the marketer's console)."""
    return _port("ATTIVA_STUDIO_PORT", STUDIO_PORT, env)


def _port(variable: str, default: int, env: Mapping[str, str] | None) -> int:
    return _parsed(variable, default, int, f"a port number such as {default}", env)
