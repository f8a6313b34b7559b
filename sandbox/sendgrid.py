"""SendGrid: Marketing Campaigns contacts and lists, and v3 mail send.

- ``PUT /v3/marketing/contacts`` ``{list_ids, contacts}`` (<=30,000 contacts and <=6 MB):
  202 ``{job_id}``. The import is asynchronous, as on SendGrid: nothing is visible until
  the job completes (``sendgrid_import_seconds`` after submission).
- ``GET /v3/marketing/contacts/imports/{id}``: ``{id, status, job_type, results:
  {requested_count, created_count, updated_count, deleted_count, errored_count,
  errors_url?}, started_at, finished_at?}``. ``status`` is ``pending``, then ``completed``
  (no row errored) or ``errored`` (some rows errored; the others were applied).
- Which rows errored: as on SendGrid, ``results.errors_url`` links to a CSV file. Here it
  is served by the sandbox at ``/sendgrid/_files/imports/{job_id}/errors.csv`` (no auth,
  like a pre-signed link) with the header ``index,email,error``: ``index`` is the
  row's 0-based position in the request's ``contacts`` array.
- ``POST /v3/marketing/contacts/search/emails`` ``{emails}`` (<=100): contact ids by email,
  needed for ``DELETE /v3/marketing/lists/{id}/contacts?contact_ids=a,b`` (202 ``{job_id}``).
- ``DELETE /v3/marketing/contacts?ids=a,b`` (or ``delete_all_contacts=true``, never both): deletes the
  contacts themselves, from every list; 202 ``{job_id}``. Unknown ids are ignored, as the job runs
  asynchronously on SendGrid; here it is applied at once.
- ``POST /v3/mail/send``: <=1,000 personalizations, 202 with an empty body and
  ``X-Message-Id``; the message is stored.
- ``GET /v3/messages?query=...&limit=N`` (Email Activity): the messages matching a query of
  ``unique_args['<custom arg>']="<value>"`` and ``msg_id="<id>"`` terms joined by AND / OR
  (parenthesised or not); answers ``{messages: [{from_email, msg_id, subject, to_email, status,
  opens_count, clicks_count, last_event_time}]}`` with ``status`` ``delivered``. Anything else in
  the query is a 400, as SendGrid answers a query it cannot parse. The feed is immediate here.
- Bearer auth; ``X-RateLimit-Limit/Remaining/Reset`` (epoch seconds); 429
  ``{"errors":[{"field":null,"message":"too many requests"}]}``.
"""

from __future__ import annotations

import csv
import io
import math
import re
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from sandbox.auth import bearer_token
from sandbox.base import Refusal, VendorApi, iso_now, trace_id
from sandbox.faults import REJECTION_MESSAGE
from sandbox.identifiers import is_email
from sandbox.limits import WindowCheck
from sandbox.wire import JSONBody

MAX_CONTACTS = 30_000
MAX_BODY_BYTES = 6 * 1024 * 1024
MAX_SEARCH_EMAILS = 100
MAX_PERSONALIZATIONS = 1_000
MAX_ACTIVITY_LIMIT = 1_000
# One term of the activity query language this sandbox understands, and how terms are joined.
_TERM = re.compile(r"""\(?\s*(?:unique_args\['([^']+)'\]|(msg_id))\s*=\s*"((?:[^"\\]|\\.)*)"\s*\)?""")
_JOIN = re.compile(r"\s+(AND|OR)\s+")
CONTACT_NAMESPACE = uuid.UUID("5d6c52c4-8c1e-4d7e-9a55-0b7c4a1f3e10")


def errors(status: int, *items: tuple[str | None, str]) -> JSONBody:
    return JSONBody({"errors": [{"field": field, "message": message} for field, message in items]}, status_code=status)


