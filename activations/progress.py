"""The sync progress bar's live column: the real rate, the pause a destination asked for, re-sent rows.

Rich redraws the bar ten times a second; this column reads the engine's last `SyncProgress` at each
redraw, so a pause counts down and the rate falls while nothing is sent, instead of showing the
speed of the last rows that came back.
"""

from __future__ import annotations

from rich.progress import ProgressColumn, Task
from rich.text import Text


class SendingColumn(ProgressColumn):
    """`1,234 rows/s`, then `paused 0.8s (rate limited)` while the destination holds the sync back,
    and `300 re-sent` once a failed request was sent again."""

    def render(self, task: Task) -> Text:
        status = task.fields.get("status")
        if status is None:
            return Text("")
        parts = [f"{status.rows_per_second():,.0f} rows/s"]
        if (left := status.paused_left()) > 0:
            parts.append(f"paused {left:.1f}s (rate limited)")
        if status.resent:
            parts.append(f"{status.resent:,} re-sent")
        return Text(" · ".join(parts), style="progress.data.speed")
