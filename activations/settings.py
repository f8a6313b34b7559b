"""Where things live and what time it is, from the environment.

Every path has one environment variable, so tests, the demo and a user's
deployment can point Attiva elsewhere without touching code.
"""

from __future__ import annotations

import os
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
    if not raw:
        return datetime.now(UTC).replace(microsecond=0)
    value = datetime.fromisoformat(raw)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def messaging_path() -> Path:
    """Frequency caps and default quiet hours: ATTIVA_MESSAGING, default messaging.yml at the root."""
    return Path(os.environ.get("ATTIVA_MESSAGING", project_root() / "messaging.yml"))


def sync_memory_limit() -> str:
    """DuckDB's memory cap while a sync runs: ATTIVA_SYNC_MEMORY_LIMIT, default 1GB (it spills past it)."""
    return os.environ.get("ATTIVA_SYNC_MEMORY_LIMIT", "1GB")


# A sync's write-ahead log may grow this far before it is checkpointed (see warehouse.connect).
SYNC_CHECKPOINT_THRESHOLD = "1GB"
