"""The page unsubscribe links point to (ATTIVA_UNSUBSCRIBE_BASE_URL, default this server's /unsubscribe).

`GET /unsubscribe?token=...` shows a preference page: who the link is for (the address masked) and a
button. `POST /unsubscribe?token=...` unsubscribes: the button's form, and the one-click POST mail
clients send from the `List-Unsubscribe` header (RFC 8058). The token is the one messaging signed
(activations.messaging.links: HMAC-SHA256, expires after 90 days).

Unsubscribing writes two landing files, durably, before the page says it is done:
- `email_engagement/unsubscribe/`: an `unsubscribe` engagement event; the next messaging pass puts
  the address on the suppression list (`feedback.refresh_suppressions`), after ingestion;
- `consent/unsubscribe/`: the email channel revoked; the next dbt build sets consent_email false,
  so audiences that need email consent drop the person.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
from datetime import datetime
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse

from activations.messaging import links
from activations.serve.events import write_landing_file

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="referrer" content="no-referrer">
<title>Email preferences</title><link rel="icon" href="data:,">
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#222}}
button{{font:inherit;padding:.5rem 1rem}}</style></head>
<body><h1>Email preferences</h1>{body}</body></html>"""


def _page(body: str, status: int = 200) -> HTMLResponse:
    # The token is in the URL: no caching, no referrer to the next site.
    return HTMLResponse(PAGE.format(body=body), status_code=status,
                        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


def mask(email: str) -> str:
    """`p***@libero.it`: enough for a person to recognise their address, not enough to harvest it."""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def record_unsubscribe(landing: Path, email: str, campaign: str, now: datetime) -> None:
    """Write the unsubscribe as an engagement event and a revoked email consent (see the module doc)."""
    at = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    record = "unsubscribe-" + hashlib.sha256(f"{email}|{campaign}|{at}".encode()).hexdigest()[:24]
    write_landing_file(landing / "email_engagement" / "unsubscribe", [{
        "engagement_id": record, "email": email, "event_type": "unsubscribe", "occurred_at": at,
        "campaign": campaign}], "unsubscribe")
    write_landing_file(landing / "consent" / "unsubscribe", [{
        "consent_id": record, "email": email, "channel": "email", "status": "revoked", "recorded_at": at,
        "source": "unsubscribe_link"}], "unsubscribe")


def _whom(api, token: str) -> tuple[str, str] | HTMLResponse:
    """(email, campaign) the token is for, or the page saying why not."""
    try:
        secret = links.unsubscribe_secret()
    except links.MissingUnsubscribeSecret:
        return _page("<p>Unsubscribe links are not set up on this server yet. Reply to our email and we will "
                     "unsubscribe you.</p>", 503)
    found = links.verify_unsubscribe(token, secret)
    if found is None:
        return _page("<p>This link is not valid or has expired. Use the link in a more recent email, or reply "
                     "to it and we will unsubscribe you.</p>", 400)
    customer_id, campaign = found
    snapshot = api.store.snapshot()
    if snapshot is None:
        return _page("<p>We cannot record this right now; please try again in a minute.</p>", 503)
    profile = snapshot.profile(customer_id)
    email = profile["traits"].get("email") if profile else None
    if not email:  # erased, or no address: nothing of theirs to write to
        return _page("<p>We hold no email address for you: you will receive no email from us.</p>")
    return email, campaign


async def preference_page(request: Request) -> HTMLResponse:
    """GET /unsubscribe?token=...: who the link is for and the button that unsubscribes."""
    token = request.query_params.get("token", "")
    found = _whom(request.app.state.api, token)
    if isinstance(found, HTMLResponse):
        return found
    email, _ = found
    action = html.escape(f"/unsubscribe?token={token}", quote=True)
    return _page(f"<p>Marketing email from us goes to <strong>{html.escape(mask(email))}</strong>.</p>"
                 f'<form method="post" action="{action}"><button type="submit" id="unsubscribe">Unsubscribe from '
                 "all marketing email</button></form>")


async def unsubscribe(request: Request) -> HTMLResponse:
    """POST /unsubscribe?token=...: the page's button or a mail client's one-click (RFC 8058)."""
    api = request.app.state.api
    found = _whom(api, request.query_params.get("token", ""))
    if isinstance(found, HTMLResponse):
        return found
    email, campaign = found
    try:
        await asyncio.get_running_loop().run_in_executor(None, record_unsubscribe, Path(api.writer.landing), email,
                                                         campaign, api.clock())
    except OSError:
        return _page("<p>We could not record this right now; please try again in a minute.</p>", 503)
    return _page(f"<p>Done: {html.escape(mask(email))} will receive no more marketing email from us.</p>")
