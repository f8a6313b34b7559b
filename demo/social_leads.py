"""Lead-ad leads through the real webhook path: people submit lead-ad forms in the sandbox's Meta, which posts
the signed leadgen webhook to an `attiva serve` started here; serve reads each lead back from the sandbox's
Graph API and lands it in `social/leads/`, which the pipeline's ingestion then reads (docs/social-leads.md).

The forms are the answers of the generator's first lead-ad leads (its `social/leads/` export), submitted
again: so some are people the CRM knows, some new ones.
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import requests

from activations import settings
from activations.serve import meta_leads
from activations.serve.app import create_app, running_server
from activations.serve.keys import KeysConfig
from sandbox.config import default_token

DEMO_VERIFY_TOKEN = "demo-meta-verify-token"
LEADS = 12


def forms_from_the_generator(landing: Path, limit: int = LEADS) -> list[dict]:
    """Up to `limit` lead-ad forms (the Graph API's lead fields) from the generator's export."""
    forms = []
    for path in sorted((landing / meta_leads.LEADS_FOLDER).glob("*.csv")):
        with open(path, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                try:
                    field_data = json.loads(row.get("field_data") or "")
                except ValueError:
                    continue  # a line the generator broke on purpose
                if isinstance(field_data, list) and field_data:
                    forms.append({"field_data": field_data, "platform": (row.get("platform") or "fb").lower(),
                                  "form_id": row.get("form_id"), "ad_id": row.get("ad_id"),
                                  "page_id": row.get("page_id"), "is_organic": False})
                if len(forms) >= limit:
                    return forms
    return forms


def land_through_the_webhook(base: str) -> int:
    """Submit the forms in the sandbox, posted signed to a local `attiva serve`; the number of leads landed."""
    landing = settings.landing_path()
    forms = forms_from_the_generator(landing)
    if not forms:
        return 0
    os.environ.setdefault("ATTIVA_META_APP_SECRET", "sandbox-meta-app-secret")  # the sandbox's default
    os.environ.setdefault("ATTIVA_META_VERIFY_TOKEN", DEMO_VERIFY_TOKEN)
    os.environ.setdefault("ATTIVA_META_PAGE_TOKEN", os.environ.get("ATTIVA_META_LEADS_TOKEN")
                          or default_token("meta_leads"))
    os.environ.setdefault("ATTIVA_META_GRAPH_URL", f"{base}/meta_leads")
    before = _landed(landing)
    app = create_app(KeysConfig([]), settings.serving_dir(), landing)
    with running_server(app) as serve:
        answered = [requests.post(f"{base}/_sandbox/meta/leads", timeout=30,
                                  json={"url": f"{serve}/meta/leadgen", "lead": form}).json().get("answered")
                    for form in forms]
        deadline = time.monotonic() + 30
        while list((landing / meta_leads.PENDING_FOLDER).glob("*/*.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.1)
    landed = _landed(landing) - before
    refused = sum(1 for a in answered if a != 200)
    print(f"==> {landed} lead-ad leads landed through the leadgen webhook ({len(forms)} forms submitted in the "
          f"sandbox's Meta{f', {refused} webhooks refused' if refused else ''})")
    return landed


def _landed(landing: Path) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in (landing / meta_leads.LEADS_FOLDER).glob("*/*.jsonl"))
