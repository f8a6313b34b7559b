"""The shared HTTP plumbing and the platforms' back-off signals, parsed from hand-made responses."""

from __future__ import annotations

import json
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from activations.destinations.base import BatchRefused, DestinationConfigError, RetryableError, Secret
from activations.destinations.meta.graph import regain_access_seconds as _regain_access_seconds
from activations.destinations.transport import HttpClient, RollingWindow, retry_after_header


def response(status: int, body=None, headers=None) -> requests.Response:
    answer = requests.Response()
    answer.status_code = status
    answer._content = json.dumps(body).encode() if body is not None else b""
    answer.headers.update(headers or {})
    return answer


def client(secret: str = "tok-unit-Zq81") -> HttpClient:
    return HttpClient("http://127.0.0.1:9", Secret(secret), platform="unit", max_concurrency=2)


def test_retry_after_in_seconds_or_as_a_date():
    assert retry_after_header(response(429, headers={"Retry-After": "7"})) == 7.0
    in_20s = formatdate(time.time() + 20, usegmt=True)
    assert 18 <= retry_after_header(response(429, headers={"Retry-After": in_20s})) <= 20
    assert retry_after_header(response(429)) is None


def test_generic_status_policy():
    http = client()
    with pytest.raises(RetryableError) as err:
        http.raise_for_status(response(503, {"message": "down"}, {"Retry-After": "3"}))
    assert err.value.retry_after == 3.0 and err.value.reason == "unit 503: down"
    with pytest.raises(DestinationConfigError):
        http.raise_for_status(response(401, {"message": "bad token"}))
    with pytest.raises(BatchRefused) as refused:
        http.raise_for_status(response(422, {"errors": [{"message": "bad row"}]}), rejected_rows={3: "bad"})
    assert refused.value.rejected_rows == {3: "bad"}
    http.raise_for_status(response(207))
    http.close()


def test_platform_messages_that_echo_the_secret_are_redacted():
    http = client("tok-unit-Zq81")
    with pytest.raises(BatchRefused) as err:
        http.raise_for_status(response(400, {"message": "token tok-unit-Zq81 lacks scope"}))
    assert "tok-unit-Zq81" not in str(err.value) and "***" in err.value.reason
    http.close()


def test_rest_of_the_rolling_window():
    window = RollingWindow(10.0)
    assert window.rest_of_window() == 10.0
    window.record()
    assert 9.5 < window.rest_of_window() <= 10.0


def test_meta_business_use_case_usage_minutes():
    usage = {"123": [{"type": "custom_audience", "estimated_time_to_regain_access": 3}, {"type": "ads_management"}]}
    headers = {"X-Business-Use-Case-Usage": json.dumps(usage)}
    assert _regain_access_seconds(response(400, headers=headers)) == 180.0
    assert _regain_access_seconds(response(400)) == 60.0  # no signal: a minute


class Redirecting(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's spelling)
        self.send_response(307)
        self.send_header("Location", "http://127.0.0.1:9/elsewhere")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        return None


def test_redirects_are_not_followed_with_secrets():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        http = HttpClient(
            f"http://127.0.0.1:{server.server_port}",
            Secret("k"),
            platform="unit",
            max_concurrency=1,
            headers={"api-key": "k"},
        )
        with pytest.raises(DestinationConfigError, match="redirected"):
            http.request("POST", "/v3/contacts", json_body={})
        http.close()
    finally:
        server.shutdown()
        server.server_close()


def test_without_retry_after_the_wait_is_until_our_requests_drop_under_the_platforms_limit():
    import time

    from activations.destinations.transport import RollingWindow

    window = RollingWindow(1.0)
    window.record()
    time.sleep(0.3)
    window.record()
    window.record()
    # Three of ours in the window, limit 2: the second oldest must leave, not just the oldest.
    assert 0.5 < window.rest_of_window() < 0.75
    assert 0.8 < window.rest_of_window(limit=2) <= 1.0
    assert abs(window.rest_of_window(limit=5) - window.rest_of_window()) < 0.05  # others share it: our oldest
