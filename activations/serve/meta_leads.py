"""Meta Lead Ads' leadgen webhook: a lead-ad form submitted on Facebook or Instagram, read and landed.

- `GET /meta/leadgen`: Meta's subscription check. `hub.mode=subscribe` and a `hub.verify_token` equal to
  ATTIVA_META_VERIFY_TOKEN answer `hub.challenge`; anything else is 403.
- `POST /meta/leadgen`: the notifications, signed `X-Hub-Signature-256` (HMAC-SHA256 of the raw body, keyed
  by ATTIVA_META_APP_SECRET): a missing or wrong signature is 403 and nothing is written.

A notification holds ids only. Before answering, its leadgen ids are written, durably, to
`<landing>/_meta_leads/pending/`; the answer is then 200 at once (Meta retries a webhook that is slow or
fails). After the answer each pending lead is read from the Graph API (`GET /{version}/{leadgen_id}`,
ATTIVA_META_PAGE_TOKEN, ATTIVA_META_GRAPH_URL / _VERSION) and landed in `<landing>/social/leads/` (the
landing contract's `social_leads`); a pending file goes once all its leads are landed. A lead the Graph API
did not give (down, throttled, token refused) stays pending with its last error and is tried again after
the next webhook, or by `retry_pending` (`attiva leads fetch`). A lead landed twice (a crash between
landing and clearing) is one lead in the warehouse: staging keeps one row per lead id.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from activations import settings
from activations.destinations.base import Secret
from activations.destinations.meta.leads import (
    SIGNATURE_HEADER,
    LeadFetchError,
    fetch_lead,
    lead_row,
    notifications,
    signature_ok,
)
from activations.serve.events import write_landing_file

PENDING_FOLDER = "_meta_leads/pending"
LEADS_FOLDER = "social/leads"
MAX_BODY = 1_000_000  # bytes: a notification batch is a few kilobytes


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def verify(request: Request) -> Response:
    """GET /meta/leadgen: echo hub.challenge when the verify token is ours."""
    expected = settings.meta_verify_token()
    params = request.query_params
    token = params.get("hub.verify_token") or ""
    if (expected and params.get("hub.mode") == "subscribe"
            and hmac.compare_digest(token.encode(), expected.encode())):
        return PlainTextResponse(params.get("hub.challenge") or "")
    return PlainTextResponse("verification refused", status_code=403)


async def receive(request: Request) -> Response:
    """POST /meta/leadgen: checked, the leadgen ids written as pending, 200; the leads read afterwards."""
    secret = settings.meta_app_secret()
    if secret is None:
        return PlainTextResponse("the leadgen webhook is off (ATTIVA_META_APP_SECRET is not set)", status_code=404)
    raw = await request.body()
    if len(raw) > MAX_BODY:
        return PlainTextResponse("body too large", status_code=413)
    if not signature_ok(secret, raw, request.headers.get(SIGNATURE_HEADER)):
        return PlainTextResponse(f"invalid {SIGNATURE_HEADER}", status_code=403)
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return PlainTextResponse("expected a JSON body", status_code=400)
    found = notifications(payload)
    landing = Path(request.app.state.api.writer.landing)
    if found:
        try:
            await asyncio.get_running_loop().run_in_executor(
                None, write_landing_file, landing / PENDING_FOLDER,
                [{**n, "attempts": 0, "last_error": None} for n in found], "leadgen")
        except OSError:
            return PlainTextResponse("not written, retry", status_code=503)  # Meta retries
    # Every webhook also retries what earlier ones left pending.
    state = request.app.state
    if getattr(state, "meta_leads_lock", None) is None:
        state.meta_leads_lock = asyncio.Lock()
    return PlainTextResponse("", background=BackgroundTask(_drain, landing, state.meta_leads_lock))


async def _drain(landing: Path, lock: asyncio.Lock) -> None:
    async with lock:  # one pass at a time per server: a lead is read once per pass
        await asyncio.get_running_loop().run_in_executor(None, retry_pending, landing)


def _pending_files(landing: Path) -> list[Path]:
    folder = landing / PENDING_FOLDER
    return sorted(p for p in folder.glob("*/*.jsonl") if not p.name.startswith(".")) if folder.exists() else []


def retry_pending(landing: Path, graph_url: str | None = None, version: str | None = None,
                  token: Secret | None = None) -> dict[str, int]:
    """Read every pending lead from the Graph API and land it; what failed stays pending. Returns the counts
    of leads landed and still pending."""
    raw_token = settings.meta_page_token()
    token = token or (Secret(raw_token) if raw_token else None)
    graph_url, version = graph_url or settings.meta_graph_url(), version or settings.meta_graph_version()
    landed = still_pending = 0
    for path in _pending_files(landing):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        remaining, leads = [], []
        for row in rows:
            try:
                if token is None:
                    raise LeadFetchError("ATTIVA_META_PAGE_TOKEN is not set")
                lead = fetch_lead(graph_url, version, row["leadgen_id"], token)
            except LeadFetchError as exc:
                remaining.append({**row, "attempts": int(row.get("attempts") or 0) + 1, "last_error": str(exc)})
                continue
            leads.append(lead_row(lead, row, _stamp()))
        if leads:
            write_landing_file(landing / LEADS_FOLDER, leads, "meta-leads")
            landed += len(leads)
        still_pending += len(remaining)
        if not remaining:
            path.unlink()
        else:
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in remaining))
            os.replace(tmp, path)
    return {"landed": landed, "pending": still_pending}
