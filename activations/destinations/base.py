"""What the activation engine and every destination client agree on.

The engine plans, batches, rate-limits and retries; a client does one exchange
with its platform per `send` and translates the answer into one `RowResult` per
row, or raises one of the errors below. Everything the engine needs to know
about a platform is in its `Capabilities`, so the engine never branches on a
destination's name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, Protocol, get_args, runtime_checkable

import polars as pl

from activations.config.errors import ConfigError

Operation = Literal["upsert", "remove"]
Mode = Literal["upsert", "update", "insert", "mirror", "full_resync"]

MODES: tuple[str, ...] = get_args(Mode)  # every sync mode, in this order
IDENTIFIER_KINDS: tuple[str, ...] = (
    "email",
    "phone",
    "external_id",
    "first_name",
    "last_name",
    "city",
    "state",
    "zip",
    "country",
    "gender",
    "birth_year",
    "birth_month",
    "birth_day",
)
# Platforms that hash identifiers leave these in clear (Meta: EXTERN_ID is never hashed).
UNHASHED_KINDS: frozenset[str] = frozenset({"external_id"})

KEY_COLUMN = "_key"
DESTINATION_ID_COLUMN = "_destination_id"


class Secret:
    """A credential: its value is only readable through `reveal()`, never printed."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def redact(self, text: str) -> str:
        """`text` with every occurrence of the secret replaced by '***'."""
        return text.replace(self._value, "***") if self._value else text

    def __str__(self) -> str:
        return "***"

    def __repr__(self) -> str:
        return "Secret('***')"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self):  # pickling would be a way to leak it into a file
        raise TypeError("a Secret cannot be pickled")


@dataclass(frozen=True)
class Capabilities:
    """What a destination accepts and how hard it may be driven; the engine reads only this."""

    type: str
    batch_size: int  # rows per `send` at the platform's limit
    # Calls to `send` per window: a client that makes two requests per send declares half the platform's limit.
    requests_per_window: int | None  # None: the platform publishes no rate limit to pace against
    window_seconds: float | None
    max_concurrency: int
    modes: frozenset[str]
    # Identifier kinds accepted, in the order the client sends them. None (`()`): the rows name no one (a
    # catalog's products) and the platform knows each by the sync's key; set `keyed_by_identifiers=False`.
    identifiers: tuple[str, ...]
    hashing: Literal["sha256"] | None  # the engine hashes identifiers (except `clear_identifiers`) before send
    idempotent_writes: bool
    # How identifiers.prepare_identifiers normalizes before hashing: platforms disagree on both.
    email_normalization: Literal["trim", "strip_whitespace"] = "trim"
    phone_format: Literal["e164", "digits"] = "e164"
    accepts_fields: bool = True  # False: only identifiers reach the platform (audiences, list membership)
    required_identifiers: tuple[str, ...] = ()  # each row must carry all of these; else any one of `identifiers`
    remove_batch_size: int | None = None  # rows per removal when the platform's removal path takes fewer
    # True: the platform knows a row by its identifiers (a contact by email, an audience member by hash), so
    # a row whose identifiers change must leave under the old ones. False: it knows rows by the sync's key.
    keyed_by_identifiers: bool = True
    # Identifier kinds sent in clear when the platform hashes the others (Custom Audiences: EXTERN_ID).
    clear_identifiers: frozenset[str] = UNHASHED_KINDS
    # Destination fields every sync to this platform must map (a conversion's event_name, event_time...).
    required_fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown_modes = set(self.modes) - set(MODES)
        if unknown_modes:
            raise ValueError(f"unknown modes {sorted(unknown_modes)}")
        unknown_ids = set(self.identifiers) - set(IDENTIFIER_KINDS)
        if unknown_ids:
            raise ValueError(f"unknown identifier kinds {sorted(unknown_ids)}")
        if self.batch_size < 1 or self.max_concurrency < 1:
            raise ValueError("batch_size and max_concurrency must be positive")
        if (self.requests_per_window is None) != (self.window_seconds is None):
            raise ValueError("requests_per_window and window_seconds go together")
        if not self.identifiers and self.keyed_by_identifiers:
            raise ValueError("a platform that takes no identifiers knows rows by key: keyed_by_identifiers=False")

    @property
    def supports_remove(self) -> bool:
        return "mirror" in self.modes


