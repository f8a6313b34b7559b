"""A Salesforce Task on the person's Contact, for the sales team, as a message channel (the
Contacts client is contacts.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

from activations.destinations.base import DestinationError, Secret
from activations.destinations.salesforce.contacts import raise_for_error
from activations.destinations.transport import CONNECT_RETRY_DELAYS, HttpClient, response_json
from activations.messaging.delivery import (
    Delivery,
    OutgoingMessage,
    accepted,
    failure,
    http_delivery,
    permanent,
    transient,
)


class SalesforceTaskChannel:
    """A Salesforce Task on the person's Contact, for the sales team to act on (not an email to them).

    The Task is upserted on an external id field holding our message id
    (``PATCH /sobjects/Task/<field>/<message id>``), so a retry after a timeout or a 5xx
    updates the task it may already have created instead of adding a second one: unlike an
    email, a resend is safe. The Contact is referenced by the external id the leads sync
    writes (``Who: {attributes: {type: Contact}, <field>: customer_id}``); while it is not in
    Salesforce yet (the sync has not run) the failure is transient and the next pass retries,
    until the step expires.
    """

    dagster_kind: ClassVar[str] = "salesforce"  # the kind Dagster shows on its campaigns' assets

    resend_is_safe = True  # an upsert on the message id: a message of unknown outcome is simply sent again

    def __init__(self, base_url: str, token: Secret, *, api_version: str = "62.0",
                 contact_external_id_field: str = "Attiva_Customer_Id__c",
                 task_external_id_field: str = "Attiva_Message_Id__c", owner_id: str | None = None,
                 priority: str = "Normal", due_in_days: int = 2, timeout: float = 30.0, pool_size: int = 4,
                 from_email: str = "", from_name: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self.contact_field, self.task_field = contact_external_id_field, task_external_id_field
        self.owner_id, self.priority, self.due_in_days = owner_id, priority, due_in_days
        self.from_email, self.from_name = from_email, from_name
        self.http = HttpClient(self.base_url, token, platform="salesforce", max_concurrency=pool_size,
                               connect_retry_delays=CONNECT_RETRY_DELAYS,
                               read_timeout=timeout, headers={"Authorization": f"Bearer {token.reveal()}"})

    def __repr__(self) -> str:
        return f"SalesforceTaskChannel(base_url={self.base_url!r})"

    def body(self, message: OutgoingMessage, today: datetime | None = None) -> dict[str, Any]:
        """The Task's fields: the rendered subject and text, due `due_in_days` from today."""
        if not message.customer_id:
            raise ValueError("a task needs the customer's id to find their Contact")
        subject = " ".join(message.subject.split())
        due = (today or datetime.now(UTC)).date() + timedelta(days=self.due_in_days)
        record: dict[str, Any] = {
            # Salesforce refuses a longer subject outright; a cut one still tells sales what to do.
            "Subject": subject if len(subject) <= 255 else subject[:254] + "…",
            "Description": message.text,
            "Who": {"attributes": {"type": "Contact"}, self.contact_field: message.customer_id},
            "Status": "Not Started",
            "Priority": self.priority,
            "ActivityDate": due.isoformat(),
        }
        if self.owner_id:
            record["OwnerId"] = self.owner_id
        return record

    def send(self, message: OutgoingMessage) -> Delivery:
        """201 (created) or 200 (updated: an earlier attempt had created it) is accepted; the Task id is the provider id."""
        try:
            body = self.body(message)
        except ValueError as exc:
            return permanent(f"salesforce task: invalid message: {exc}")
        path = (f"/services/data/v{self.api_version}/sobjects/Task/{self.task_field}/"
                f"{quote(message.message_id, safe='')}")
        try:
            response = self.http.request("PATCH", path, json_body=body)
        except DestinationError as exc:  # timeouts too: the upsert makes the retry safe
            return failure(exc)
        answer = response_json(response)
        if response.status_code < 300:
            task_id = answer.get("id") if isinstance(answer, dict) else None
            return accepted(response.status_code, str(task_id) if task_id else None)
        first = answer[0] if isinstance(answer, list) and answer and isinstance(answer[0], dict) else {}
        if first.get("errorCode") == "INVALID_FIELD" and "Foreign key external ID" in str(first.get("message")):
            return transient(f"salesforce {response.status_code}: the Contact with {self.contact_field} = "
                             f"{message.customer_id} is not in Salesforce yet (the leads sync creates it)",
                             response.status_code)
        try:  # Salesforce's own codes first: a spent 24 h allocation stops the channel, concurrency is transient
            raise_for_error(self.http, response)
        except DestinationError as exc:
            return failure(exc)
        return http_delivery(self.http, response, None)

    def close(self) -> None:
        self.http.close()


