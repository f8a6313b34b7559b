"""What Meta's Graph API answers every client here the same way: its error body, and how long a
throttle lasts.

Meta signals rate limits with Graph error codes (17, 613, 4, 32, 80003, 80004), usually over HTTP
400, and says when access returns in `X-Business-Use-Case-Usage` (`estimated_time_to_regain_access`,
minutes). Codes 10, 190 and 200, and 401/403/404, are configuration errors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

import requests

from activations.destinations.base import BatchRefused, DestinationConfigError, RetryableError
from activations.destinations.config import DestinationConfig, Option
from activations.destinations.transport import HttpClient, response_json, retry_after_header

RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, 80003, 80004})
TRANSIENT_CODES = frozenset({1, 2})
AUTH_CODES = frozenset({10, 190, 200})
DEFAULT_RATE_LIMIT_WAIT = 60.0
API_VERSION_OPTION = Option(str, default="v21.0", help="Graph API version, e.g. v21.0")


def api_version(config: DestinationConfig) -> str:
    """The instance's Graph API version as the path spells it (`v21.0`; a missing `v` is added)."""
    version = str(config.get("api_version"))
    version = version if version.startswith("v") else f"v{version}"
    if not re.fullmatch(r"v\d+\.\d+", version):
        raise config.error("expected a Graph API version like v21.0", "api_version")
    return version


def graph_error(response: requests.Response) -> dict | None:
    """The `error` object of a Graph error body, or None when the body has none."""
    body = response_json(response)
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None


def raise_graph_error(http: HttpClient, response: requests.Response,
                      rejected_rows: Mapping[int, str] | None = None) -> None:
    """Raise what a failed Graph answer means: retry (throttled, transient), stop (auth) or refuse the batch
    (`rejected_rows`: the rows the answer named, by position in the batch)."""
    error = graph_error(response)
    if error is None:
        http.raise_for_status(response, rejected_rows=rejected_rows)
        return
    code = error.get("code")
    subcode = error.get("error_subcode")
    message = f"code {code}" + (f"/{subcode}" if subcode else "") + f": {error.get('message', '')}"
    if error.get("error_user_msg"):
        message += f" ({error['error_user_msg']})"
    reason = http.reason(response, message)
    if code in RATE_LIMIT_CODES:
        raise RetryableError(reason, response.status_code, regain_access_seconds(response))
    if code in TRANSIENT_CODES or error.get("is_transient") or response.status_code >= 500:
        raise RetryableError(reason, response.status_code, retry_after_header(response))
    if code in AUTH_CODES or response.status_code in (401, 403, 404):
        raise DestinationConfigError(reason, response.status_code)
    raise BatchRefused(reason, response.status_code, rejected_rows)


def regain_access_seconds(response: requests.Response) -> float:
    """Seconds until Meta lifts the throttle, from `X-Business-Use-Case-Usage` (minutes)."""
    raw = response.headers.get("X-Business-Use-Case-Usage")
    minutes: list[float] = []
    try:
        usage = json.loads(raw) if raw else {}
    except ValueError:
        usage = {}
    if isinstance(usage, dict):
        for entries in usage.values():
            for entry in entries if isinstance(entries, list) else [entries]:
                value = entry.get("estimated_time_to_regain_access") if isinstance(entry, dict) else None
                if isinstance(value, int | float) and value > 0:
                    minutes.append(float(value))
    if minutes:
        return max(minutes) * 60.0
    return retry_after_header(response) or DEFAULT_RATE_LIMIT_WAIT