class SendGrid(VendorApi):
    name = "sendgrid"

    def reset_state(self) -> None:
        self.contacts: dict[str, dict[str, Any]] = {}  # lower-cased email -> contact
        self.ids: dict[str, str] = {}  # contact id -> email key
        self.lists: dict[str, dict[str, None]] = {}  # list id -> ordered set of contact ids
        self.jobs: dict[str, dict[str, Any]] = {}
        self.mail: list[dict[str, Any]] = []

    def state(self) -> dict[str, Any]:
        self.settle()
        return {
            "contacts": self.contacts,
            "lists": {list_id: list(ids) for list_id, ids in self.lists.items()},
            "jobs": self.jobs,
            "mail": self.mail,
            "sent_mail_count": len(self.mail),
        }

    def load_state(self, data: dict[str, Any]) -> None:
        self.contacts = dict(data.get("contacts", {}))
        self.ids = {c["id"]: key for key, c in self.contacts.items()}
        self.lists = {k: dict.fromkeys(v) for k, v in data.get("lists", {}).items()}
        self.jobs = dict(data.get("jobs", {}))
        self.mail = list(data.get("mail", []))

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/v3/marketing/contacts", self.endpoint(self.upsert_contacts), methods=["PUT"]),
            Route("/v3/marketing/contacts", self.endpoint(self.delete_contacts), methods=["DELETE"]),
            Route("/v3/marketing/contacts/imports/{job_id}", self.endpoint(self.import_status), methods=["GET"]),
            Route("/v3/marketing/contacts/search/emails", self.endpoint(self.search_emails), methods=["POST"]),
            Route("/v3/marketing/lists/{list_id}/contacts", self.endpoint(self.remove_from_list), methods=["DELETE"]),
            Route("/v3/mail/send", self.endpoint(self.mail_send), methods=["POST"]),
            Route("/v3/messages", self.endpoint(self.activity), methods=["GET"]),
            # Where results.errors_url points; a download link, outside the API and its limits.
            Route("/_files/imports/{job_id}/errors.csv", self.errors_file, methods=["GET"]),
        ]

    # ---- vendor spellings ----------------------------------------------------------------------

    def credential(self, request: Request) -> str | None:
        return bearer_token(request)

    def auth_error(self, missing: bool) -> Response:
        if missing:
            return errors(401, (None, "authorization required"))
        return errors(401, (None, "The provided authorization grant is invalid, expired, or revoked"))

    def rate_headers(self, check: WindowCheck) -> dict[str, str]:
        if check.limit is None:
            return {}
        return {
            "X-RateLimit-Limit": str(check.limit),
            "X-RateLimit-Remaining": str(check.remaining),
            "X-RateLimit-Reset": str(math.ceil(time.time() + check.reset_after)),
        }

    def rate_limited(self, check: WindowCheck) -> Response:
        return errors(429, (None, "too many requests"))

    def server_error(self) -> Response:
        return errors(500, (None, "internal server error"))

    def refuse(self, refusal: Refusal) -> Response:
        if refusal.details:
            return JSONBody({"errors": refusal.details}, status_code=refusal.status)
        return errors(
            refusal.status,
            (refusal.code if refusal.code not in (None, "invalid_json", "empty_body") else None, refusal.message),
        )

    # ---- contacts ------------------------------------------------------------------------------

    def settle(self) -> None:
        """Complete every import job whose processing time is over, in submission order."""
        now = time.time()
        for job in self.jobs.values():
            if job["status"] == "pending" and job["_ready_at"] <= now:
                self._complete(job)

    def _complete(self, job: dict[str, Any]) -> None:
        created = updated = 0
        list_ids = job.pop("_list_ids")
        timestamp = iso_now()
        for contact in job.pop("_contacts"):
            key = contact["email"].strip().lower()
            existing = self.contacts.get(key)
            if existing is None:
                existing = {"id": str(uuid.uuid5(CONTACT_NAMESPACE, key)), "created_at": timestamp, "list_ids": []}
                self.contacts[key] = existing
                self.ids[existing["id"]] = key
                created += 1
            else:
                updated += 1
            for field, value in contact.items():
                if field == "custom_fields" and isinstance(value, dict):
                    existing.setdefault("custom_fields", {}).update(value)
                elif field != "id":
                    existing[field] = value
            existing["email"] = key
            existing["updated_at"] = timestamp
            for list_id in list_ids:
                self.lists.setdefault(list_id, {})[existing["id"]] = None
                if list_id not in existing["list_ids"]:
                    existing["list_ids"].append(list_id)
        results = job["results"]
        results["created_count"], results["updated_count"] = created, updated
        results["errored_count"] = len(job["_errors"])
        job["status"] = "errored" if job["_errors"] else "completed"
        job["finished_at"] = timestamp
        self.changed()

    async def upsert_contacts(self, request: Request) -> Response:
        """Queue an upsert of contacts (and list membership); answers the job id at once."""
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            raise Refusal(f"request body exceeds the maximum of {MAX_BODY_BYTES} bytes", status=413)
        body = await self.json_body(request)
        if not isinstance(body, dict):
            raise Refusal("request body must be a JSON object")
        contacts = body.get("contacts")
        list_ids = body.get("list_ids") or []
        if not isinstance(contacts, list) or not contacts:
            raise Refusal("contacts is required and must contain at least one contact", code="contacts")
        if len(contacts) > MAX_CONTACTS:
            raise Refusal(f"contacts must contain at most {MAX_CONTACTS} contacts", code="contacts")
        if not isinstance(list_ids, list) or not all(isinstance(x, str) and x for x in list_ids):
            raise Refusal("list_ids must be an array of list id strings", code="list_ids")
        valid: list[dict[str, Any]] = []
        row_errors: list[dict[str, Any]] = []
        for index, contact in enumerate(contacts):
            email = contact.get("email") if isinstance(contact, dict) else None
            if not is_email(email):
                row_errors.append(
                    {"index": index, "email": email if isinstance(email, str) else "", "error": "email is invalid"}
                )
            elif self.faults.rejects(email.strip().lower()):
                row_errors.append({"index": index, "email": email, "error": REJECTION_MESSAGE})
            else:
                valid.append(contact)
        job_id = str(uuid.uuid4())
        self.jobs[job_id] = {
            "id": job_id,
            "status": "pending",
            "job_type": "upsert",
            "results": {
                "requested_count": len(contacts),
                "created_count": 0,
                "updated_count": 0,
                "deleted_count": 0,
                "errored_count": 0,
            },
            "started_at": iso_now(),
            "_ready_at": time.time() + self.config.sendgrid_import_seconds,
            "_contacts": valid,
            "_list_ids": list_ids,
            "_errors": row_errors,
        }
        return JSONBody({"job_id": job_id}, status_code=202)

    async def import_status(self, request: Request) -> Response:
        """The status of an import job; ``errors_url`` once it finished with errored rows."""
        self.settle()
        job = self.jobs.get(request.path_params["job_id"])
        if job is None or job["job_type"] != "upsert":
            return errors(404, (None, "job not found"))
        public = {k: v for k, v in job.items() if not k.startswith("_")}
        if job["status"] != "pending" and job["_errors"]:
            url = str(request.url_for("errors_file", job_id=job["id"]))
            public["results"] = {**job["results"], "errors_url": url}
        return JSONBody(public)

    async def errors_file(self, request: Request) -> Response:
        """The CSV behind ``errors_url``: ``index,email,error`` per errored row."""
        self.settle()
        job = self.jobs.get(request.path_params["job_id"])
        if job is None or job["status"] == "pending":
            return PlainTextResponse("Not Found", status_code=404)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["index", "email", "error"])
        for row in job["_errors"]:
            writer.writerow([row["index"], row["email"], row["error"]])
        return PlainTextResponse(out.getvalue(), media_type="text/csv")

    async def search_emails(self, request: Request) -> Response:
        """Contacts by email address (up to 100), with their ids."""
        self.settle()
        body = await self.json_body(request)
        emails = body.get("emails") if isinstance(body, dict) else None
        if not isinstance(emails, list) or not emails:
            raise Refusal("emails is required", code="emails")
        if len(emails) > MAX_SEARCH_EMAILS:
            raise Refusal(f"emails must contain at most {MAX_SEARCH_EMAILS} addresses", code="emails")
        result: dict[str, Any] = {}
        found = False
        for email in emails:
            contact = self.contacts.get(email.strip().lower()) if isinstance(email, str) else None
            if contact is None:
                result[str(email)] = {"error": "contact not found"}
            else:
                found = True
                result[str(email)] = {"contact": contact}
        if not found:
            return errors(404, (None, "No contacts found"))
        return JSONBody({"result": result})

    async def remove_from_list(self, request: Request) -> Response:
        """Take contacts (by id) out of a list; answers a job id, the removal is applied at once."""
        self.settle()
        list_id = request.path_params["list_id"]
        raw = request.query_params.get("contact_ids")
        if not raw:
            raise Refusal("contact_ids is required", code="contact_ids")
        ids = [i.strip() for i in raw.split(",") if i.strip()]
        members = self.lists.get(list_id)
        if members is None:
            return errors(404, ("id", "list not found"))
        for contact_id in ids:
            if contact_id in members:
                del members[contact_id]
                key = self.ids.get(contact_id)
                if key is not None and list_id in self.contacts[key]["list_ids"]:
                    self.contacts[key]["list_ids"].remove(list_id)
        return JSONBody({"job_id": str(uuid.uuid4())}, status_code=202)

    async def delete_contacts(self, request: Request) -> Response:
        """Delete contacts by id (or all of them); answers a job id, the deletion is applied at once."""
        self.settle()
        raw = request.query_params.get("ids")
        everyone = request.query_params.get("delete_all_contacts") == "true"
        if bool(raw) == everyone:
            raise Refusal("Either ids or delete_all_contacts must be set, but not both", code="ids")
        ids = list(self.ids) if everyone else [i.strip() for i in (raw or "").split(",") if i.strip()]
        for contact_id in ids:
            key = self.ids.pop(contact_id, None)
            if key is None:
                continue
            self.contacts.pop(key, None)
            for members in self.lists.values():
                members.pop(contact_id, None)
        job_id = str(uuid.uuid4())
        self.jobs[job_id] = {"id": job_id, "status": "completed", "job_type": "delete",
                             "results": {"deleted_count": len(ids)}, "started_at": iso_now()}
        return JSONBody({"job_id": job_id}, status_code=202)

    # ---- mail send -----------------------------------------------------------------------------

    async def mail_send(self, request: Request) -> Response:
        """Accept a message for delivery (stored, never sent): 202 and an X-Message-Id."""
        body = await self.json_body(request)
        if not isinstance(body, dict):
            raise Refusal("request body must be a JSON object")
        problems: list[dict[str, Any]] = []

        def bad(field: str, message: str) -> None:
            problems.append(
                {
                    "message": message,
                    "field": field,
                    "help": f"http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.{field}",
                }
            )

        personalizations = body.get("personalizations")
        if not isinstance(personalizations, list) or not 1 <= len(personalizations) <= MAX_PERSONALIZATIONS:
            bad(
                "personalizations",
                f"The personalizations field is required and must have at least one and no more than {MAX_PERSONALIZATIONS} items.",
            )
            personalizations = []
        template = body.get("template_id")
        for i, p in enumerate(personalizations):
            to = p.get("to") if isinstance(p, dict) else None
            if not isinstance(to, list) or not to:
                bad(
                    f"personalizations.{i}.to",
                    "The to array is required for all personalization objects, and must have at least one email object with a valid email address.",
                )
                continue
            for j, recipient in enumerate(to):
                if not isinstance(recipient, dict) or not is_email(recipient.get("email")):
                    bad(f"personalizations.{i}.to.{j}.email", "Does not contain a valid address.")
        sender = body.get("from")
        if not isinstance(sender, dict) or not is_email(sender.get("email")):
            bad(
                "from.email",
                "The from object must be provided for every email send. It is an object that requires the email parameter, but may also contain a name parameter.",
            )
        if not template:
            if not body.get("subject") and not all(
                isinstance(p, dict) and p.get("subject") for p in personalizations or [None]
            ):
                bad(
                    "subject",
                    "The subject is required. You can get around this requirement if you use a template with a subject defined or if every personalization has a subject defined.",
                )
            content = body.get("content")
            if not isinstance(content, list) or not content:
                bad(
                    "content",
                    "Unless a valid template_id is provided, the content parameter is required. There must be at least one defined content block.",
                )
        if problems:
            raise Refusal("invalid message", details=problems)
        message_id = trace_id()[:22]
        self.mail.append({"message_id": message_id, "received_at": iso_now(), "message": body})
        return Response(status_code=202, headers={"X-Message-Id": message_id})

    # ---- email activity ------------------------------------------------------------------------

    async def activity(self, request: Request) -> Response:
        """Email Activity: the stored messages a query selects (custom args and msg_id terms)."""
        try:
            limit = int(request.query_params.get("limit", "10"))
        except ValueError:
            raise Refusal("limit must be an integer", code="limit") from None
        if not 1 <= limit <= MAX_ACTIVITY_LIMIT:
            raise Refusal(f"limit must be between 1 and {MAX_ACTIVITY_LIMIT}", code="limit")
        query = request.query_params.get("query", "")
        try:
            matches = _activity_filter(query)
        except ValueError as exc:
            raise Refusal(str(exc), code="query") from None
        found = []
        for stored in reversed(self.mail):  # most recent first, as SendGrid lists them
            if matches(stored):
                found.append(_activity_row(stored))
                if len(found) == limit:
                    break
        return JSONBody({"messages": found})


