"""A/B variants: a step that lists several templates gives each customer one of them, the same one
every time, independently of the holdout; the ledger records which, and the message sent is that
variant's (its subject line)."""

from __future__ import annotations

import email
import email.policy
import json
import re
from pathlib import Path

import duckdb
import polars as pl
import pytest

from activations.messaging.channels import SmtpChannel
from activations.messaging.ledger import in_holdout, variant
from activations.messaging.policy import PolicyError, Step, triggers
from activations.messaging.send import run_pass
from activations.messaging.templates import TemplateError, Templates
from activations.messaging.validate import validate_templates
from sandbox.smtp import running_smtp
from tests.messaging.test_send import NO_CAPS, NOW, add_customer, add_occurrence, create_tables, make_trigger

pytestmark = pytest.mark.xdist_group("variants")

AB = ("favourite_on_promotion", "favourite_on_promotion_b")


def manifest(steps: list) -> dict:
    columns = {c: {} for c in ("trigger_key", "customer_id", "occurred_at")}
    return {"nodes": {"model.attiva.trg_promo": {
        "resource_type": "model", "name": "trg_promo", "schema": "triggers", "columns": columns,
        "config": {"meta": {"messaging": {"channel": "email", "consent": "none", "steps": steps}}}}}}


def test_a_step_with_a_list_of_templates_is_an_ab_test():
    [trigger] = triggers(manifest([{"template": list(AB), "delay": "1h"}, {"template": "welcome_2", "delay": "2d"}]),
                         {"email"})
    assert trigger.steps[0].templates == AB and trigger.steps[0].template == AB[0]
    assert trigger.steps[1].templates == ("welcome_2",)
    for bad, field in (([], "steps[0].template"), ([AB[0], AB[0]], "steps[0].template"),
                       ([AB[0], 3], "steps[0].template[1]")):
        with pytest.raises(PolicyError, match=re.escape(f"model 'trg_promo', field 'meta.messaging.{field}': ")):
            triggers(manifest([{"template": bad, "delay": "1h"}]), {"email"})


def test_variants_are_stable_even_and_independent_of_the_holdout():
    customers = pl.Series([f"c{i}" for i in range(4000)])
    drawn = variant("promo", customers, AB)
    assert drawn.to_list() == variant("promo", customers, AB).to_list()  # the same person, the same variant
    assert abs((drawn == AB[1]).mean() - 0.5) < 0.03
    held = in_holdout("promo", customers, 0.2)
    for template in AB:  # each variant keeps about the campaign's holdout share
        assert abs(held.filter(drawn == template).mean() - 0.2) < 0.03
    assert variant("other", customers, AB).to_list() != drawn.to_list()  # drawn per campaign


def test_each_customer_gets_their_variant_and_the_ledger_records_it(tmp_path):
    trigger = make_trigger()
    trigger = trigger.__class__(**{**trigger.__dict__, "holdout": 0.2,
                                   "steps": (Step(1, AB[0], trigger.steps[0].delay, None, AB[1:]),)})
    with running_smtp(tmp_path / "smtp-state") as (host, port), \
            duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        create_tables(con)
        for i in range(60):
            add_customer(con, f"c{i}")
            add_occurrence(con, f"k{i}", f"c{i}")
        channel = SmtpChannel(host, port, from_email="ciao@emporionove.it", from_name="Emporio Nove")
        try:
            run_pass(con, [trigger], {"email": channel}, Templates(), NO_CAPS, NOW)
        finally:
            channel.close()
        ledger = {r[0]: r[1:] for r in con.execute(
            "select customer_id, template, state, message_id from activation.message_ledger").fetchall()}
    expected = dict(zip([f"c{i}" for i in range(60)], variant(trigger.campaign, pl.Series(
        [f"c{i}" for i in range(60)]), AB).to_list(), strict=True))
    assert {c: t for c, (t, _, _) in ledger.items()} == expected  # held out too: their would-be variant
    assert {t for t, state, _ in ledger.values() if state == "sent"} == set(AB)
    assert any(state == "held_out" for _, state, _ in ledger.values())

    store = tmp_path / "smtp-state" / "smtp" / "messages.jsonl"
    subjects = {}
    for line in store.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        message = email.message_from_string(record["raw"].replace("\r\n", "\n"), policy=email.policy.default)
        subjects[record["attiva_message_id"]] = str(message["Subject"])
    sent = {mid: t for t, state, mid in ledger.values() if state == "sent"}
    assert set(subjects) == set(sent)
    for message_id, template in sent.items():  # variant b's subject leads with the name and the discount
        assert subjects[message_id].startswith("Il tuo preferito") == (template == AB[0]), subjects[message_id]


def test_every_variant_is_validated_when_definitions_load(tmp_path):
    folder = tmp_path / "templates"
    for name, subject in ((AB[0], "Offerta"), (AB[1], "{{ customer.nickname }}")):  # b reads a field nobody has
        (folder / name).mkdir(parents=True)
        (folder / name / "subject.txt.j2").write_text(subject)
        (folder / name / "body.html.j2").write_text("<p>ciao</p>")
        (folder / name / "body.txt.j2").write_text("ciao")
    [trigger] = triggers(manifest([{"template": list(AB), "delay": "1h"}]), {"email"})
    with pytest.raises(TemplateError, match=AB[1]):
        validate_templates([trigger], Templates(Path(folder)))
