"""``python -m sandbox``: the same server ``attiva sandbox`` starts."""

from __future__ import annotations

import argparse
import sys

from sandbox.command import add_arguments, run_from_args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox", description="Serve every destination's API on loopback."
    )
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
