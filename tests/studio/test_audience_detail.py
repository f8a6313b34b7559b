"""An audience's page: a sample of its members (personal data only for those who may see it, narrowed to
a consent), its overlap with the other audiences (counts equal to direct SQL), the rows a destination
rejected with their reasons, and the retry button, which runs `attiva retry` against the sandbox."""

from __future__ import annotations

import time

import duckdb
import pytest

from activations.serve.app import running_server
from activations.studio import retries
from activations.studio.app import Studio, create_app
from activations.studio.privacy import mask_text
from activations.studio.users import add_user
from tests.studio.conftest import MARIO, MARIO_PII, PASSWORDS, SECRET, Visitor, text_of
from tests.test_cli_syncs import ELIGIBLE, UPSERT, attiva, env  # noqa: F401  (env: the sandbox fixture)


def sql(path, query: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(query).fetchall()


def test_a_marketer_sees_members_and_a_viewer_the_same_members_masked(console, as_marketer, studio):
    page = as_marketer.get("/audiences/aud_champions")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Members" in text and MARIO in text and "mario.rossi@gmail.com" in text and "Mario" in text
    # The row meta rejected, with its reason, and the button to send it again.
    assert "aud_champions__meta: 1 row to resend" in text and "HTTP 503 from meta: Service temporarily" in text
    assert 'action="/audiences/aud_champions/retry"' in page.text

    viewer = Visitor(console)
    viewer.log_in("vera")
    text = text_of(viewer.get("/audiences/aud_champions").text)
    assert MARIO in text and "m•••@g•••.com" in text
    leaked = [value for value in MARIO_PII if value in text]
    assert not leaked, f"a viewer sees {leaked}"


def test_the_sample_narrows_to_members_with_a_consent(as_marketer, studio):
    [(with_sms,)] = sql(studio.warehouse_path, "select count(*) from audiences.aud_email_subscribers where consent_sms")
    [(without,)] = sql(studio.warehouse_path, "select count(*) from audiences.aud_email_subscribers "
                                              "where not coalesce(consent_sms, false)")
    assert without > 0, "the handcrafted subscribers all consent to SMS: the filter would show nothing"
    page = as_marketer.get("/audiences/aud_email_subscribers?consent=consent_sms").text
    rows = page.split('id="sample"')[1].split("</table>")[0].count("<tr>") - 1 if with_sms else 0
    assert rows == min(with_sms, 20)
    # An unknown consent is ignored, not put into SQL.
    assert as_marketer.get("/audiences/aud_email_subscribers?consent=1;drop").status_code == 200


def test_the_overlap_counts_are_the_warehouses(as_marketer, studio):
    text = as_marketer.get("/audiences/aud_champions").text
    section = text.split('id="overlap"')[1].split("</table>")[0]
    for other in ("aud_email_subscribers", "aud_at_risk"):
        [(shared,)] = sql(studio.warehouse_path, f"select count(distinct c.customer_id) from audiences.aud_champions c "
                                                 f"join audiences.{other} o using (customer_id)")
        row = section.split(f'data-audience="{other}"')[1].split("</tr>")[0]
        assert f'class="num shared">{shared:,}<' in row, (other, shared, row)


def test_an_audience_no_sync_reads_has_its_size_at_each_build(as_marketer):
    page = as_marketer.get("/audiences/aud_at_risk").text
    sizes = text_of(page.split('id="sizes"')[1].split("</table>")[0])
    assert sizes.endswith("2026-11-20 05:00 build (quality gate) 3 2026-11-18 05:00 build (quality gate) 5")
    assert "<svg" in page and "marts/customers" not in page


def test_reasons_in_free_text_are_masked_for_a_viewer():
    said = mask_text("invalid contact mario.rossi@gmail.com, phone +39 333 1234567, at 2026-11-20 06:00")
    assert "mario.rossi" not in said and "1234567" not in said and "2026-11-20 06:00" in said


# -- rejects and the retry button, against the sandbox -------------------------------------------------------


@pytest.fixture
def rejected(env, capsys, tmp_path):  # noqa: F811
    """aud_test synced with half its rows rejected by the sandbox, the faults then turned off; a console on it."""
    env.faults(row_reject_rate=0.5, seed=3)
    code, out, _ = attiva(capsys, "sync", UPSERT)
    assert code == 4, out
    env.faults(row_reject_rate=0.0)
    users = tmp_path / "users.yml"
    for name, role in (("vera", "viewer"), ("mara", "marketer")):
        add_user(users, name, role, PASSWORDS[name])
    studio = Studio(users, env.warehouse, env.root / "manifest.json", env.root / "destinations.yml")
    with running_server(create_app(studio, SECRET)) as url:
        yield env, url


def test_a_marketer_sees_the_rejected_rows_and_retries_them(rejected):
    synced, url = rejected
    waiting = {key for (key,) in synced.sql(f"select row_key from activation.sync_rejects where sync_name = '{UPSERT}'")}
    assert 0 < len(waiting) < len(ELIGIBLE)
    viewer = Visitor(url)
    viewer.log_in("vera")
    page = viewer.get("/audiences/aud_test").text
    assert "rejected by sandbox fault injection" in page and f"{len(waiting)} rows to resend" in text_of(page)
    assert 'action="/audiences/aud_test/retry"' not in page
    assert viewer.post("/audiences/aud_test/retry", {"sync": UPSERT}).status_code == 403

    marketer = Visitor(url)
    marketer.log_in("mara")
    assert marketer.post("/audiences/aud_test/retry", {"sync": UPSERT}, token=False).status_code == 403
    assert marketer.post("/audiences/aud_test/retry", {"sync": "aud_test__nope"}).status_code == 404
    before, _ = synced.received()
    answer = marketer.post("/audiences/aud_test/retry", {"sync": UPSERT})
    assert answer.status_code == 200 and f"Retry of {UPSERT} started by mara" in answer.text
    assert retries.wait(UPSERT, timeout=120) == 0
    after, keys = synced.received()
    assert after - before == len(waiting) and keys == set(ELIGIBLE)  # only the rejected rows went again
    assert synced.sql(f"select count(*) from activation.sync_rejects where sync_name = '{UPSERT}'") == [(0,)]
    for _ in range(100):  # the console's thread records the outcome once the process ended
        [(outcome, actor)] = synced.sql("select outcome, actor from activation.studio_actions where action = 'retry'")
        if outcome != "running":
            break
        time.sleep(0.1)
    assert (outcome, actor) == ("success", "mara")
    page = text_of(marketer.get("/audiences/aud_test").text)
    assert "No row waits to be resent" in page
