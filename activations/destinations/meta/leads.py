"""Meta Lead Ads: the signature of what Meta posts to the leadgen webhook, reading a lead from the Graph
API, and a lead as the landing contract's `social_leads` row.

- Meta signs every webhook POST with `X-Hub-Signature-256: sha256=<hex>`: HMAC-SHA256 of the raw body,
  keyed by the app secret.
- A leadgen notification (`entry[].changes[]` with `field: leadgen`) carries only ids (leadgen_id, page_id,
  form_id, ad_id, adgroup_id, created_time); the answers are read with `GET /{version}/{leadgen_id}` and a
  Page access token: `field_data` ([{name, values}]), created_time, ad_id, form_id, platform (fb or ig),
  is_organic, custom_disclaimer_responses ([{checkbox_key, is_checked}]).
- Forms name their questions as their author chose: Meta's prefilled ones (email, phone_number,
  full_name, first_name, last_name, city) or custom ones, often in Italian (nome, cognome, telefono,
  città). `lead_row` reads both.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import requests

from activations.destinations.base import Secret

SIGNATURE_HEADER = "X-Hub-Signature-256"
LEAD_FIELDS = "id,created_time,ad_id,adgroup_id,form_id,platform,is_organic,field_data,custom_disclaimer_responses"

# Question names (lower case, spaces and dashes as underscores) -> the row's column.
QUESTION_COLUMNS = {
    "email": "email", "e_mail": "email", "indirizzo_email": "email", "work_email": "email",
    "phone_number": "phone", "phone": "phone", "telefono": "phone", "numero_di_telefono": "phone",
    "cellulare": "phone",
    "full_name": "full_name", "nome_e_cognome": "full_name", "nome_completo": "full_name",
    "first_name": "first_name", "nome": "first_name",
    "last_name": "last_name", "cognome": "last_name",
    "city": "city", "città": "city", "citta": "city",
}  # fmt: skip
CONSENT_WORDS = ("marketing", "newsletter", "consenso", "consent", "privacy_marketing")
YES = frozenset({"yes", "true", "1", "si", "sì", "checked", "accetto", "i_agree"})


def signature(app_secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value Meta sends for `body`."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(app_secret: str, body: bytes, header: str | None) -> bool:
    """Whether `header` is Meta's signature of `body`; compared in constant time."""
    if not header or not app_secret:
        return False
    return hmac.compare_digest(header.strip().lower().encode(), signature(app_secret, body).encode())


def notifications(payload: Any) -> list[dict[str, Any]]:
    """The leadgen notifications of a webhook body (other fields and objects are ignored)."""
    found = []
    entries = payload.get("entry") if isinstance(payload, Mapping) else None
    for entry in entries if isinstance(entries, list) else []:
        changes = entry.get("changes") if isinstance(entry, Mapping) else None
        for change in changes if isinstance(changes, list) else []:
            value = change.get("value") if isinstance(change, Mapping) else None
            if change.get("field") == "leadgen" and isinstance(value, Mapping) and value.get("leadgen_id"):
                found.append({k: None if value.get(k) is None else str(value[k])
                              for k in ("leadgen_id", "page_id", "form_id", "ad_id", "adgroup_id", "created_time")})
    return found


class LeadFetchError(Exception):
    """The Graph API did not give the lead; the message never holds the access token."""


def fetch_lead(graph_url: str, version: str, leadgen_id: str, token: Secret, timeout: float = 10.0) -> dict:
    """The lead `leadgen_id` as the Graph API answers it (LeadFetchError when it does not)."""
    url = f"{graph_url.rstrip('/')}/{version}/{leadgen_id}"
    try:
        answer = requests.get(url, params={"fields": LEAD_FIELDS},
                              headers={"Authorization": f"Bearer {token.reveal()}"}, timeout=timeout)
    except requests.RequestException as exc:
        raise LeadFetchError(token.redact(f"Graph API unreachable: {type(exc).__name__}")) from None
    if answer.status_code != 200:
        try:
            error = answer.json().get("error", {})
            why = f"code {error.get('code')}: {error.get('message', '')}"
        except (ValueError, AttributeError):
            why = answer.text[:200]
        raise LeadFetchError(token.redact(f"Graph API answered {answer.status_code} ({why})"))
    try:
        lead = answer.json()
    except ValueError:
        raise LeadFetchError("Graph API answered a body that is not JSON") from None
    if not isinstance(lead, dict) or not lead.get("id"):
        raise LeadFetchError("Graph API answered no lead id")
    return lead


def _question(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def _answers(field_data: Iterable[Any]) -> dict[str, str]:
    answers: dict[str, str] = {}
    for item in field_data:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            continue
        values = item.get("values") if isinstance(item.get("values"), list) else []
        answers[_question(item["name"])] = ", ".join(str(v) for v in values if v is not None)
    return answers


def _consent(answers: Mapping[str, str], disclaimers: Any) -> bool | None:
    checks = [bool(d.get("is_checked")) if not isinstance(d.get("is_checked"), str)
              else d["is_checked"].strip().lower() in YES
              for d in disclaimers if isinstance(d, Mapping)
              and any(w in _question(str(d.get("checkbox_key", ""))) for w in CONSENT_WORDS)] \
        if isinstance(disclaimers, list) else []
    checks += [value.strip().lower() in YES for name, value in answers.items()
               if any(w in name for w in CONSENT_WORDS)]
    return any(checks) if checks else None


def _timestamp(value: Any) -> str | None:
    """Graph times (`2026-12-06T10:00:00+0000`) and webhook times (Unix seconds) as ISO 8601 UTC."""
    if value is None or value == "":
        return None
    text = str(value)
    if text.isdigit():
        return datetime.fromtimestamp(int(text), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z").astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return text


def lead_row(lead: Mapping[str, Any], notification: Mapping[str, Any], received_at: str) -> dict[str, Any]:
    """One `social_leads` landing row: the lead's ids, its contact answers by column, the raw answers."""
    field_data = lead.get("field_data") if isinstance(lead.get("field_data"), list) else []
    answers = _answers(field_data)
    columns: dict[str, str] = {}
    for name, value in answers.items():
        column = QUESTION_COLUMNS.get(name)
        if column and value and column not in columns:
            columns[column] = value
    platform = lead.get("platform")
    return {
        "lead_id": str(lead.get("id") or notification.get("leadgen_id")),
        "created_at": _timestamp(lead.get("created_time") or notification.get("created_time")),
        "page_id": notification.get("page_id"),
        "form_id": str(lead.get("form_id") or notification.get("form_id") or "") or None,
        "ad_id": str(lead.get("ad_id") or notification.get("ad_id") or "") or None,
        "adgroup_id": str(lead.get("adgroup_id") or notification.get("adgroup_id") or "") or None,
        "platform": str(platform).lower() if platform else None,
        "is_organic": lead.get("is_organic") if isinstance(lead.get("is_organic"), bool) else None,
        **{c: columns.get(c) for c in ("email", "phone", "full_name", "first_name", "last_name", "city")},
        "consent_marketing": _consent(answers, lead.get("custom_disclaimer_responses")),
        "field_data": json.dumps(field_data, ensure_ascii=False),
        "received_at": received_at,
    }
