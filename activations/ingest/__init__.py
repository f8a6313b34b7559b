"""Ingestion: landing files -> raw tables, incrementally, with a quarantine for bad rows.

`load_landing(landing, warehouse)` is the one entry point; see `load` for the steps and
`contract` for what the files must contain.
"""

from activations.ingest.load import load_landing
from activations.ingest.report import FileResult, IngestReport, Problem

__all__ = ["FileResult", "IngestReport", "Problem", "load_landing"]
