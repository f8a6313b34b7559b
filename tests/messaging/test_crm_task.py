"""The CRM channel: a Salesforce Task on the lead's Contact, over real HTTP to the sandbox. It lands on
the right Contact once (retries update it, never duplicate it), with the rendered text; failures are
transient or permanent as for the other HTTP channels; channels.yml declares it, secrets from the env."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from activations.destinations.base import Secret
from activations.messaging.channels import (
    ChannelConfigError,
    OutgoingMessage,
    SalesforceTaskChannel,
    channel_from_config,
    load_channels,
)
from sandbox import running_sandbox

pytestmark = pytest.mark.xdist_group("messaging_wire")

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "sandbox-salesforce-token"
API = "/services/data/v62.0"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_sandbox(tmp_path_factory.mktemp("crm") / "sandbox", env={}) as base:
        yield base


@pytest.fixture
def channel(sandbox) -> Iterator[SalesforceTaskChannel]:
    requests.post(f"{sandbox}/_sandbox/reset", json={"destination": "salesforce"}, timeout=10).raise_for_status()
    channel = SalesforceTaskChannel(f"{sandbox}/salesforce", Secret(TOKEN), priority="High", timeout=5)
    yield channel
    channel.close()
    requests.delete(f"{sandbox}/_sandbox/faults", timeout=10).raise_for_status()


def add_contact(sandbox: str, customer_id: str, email: str) -> str:
    """The Contact as the leads sync upserts it (sObject Collections on Attiva_Customer_Id__c); its Id."""
    answer = requests.patch(
        f"{sandbox}/salesforce{API}/composite/sobjects/Contact/Attiva_Customer_Id__c",
        json={"allOrNone": False, "records": [{"attributes": {"type": "Contact"}, "Attiva_Customer_Id__c": customer_id,
                                               "LastName": "Fontana", "Email": email}]},
        headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    answer.raise_for_status()
    [result] = answer.json()
    assert result["success"], result
    return result["id"]


def tasks(sandbox: str) -> dict[str, dict]:
    """Task records by their external id (our message id), as the sandbox holds them."""
    state = requests.get(f"{sandbox}/_sandbox/state/salesforce", timeout=10).json()
    return state["objects"].get("Task", {}).get("Attiva_Message_Id__c", {})


def task_message(customer_id: str = "cus_chiara", i: int = 1, **changes) -> OutgoingMessage:
    fields = {
        "message_id": f"mql_handoff.{i:020d}.1@attiva", "to_email": "chiara@studiofontana.it",
        "to_name": "Chiara Fontana", "from_email": "ciao@emporionove.it", "from_name": "Emporio Nove",
        "subject": "Nuovo MQL da chiamare: Chiara Fontana (Studio Fontana)", "html": "<p>Chiara</p>",
        "text": "Chiara Fontana, Titolare presso Studio Fontana.\nLead score: 66/100\n",
        "headers": {"List-Unsubscribe": "<https://x.example/u>"}, "campaign": "mql_handoff",
        "customer_id": customer_id,
    }
    return OutgoingMessage(**{**fields, **changes})


def test_a_task_lands_on_the_leads_contact_once(sandbox, channel):
    contact = add_contact(sandbox, "cus_chiara", "chiara@studiofontana.it")
    add_contact(sandbox, "cus_other", "other@example.it")
    message = task_message()
    first = channel.send(message)
    assert first.ok and first.status == 201 and first.provider_id.startswith("00T")
    [task] = tasks(sandbox).values()
    assert task["Id"] == first.provider_id and task["WhoId"] == contact
    assert task["Subject"] == message.subject and task["Description"] == message.text
    assert (task["Status"], task["Priority"]) == ("Not Started", "High")
    assert task["ActivityDate"] == (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=2)).isoformat()
    # Sent again (a retry, or a second pass that lost its record): the same task, updated, not a second one.
    again = channel.send(message)
    assert again.ok and again.status == 200 and again.provider_id == first.provider_id
    assert list(tasks(sandbox)) == [message.message_id]


def test_a_retry_after_a_timeout_updates_the_task_the_timeout_hid(sandbox, channel):
    add_contact(sandbox, "cus_chiara", "chiara@studiofontana.it")
    requests.post(f"{sandbox}/_sandbox/faults", json={"destination": "salesforce", "timeout_rate": 1.0,
                                                      "timeout_seconds": 2.0}, timeout=10).raise_for_status()
    hurried = SalesforceTaskChannel(f"{sandbox}/salesforce", Secret(TOKEN), timeout=0.3)
    try:
        lost = hurried.send(task_message())
    finally:
        hurried.close()
    # The task was written, only the answer was late: transient, so the next pass retries ...
    assert not lost.ok and not lost.permanent and "timed out" in lost.reason
    assert len(tasks(sandbox)) == 1
    requests.delete(f"{sandbox}/_sandbox/faults", timeout=10).raise_for_status()
    # ... and the retry finds it by the message id instead of creating a second one.
    retried = channel.send(task_message())
    assert retried.ok and retried.status == 200
    assert len(tasks(sandbox)) == 1


def test_failures_are_transient_or_permanent_as_for_the_other_http_channels(sandbox, channel):
    # The lead's Contact is not in Salesforce yet (the leads sync has not run): retried until the step expires.
    missing = channel.send(task_message("cus_not_synced"))
    assert not missing.ok and not missing.permanent and missing.status == 400
    assert "cus_not_synced is not in Salesforce yet" in missing.reason
    add_contact(sandbox, "cus_chiara", "chiara@studiofontana.it")

    def with_faults(**faults):
        requests.post(f"{sandbox}/_sandbox/faults", json={"destination": "salesforce", **faults},
                      timeout=10).raise_for_status()
        try:
            return channel.send(task_message(i=2))
        finally:
            requests.delete(f"{sandbox}/_sandbox/faults", timeout=10).raise_for_status()

    unavailable = with_faults(error_rate=1.0)  # 503 SERVER_UNAVAILABLE
    assert not unavailable.ok and not unavailable.permanent and unavailable.status == 503
    over_limit = with_faults(rate_limit_rate=1.0)  # Salesforce's 403 REQUEST_LIMIT_EXCEEDED
    # Allocation left (Sforce-Limit-Info): the concurrent-request limit, which clears quickly; not a stop.
    assert not over_limit.ok and not over_limit.permanent and not over_limit.stop and over_limit.status == 403
    refused = with_faults(row_reject_rate=1.0)  # a validation rule refuses the record: it would again
    assert not refused.ok and refused.permanent and refused.status == 400
    assert "FIELD_CUSTOM_VALIDATION_EXCEPTION" in refused.reason
    assert tasks(sandbox) == {}

    wrong = SalesforceTaskChannel(f"{sandbox}/salesforce", Secret("not-the-token"), timeout=5)
    try:
        unauthorized = wrong.send(task_message())
    finally:
        wrong.close()
    assert not unauthorized.ok and not unauthorized.permanent and unauthorized.stop and unauthorized.status == 401
    assert "not-the-token" not in unauthorized.reason

    anonymous = channel.send(task_message(customer_id=""))
    assert not anonymous.ok and anonymous.permanent and "customer's id" in anonymous.reason
    # Salesforce refuses a subject over 255 characters; the channel cuts it rather than lose the task.
    long = channel.send(task_message(subject="Chiamare " + "x" * 400))
    assert long.ok and len(tasks(sandbox)[task_message().message_id]["Subject"]) == 255


def test_channels_yml_declares_the_sales_task_channel_with_its_secret_in_the_environment(tmp_path):
    channels = load_channels(ROOT / "channels.yml", env={"ATTIVA_SANDBOX_PORT": "9999"})
    try:
        task = channels["sales_task"]
        assert isinstance(task, SalesforceTaskChannel)
        assert task.base_url == "http://127.0.0.1:9999/salesforce" and task.priority == "High"
        assert (task.contact_field, task.task_field) == ("Attiva_Customer_Id__c", "Attiva_Message_Id__c")
    finally:
        for c in channels.values():
            c.close()
    real = {"ATTIVA_SALES_TASK_URL": "https://acme.my.salesforce.com", "ATTIVA_SALES_TASK_TOKEN": "00D!secret"}
    task = channel_from_config("sales_task", {"type": "salesforce_task"}, real)
    assert task.base_url == "https://acme.my.salesforce.com" and "00D!secret" not in repr(task)
    task.close()
    with pytest.raises(ChannelConfigError, match="'token'.*ATTIVA_SALES_TASK_TOKEN"):
        channel_from_config("sales_task", {"type": "salesforce_task", "token": "t"}, {}, source="channels.yml")
    with pytest.raises(ChannelConfigError, match="ATTIVA_SALES_TASK_URL points away"):
        channel_from_config("sales_task", {"type": "salesforce_task"},
                            {"ATTIVA_SALES_TASK_URL": "https://acme.my.salesforce.com"})
    with pytest.raises(ChannelConfigError, match="channel 'sales_task', field 'priority'"):
        channel_from_config("sales_task", {"type": "salesforce_task", "priority": "urgent"}, {})
    with pytest.raises(ChannelConfigError, match="field 'due_in_days'"):
        channel_from_config("sales_task", {"type": "salesforce_task", "due_in_days": -1}, {})
