"""Run every benchmark at its default size, one after the other (`make bench`).

Each script prints its own figures; this only sequences them. Sizes are the issues'
targets, so a full run takes several minutes and several GB of disk in /tmp.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
SCRIPTS = [
    ["generate.py", "--customers", "1000000"],
    ["ingest.py"],
    ["build.py", "--customers", "100000"],
    ["identity_accuracy.py", "--customers", "20000"],
    ["send_time_lift.py"],
    ["build.py", "--customers", "1000000"],
    ["sandbox_throughput.py"],
    ["clv_scale.py", "--customers", "1000000"],
    ["propensity_scale.py", "--customers", "1000000"],
    ["studio_pages.py", "--customers", "1000000", "--repeat", "10"],
    ["bandit_regret.py"],
]


def main() -> int:
    failed = 0
    for script, *args in SCRIPTS:
        print(f"\n=== {script} {' '.join(args)}", flush=True)
        failed += subprocess.run([sys.executable, str(HERE / script), *args]).returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
