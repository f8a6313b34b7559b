"""Mailchimp Marketing API: list members and static segment membership.

- ``POST /3.0/lists/{list_id}`` ``{members: [<=500], update_existing}``: 200 even with
  rejected rows, ``{new_members, updated_members, errors: [{email_address, error,
  error_code}], total_created, total_updated, error_count}``.
- ``PUT /3.0/lists/{list_id}/members/{subscriber_hash}`` (MD5 of the lower-cased email):
  idempotent upsert, 200 with the member; ``GET`` the same path reads it back.
- ``POST /3.0/lists/{list_id}/segments/{segment_id}`` ``{members_to_add, members_to_remove}``
  (<=500 each); only list members can join a segment; errors as
  ``{email_addresses: [...], error}``.
- ``POST /3.0/lists/{list_id}/members/{subscriber_hash}/actions/delete-permanent``: the member, their
  segments and history are deleted, 204; 404 when no such member. As on Mailchimp, the address can never
  be re-imported: a batch row names it in ``errors``, a ``PUT`` answers 400 "Forgotten Email Not
  Subscribed" (the contact must re-subscribe through a form, which the sandbox does not serve).
- Basic auth (any user, the API key as password; OAuth bearer tokens also accepted);
  errors are problem details (``application/problem+json``). At most 10 simultaneous
  connections per key, then 429. Lists and segments are created on first use.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from sandbox.auth import basic_password, bearer_token
from sandbox.base import Refusal, VendorApi, iso_now, trace_id
from sandbox.faults import REJECTION_MESSAGE
from sandbox.identifiers import is_email, subscriber_hash
from sandbox.limits import ConnectionCap, WindowCheck
from sandbox.wire import JSONBody, ProblemJSON

MAX_BATCH = 500
STATUSES = {"subscribed", "unsubscribed", "cleaned", "pending", "transactional"}
ERRORS_DOC = "https://mailchimp.com/developer/marketing/docs/errors/"


def _forgotten(email: str) -> str:
    return (f"{email} was permanently deleted and cannot be re-imported. "
            "The contact must re-subscribe to get back on the list.")


def problem(status: int, title: str, detail: str, **extra: Any) -> ProblemJSON:
    body = {"type": ERRORS_DOC, "title": title, "status": status, "detail": detail, "instance": trace_id(), **extra}
    return ProblemJSON(body, status_code=status)


class Mailchimp(VendorApi):
    name = "mailchimp"

    def reset_state(self) -> None:
        self.lists: dict[str, dict[str, Any]] = {}  # list id -> {"members": {hash: member}, "segments": {id: [hash]}}
        self.forgotten: dict[str, dict[str, None]] = {}  # list id -> subscriber hashes permanently deleted

    def state(self) -> dict[str, Any]:
        return {
            "lists": {
                list_id: {"members": lst["members"], "segments": {s: list(m) for s, m in lst["segments"].items()}}
                for list_id, lst in self.lists.items()
            },
            "forgotten": {list_id: list(hashes) for list_id, hashes in self.forgotten.items()},
        }

    def load_state(self, data: dict[str, Any]) -> None:
        self.lists = {
            list_id: {
                "members": dict(lst.get("members", {})),
                "segments": {s: dict.fromkeys(m) for s, m in lst.get("segments", {}).items()},
            }
            for list_id, lst in data.get("lists", {}).items()
        }
        self.forgotten = {k: dict.fromkeys(v) for k, v in data.get("forgotten", {}).items()}

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/3.0/lists/{list_id}", self.endpoint(self.batch), methods=["POST"]),
            Route("/3.0/lists/{list_id}/members/{subscriber_hash}", self.endpoint(self.member), methods=["PUT", "GET"]),
            Route("/3.0/lists/{list_id}/segments/{segment_id}", self.endpoint(self.segment), methods=["POST"]),
            Route("/3.0/lists/{list_id}/members/{subscriber_hash}/actions/delete-permanent",
                  self.endpoint(self.delete_permanent), methods=["POST"]),
        ]

    # ---- vendor spellings ----------------------------------------------------------------------

    def configure_limits(self, limits: dict[str, Any]) -> None:
        super().configure_limits(limits)
        self.connections = ConnectionCap(limits.get("connections"))

    def enter(self, request: Request) -> Response | None:
        if not self.connections.enter():
            return self.rate_limited(self.window.exhausted())
        request.state.mailchimp_entered = True
        return None

    def leave(self, request: Request) -> None:
        if getattr(request.state, "mailchimp_entered", False):
            request.state.mailchimp_entered = False
            self.connections.leave()

    def credential(self, request: Request) -> str | None:
        return basic_password(request) or bearer_token(request, schemes=("bearer", "oauth"))

    def auth_error(self, missing: bool) -> Response:
        if missing:
            return problem(401, "API Key Missing", "Your request did not include an API key.")
        return problem(
            401, "API Key Invalid", "Your API key may be invalid, or you've attempted to access the wrong datacenter."
        )

    def rate_limited(self, check: WindowCheck) -> Response:
        limit = self.connections.limit
        return problem(429, "Too Many Requests", f"You have exceeded the limit of {limit} simultaneous connections.")

    def server_error(self) -> Response:
        return problem(
            500,
            "Internal Server Error",
            "An unexpected internal error has occurred. Please contact Support for more information.",
        )

    def refuse(self, refusal: Refusal) -> Response:
        if refusal.status == 404:
            return problem(404, "Resource Not Found", refusal.message)
        if refusal.code == "forgotten":
            return problem(400, "Forgotten Email Not Subscribed", refusal.message)
        extra = {"errors": refusal.details} if refusal.details else {}
        return problem(refusal.status, "Invalid Resource", refusal.message, **extra)

    # ---- members -------------------------------------------------------------------------------

    def _list(self, list_id: str) -> dict[str, Any]:
        lst = self.lists.get(list_id)
        if lst is None:
            lst = self.lists[list_id] = {"members": {}, "segments": {}}
        return lst

    def _upsert(
        self, lst: dict[str, Any], list_id: str, item: dict[str, Any], status: str | None, status_if_new: str | None
    ) -> tuple[dict[str, Any], bool]:
        email = item["email_address"].strip()
        key = subscriber_hash(email)
        now = iso_now()
        member = lst["members"].get(key)
        created = member is None
        if created:
            member = {
                "id": key,
                "email_address": email,
                "unique_email_id": key[:10],
                "status": status or status_if_new,
                "merge_fields": {},
                "list_id": list_id,
                "timestamp_signup": now,
                "last_changed": now,
            }
            lst["members"][key] = member
        elif status:
            member["status"] = status
        member["email_address"] = email
        if isinstance(item.get("merge_fields"), dict):
            member["merge_fields"].update(item["merge_fields"])
        for extra in ("email_type", "language", "vip", "tags"):
            if extra in item:
                member[extra] = item[extra]
        member["last_changed"] = now
        return member, created

    async def batch(self, request: Request) -> Response:
        """Batch subscribe or update up to 500 members; rejected rows come back in ``errors``."""
        list_id = request.path_params["list_id"]
        body = await self.json_body(request)
        members = body.get("members") if isinstance(body, dict) else None
        if not isinstance(members, list):
            raise Refusal(
                "The resource submitted could not be validated. For field-specific details, see the 'errors' array.",
                details=[{"field": "members", "message": "Schema describes array, object found instead"}],
            )
        if len(members) > MAX_BATCH:
            raise Refusal(
                "The resource submitted could not be validated. For field-specific details, see the 'errors' array.",
                details=[{"field": "members", "message": f"Schema describes array, maximum {MAX_BATCH} items allowed"}],
            )
        update_existing = bool(body.get("update_existing", False))
        lst = self._list(list_id)
        new, updated, errors = [], [], []
        for item in members:
            email = item.get("email_address") if isinstance(item, dict) else None
            status, status_if_new = (
                (item.get("status"), item.get("status_if_new")) if isinstance(item, dict) else (None, None)
            )
            if not is_email(email):
                errors.append(
                    {
                        "email_address": email if isinstance(email, str) else "",
                        "error": f"{email} looks fake or invalid, please enter a real email address.",
                        "error_code": "ERROR_GENERIC",
                    }
                )
                continue
            if (status or status_if_new) not in STATUSES or (status is not None and status not in STATUSES):
                errors.append(
                    {
                        "email_address": email,
                        "error": "Member must have a valid status: one of " + ", ".join(sorted(STATUSES)),
                        "error_code": "ERROR_GENERIC",
                    }
                )
                continue
            if self.faults.rejects(email.strip().lower()):
                errors.append(
                    {
                        "email_address": email,
                        "error": f"{email} was {REJECTION_MESSAGE}.",
                        "error_code": "ERROR_GENERIC",
                    }
                )
                continue
            if subscriber_hash(email) in self.forgotten.get(list_id, {}):
                errors.append({"email_address": email, "error": _forgotten(email), "error_code": "ERROR_GENERIC"})
                continue
            exists = subscriber_hash(email) in lst["members"]
            if exists and not update_existing:
                errors.append(
                    {
                        "email_address": email,
                        "error": f"{email} is already a list member, do you want to update? please provide update_existing:true in the request body",
                        "error_code": "ERROR_CONTACT_EXISTS",
                    }
                )
                continue
            member, created = self._upsert(lst, list_id, item, status, status_if_new)
            (new if created else updated).append(member)
        return JSONBody(
            {
                "new_members": new,
                "updated_members": updated,
                "errors": errors,
                "total_created": len(new),
                "total_updated": len(updated),
                "error_count": len(errors),
            }
        )

    async def member(self, request: Request) -> Response:
        """Idempotent upsert (PUT) or read (GET) of one member by subscriber hash."""
        list_id, key = request.path_params["list_id"], request.path_params["subscriber_hash"].lower()
        if request.method == "GET":
            member = self.lists.get(list_id, {}).get("members", {}).get(key)
            if member is None:
                raise Refusal("The requested resource could not be found.", status=404)
            return JSONBody(member)
        body = await self.json_body(request)
        if not isinstance(body, dict):
            raise Refusal("The resource submitted could not be validated.")
        email = body.get("email_address")
        if not is_email(email):
            raise Refusal(f"{email} looks fake or invalid, please enter a real email address.")
        if subscriber_hash(email) != key:
            raise Refusal("The email address does not match the subscriber hash in the URL.")
        status, status_if_new = body.get("status"), body.get("status_if_new")
        lst = self._list(list_id)
        if status is not None and status not in STATUSES:
            raise Refusal(
                "The resource submitted could not be validated.",
                details=[
                    {
                        "field": "status",
                        "message": "Data presented is not one of the accepted values: "
                        + ", ".join(sorted(STATUSES))
                        + ".",
                    }
                ],
            )
        if key not in lst["members"] and (status or status_if_new) not in STATUSES:
            raise Refusal(
                "The resource submitted could not be validated.",
                details=[{"field": "status_if_new", "message": "status_if_new is required for a new member"}],
            )
        if key in self.forgotten.get(list_id, {}):
            raise Refusal(_forgotten(email), code="forgotten")
        if self.faults.rejects(email.strip().lower()):
            raise Refusal(f"{email} was {REJECTION_MESSAGE}.")
        member, _ = self._upsert(lst, list_id, body, status, status_if_new)
        return JSONBody(member)

    # ---- segments ------------------------------------------------------------------------------

    async def segment(self, request: Request) -> Response:
        """Add and remove list members in a static segment (<=500 of each per call)."""
        list_id, segment_id = request.path_params["list_id"], request.path_params["segment_id"]
        body = await self.json_body(request)
        if not isinstance(body, dict):
            raise Refusal("The resource submitted could not be validated.")
        to_add = body.get("members_to_add") or []
        to_remove = body.get("members_to_remove") or []
        for field, emails in (("members_to_add", to_add), ("members_to_remove", to_remove)):
            if not isinstance(emails, list):
                raise Refusal(
                    "The resource submitted could not be validated.",
                    details=[{"field": field, "message": "Schema describes array"}],
                )
            if len(emails) > MAX_BATCH:
                raise Refusal(
                    "The resource submitted could not be validated. For field-specific details, see the 'errors' array.",
                    details=[{"field": field, "message": f"Schema describes array, maximum {MAX_BATCH} items allowed"}],
                )
        lst = self._list(list_id)
        segment = lst["segments"].setdefault(str(segment_id), {})
        added, removed, errors = [], [], []
        not_members: list[str] = []
        for email in to_add:
            key = subscriber_hash(email) if isinstance(email, str) else None
            member = lst["members"].get(key) if key else None
            if member is None:
                not_members.append(email if isinstance(email, str) else str(email))
                continue
            if self.faults.rejects(email.strip().lower()):
                errors.append({"email_addresses": [email], "error": REJECTION_MESSAGE})
                continue
            if key not in segment:
                segment[key] = None
            added.append(member)
        for email in to_remove:
            key = subscriber_hash(email) if isinstance(email, str) else None
            if key is not None and key in segment:
                del segment[key]
                removed.append(lst["members"].get(key, {"email_address": email, "id": key}))
        if not_members:
            errors.insert(
                0,
                {
                    "email_addresses": not_members,
                    "error": "Email addresses must be list members before they can be added to a segment",
                },
            )
        error_count = sum(len(e["email_addresses"]) for e in errors)
        return JSONBody(
            {
                "members_added": added,
                "members_removed": removed,
                "errors": errors,
                "total_added": len(added),
                "total_removed": len(removed),
                "error_count": error_count,
            }
        )

    # ---- permanent deletion --------------------------------------------------------------------

    async def delete_permanent(self, request: Request) -> Response:
        """Delete a member and their history for good; the address can never be re-imported."""
        list_id, key = request.path_params["list_id"], request.path_params["subscriber_hash"].lower()
        lst = self.lists.get(list_id)
        if lst is None or key not in lst["members"]:
            raise Refusal("The requested resource could not be found.", status=404)
        del lst["members"][key]
        for segment in lst["segments"].values():
            segment.pop(key, None)
        self.forgotten.setdefault(list_id, {})[key] = None
        return Response(status_code=204)
