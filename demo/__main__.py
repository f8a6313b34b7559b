"""`python -m demo` (what `make demo` runs): demo/pipeline.py."""

from demo.pipeline import main

if __name__ == "__main__":
    raise SystemExit(main())
