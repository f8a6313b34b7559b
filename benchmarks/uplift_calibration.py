"""How often the uplift interval holds the planted uplift: calibration of measurement.campaign_uplift
against the simulated world (simulator/calibration.py), at a few campaign sizes and holdout shares.

    .venv/bin/python benchmarks/uplift_calibration.py --campaigns 400
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from simulator.calibration import measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--campaigns", type=int, default=400)
    args = parser.parse_args()
    print(f"{'customers':>10} {'holdout':>8} {'campaigns':>10} {'covered':>8} {'coverage':>9} {'too small':>10} "
          f"{'mean width':>11} {'seconds':>8}")
    for size, share in ((3000, 0.2), (3000, 0.1), (1000, 0.1), (20000, 0.1)):
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            result = measure(np.random.default_rng(size + int(share * 100)), Path(folder) / "w.duckdb",
                             args.campaigns, size, share)
        print(f"{size:>10,} {share:>8.0%} {result.campaigns:>10} {result.covered:>8} {result.coverage:>9.1%} "
              f"{result.too_small:>10} {result.mean_width:>11.2%} {time.perf_counter() - started:>8.1f}")


if __name__ == "__main__":
    main()