@dataclass(frozen=True)
class RowResult:
    """The platform's verdict on one input row; `destination_id` is the platform's record id when it gave one."""

    ok: bool
    status: int | None = None
    reason: str | None = None
    destination_id: str | None = None


@dataclass(frozen=True)
class UploadReport:
    """What a platform itself said about a run's uploads, where it says anything: rows it received and
    found invalid (Meta's `num_received` / `num_invalid_entries`), and the share of the uploaded
    records it matched to its users, as the range it reports (Google's `uploadMatchRateRange`).

    A client that can tell implements `upload_report() -> UploadReport | None`, returning what it
    gathered since the last call; the engine asks once at the end of each run and records it.
    """

    received: int | None = None
    invalid: int | None = None
    match_rate_low: float | None = None  # 0..1, weighted by the records each request carried
    match_rate_high: float | None = None


@dataclass(frozen=True)
class BatchPart:
    """Where a batch sits in one logical upload (Meta's multi-batch session uses it).

    `run_id` ties the parts of one upload together when parts are sent concurrently;
    `seq` starts at 1.
    """

    seq: int
    is_last: bool
    total_rows: int
    run_id: str = ""


class DestinationError(Exception):
    """Base of every error a destination client raises; messages never carry secrets."""

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class RetryableError(DestinationError):
    """Transient: 429, 5xx, connection errors, timeouts, platform rate-limit signals.

    `retry_after` is the platform's own back-off signal in seconds, when it gave one. `resume`, when
    set, is the step that failed and only that: a client whose first request of a send succeeded
    (HubSpot's upsert) and whose second failed (the list membership) hands it back, so the engine
    retries the membership without writing the contacts again. It returns the send's results.
    """

    def __init__(self, reason: str, status: int | None = None, retry_after: float | None = None,
                 resume: Callable[[], list[RowResult]] | None = None) -> None:
        super().__init__(reason, status)
        self.retry_after = retry_after
        self.resume = resume

    def __str__(self) -> str:
        after = f", retry after {self.retry_after:.1f}s" if self.retry_after is not None else ""
        return f"{self.reason} (status {self.status}{after})"


class BatchRefused(DestinationError):
    """The platform refused the whole batch for a non-transient reason.

    The engine halves the batch to isolate the bad rows. When the platform named
    them, `rejected_rows` maps their positions in the batch to reasons, so the
    engine can set them aside without halving.
    """

    def __init__(self, reason: str, status: int | None = None, rejected_rows: Mapping[int, str] | None = None) -> None:
        super().__init__(reason, status)
        self.rejected_rows: Mapping[int, str] = dict(rejected_rows or {})

    def __str__(self) -> str:
        return f"{self.reason} (status {self.status})"


class QuotaExhausted(BatchRefused):
    """A long quota (HubSpot's daily limit, Salesforce's 24 h allocation) is spent.

    A `BatchRefused` so an engine that does not know it still stops retrying, but
    halving will not help: the sync should stop until the quota resets.
    """


class DestinationConfigError(DestinationError, ConfigError):
    """The destination is misconfigured: a bad destinations file, or credentials/ids the platform rejects."""

    def __init__(
        self,
        reason: str,
        status: int | None = None,
        *,
        file: str | None = None,
        destination: str | None = None,
        field: str | None = None,
    ) -> None:
        ConfigError.__init__(self, reason, file=file, entry=destination, entry_kind="destination", field=field)
        self.status = status
        self.destination = destination


def can_erase(client: object) -> bool:
    """Whether the client implements the optional erasure capability.

    `erase(rows) -> list[RowResult]` deletes people at the platform with its own deletion API (not a
    list removal), whatever the syncs' modes. `rows` has the identifier columns the client accepts,
    prepared as for `send` (normalized, hashed where the platform hashes), plus `_key` and
    `_destination_id` (either may be null). A row is ok once the platform no longer holds that person
    under those identifiers: deleted now, or never held there (a 404 is a confirmation).
    """
    return callable(getattr(client, "erase", None))


@runtime_checkable
class Destination(Protocol):
    """A client for one destination instance; `send` is called from several threads at once."""

    capabilities: Capabilities

    def send(self, operation: Operation, batch: pl.DataFrame, part: BatchPart | None = None) -> list[RowResult]:
        """One exchange with the platform; one result per row of `batch`, in order."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...