def _activity_filter(query: str):
    """A predicate over stored messages for `query` (terms joined by AND / OR; AND binds tighter)."""
    if not query.strip():
        return lambda stored: True
    pieces = _JOIN.split(query.strip())
    terms, joins = pieces[0::2], pieces[1::2]
    parsed = []
    for term in terms:
        match = _TERM.fullmatch(term.strip())
        if match is None:
            raise ValueError(f"invalid query near {term.strip()[:60]!r}: expected unique_args['name']=\"value\" "
                             "or msg_id=\"value\"")
        arg, is_msg_id, value = match.groups()
        parsed.append((arg, bool(is_msg_id), re.sub(r"\\(.)", r"\1", value)))

    def holds(stored: dict[str, Any], term: tuple[str | None, bool, str]) -> bool:
        arg, is_msg_id, value = term
        if is_msg_id:
            return stored["message_id"] == value
        return _custom_args(stored["message"]).get(arg) == value

    def matches(stored: dict[str, Any]) -> bool:
        # Disjunction of conjunctions: split at every OR.
        group_ok, any_ok = holds(stored, parsed[0]), False
        for join, term in zip(joins, parsed[1:], strict=True):
            if join == "OR":
                any_ok = any_ok or group_ok
                group_ok = holds(stored, term)
            else:
                group_ok = group_ok and holds(stored, term)
        return any_ok or group_ok

    return matches


def _custom_args(message: dict[str, Any]) -> dict[str, Any]:
    """The message's custom args: top level, overridden by its (first) personalization's."""
    args = dict(message.get("custom_args") or {})
    personalizations = message.get("personalizations") or []
    if personalizations and isinstance(personalizations[0], dict):
        args.update(personalizations[0].get("custom_args") or {})
    return args


def _activity_row(stored: dict[str, Any]) -> dict[str, Any]:
    message = stored["message"]
    to = ((message.get("personalizations") or [{}])[0].get("to") or [{}])[0]
    return {"from_email": (message.get("from") or {}).get("email"), "msg_id": stored["message_id"],
            "subject": message.get("subject"), "to_email": to.get("email"), "status": "delivered",
            "opens_count": 0, "clicks_count": 0, "last_event_time": stored["received_at"]}
