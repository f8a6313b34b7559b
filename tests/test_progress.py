"""The sync progress bar's rate column: the real rate over wall time, pauses as they count down,
and rows re-sent, redrawn from the engine's last report."""

from __future__ import annotations

import time

from rich.progress import Progress

from activations.engine.run import SyncProgress
from activations.progress import SendingColumn


def rendered(status: SyncProgress) -> str:
    progress = Progress(SendingColumn())
    task = progress.add_task("sync", total=status.total, status=status)
    return str(SendingColumn().render(progress.tasks[task]))


def test_the_rate_counts_the_pause_and_the_pause_counts_down():
    now = time.monotonic()
    # 1,000 rows answered in the first second, then a 4 s pause: 200 rows/s over the 5 s, not 1,000.
    status = SyncProgress(done=1000, total=5000, started=now - 5, paused_until=now + 2.5, paused_seconds=4,
                          resent=100)
    text = rendered(status)
    assert "200 rows/s" in text.replace(",", "")
    assert "paused 2." in text and "rate limited" in text
    assert "100 re-sent" in text
    done = SyncProgress(done=5000, total=5000, started=now - 10, paused_until=now - 1)
    assert rendered(done).strip() == "500 rows/s"  # no pause left, nothing re-sent
