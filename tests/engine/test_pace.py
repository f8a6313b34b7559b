"""One token bucket per destination instance, shared by every sync in the process."""

from __future__ import annotations

import threading
import time

import pytest

from activations.engine import pace
from activations.engine.pace import TokenBucket, bucket_for

from .setups import make_client

pytestmark = pytest.mark.xdist_group("engine")


@pytest.fixture(autouse=True)
def fresh_buckets(monkeypatch):
    monkeypatch.setattr(pace, "_buckets", {})


def test_syncs_to_one_destination_share_its_bucket():
    capabilities = make_client("http://127.0.0.1:9", "hubspot").capabilities
    found: list[TokenBucket] = []
    start = threading.Barrier(8)

    def sync_thread() -> None:
        start.wait()
        found.append(bucket_for("crm_hubspot", capabilities))

    threads = [threading.Thread(target=sync_thread) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 8 and all(bucket is found[0] for bucket in found)
    assert bucket_for("other_hubspot", capabilities) is not found[0]


def test_a_shared_bucket_paces_all_its_users_together():
    bucket = TokenBucket(requests_per_window=12, window_seconds=1.0, burst=2)  # 10 a second after the burst
    taken: list[float] = []
    lock = threading.Lock()

    def user() -> None:
        for _ in range(6):
            bucket.acquire()
            with lock:
                taken.append(time.monotonic())

    threads = [threading.Thread(target=user) for _ in range(2)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # 12 tokens, 2 at once and 10 more at 10/s: about one second, whoever asks.
    assert len(taken) == 12 and time.monotonic() - began >= 0.9


def test_a_pause_holds_back_every_user():
    bucket = TokenBucket(requests_per_window=None, window_seconds=None, burst=1)
    bucket.pause(0.3)
    began = time.monotonic()
    bucket.acquire()
    assert time.monotonic() - began >= 0.25
