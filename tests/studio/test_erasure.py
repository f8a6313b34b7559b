"""Erasing a customer from their page: admins only (a viewer or marketer gets no button and a 403), with
the form's token and the customer id typed again; it runs `attiva forget` itself, records who asked in
activation.studio_actions without the person's identifiers, and the request is then the one
`attiva forget --status` follows. The erasure itself runs on a copy of the warehouse, with a console of
its own, so the other tests still find Mario."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from activations.cli import main
from activations.destinations.config import env_prefix
from activations.serve.app import running_server
from activations.studio import erasing, reading
from activations.studio.app import Studio, create_app
from sandbox.server import running_sandbox
from tests.engine.setups import OPTIONS, TOKENS
from tests.studio.conftest import MARIO, MARIO_PII, SECRET, Visitor, holding_for_writing, text_of


def erasure_requests(warehouse: Path) -> int:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        if not con.execute("select count(*) from information_schema.tables where table_schema = 'activation' "
                           "and table_name = 'erasure_requests'").fetchone()[0]:
            return 0
        return con.execute("select count(*) from activation.erasure_requests").fetchone()[0]


@pytest.mark.parametrize("who", ["vera", "mara"])
def test_only_an_admin_may_erase(visitor, who, studio):
    visitor.log_in(who)
    page = visitor.get(f"/customers/{MARIO}")
    assert page.status_code == 200 and 'id="erase"' not in page.text and "/erase" not in page.text
    refused = visitor.post(f"/customers/{MARIO}/erase", {"confirm": MARIO})
    assert refused.status_code == 403 and "Only an admin can erase a customer." in refused.text
    assert visitor.get(f"/customers/{MARIO}").status_code == 200
    assert erasure_requests(studio.warehouse_path) == 0


def test_an_erasure_without_the_forms_token_or_the_typed_id_erases_nothing(as_admin, studio):
    page = as_admin.get(f"/customers/{MARIO}")
    assert 'id="erase"' in page.text and f'action="/customers/{MARIO}/erase"' in page.text
    assert as_admin.post(f"/customers/{MARIO}/erase", {"confirm": MARIO}, token=False).status_code == 403
    for typed in ("", "cus_29368edbe721d21b", MARIO[:-1]):
        answer = as_admin.post(f"/customers/{MARIO}/erase", {"confirm": typed})
        assert answer.status_code == 409 and f"Nothing erased: the id typed is not {MARIO}." in answer.text
    assert as_admin.get(f"/customers/{MARIO}").status_code == 200
    assert erasure_requests(studio.warehouse_path) == 0


@pytest.fixture
def own_console(studio_warehouse: Path, users_file: Path, tmp_path: Path, monkeypatch) -> Iterator[tuple[str, Path]]:
    """A console on a copy of the studio's warehouse, whose one destination (Mailchimp) is the sandbox's."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(studio_warehouse, warehouse)
    options = "\n".join(f'    {k}: "{v}"' for k, v in OPTIONS["mailchimp"].items())
    destinations = tmp_path / "destinations.yml"
    destinations.write_text(f"destinations:\n  t_mailchimp:\n    type: mailchimp\n{options}\n")
    with running_sandbox(tmp_path / "sandbox", tokens=TOKENS) as base:
        # The command runs in a subprocess: it reads these from the environment it inherits.
        monkeypatch.setenv(f"{env_prefix('t_mailchimp')}_URL", f"{base}/mailchimp")
        monkeypatch.setenv(f"{env_prefix('t_mailchimp')}_TOKEN", TOKENS["mailchimp"])
        app = create_app(Studio(users_file, warehouse, destinations_path=destinations), SECRET)
        with running_server(app) as url:
            yield url, warehouse


def test_an_admin_erases_a_customer_with_the_forget_command(own_console, capsys):
    url, warehouse = own_console
    admin = Visitor(url)
    admin.log_in("ada")
    answer = admin.session.post(f"{url}/customers/{MARIO}/erase", timeout=150,
                                data={"csrf_token": admin.token(), "confirm": f" {MARIO} "})
    assert answer.status_code == 200, answer.text
    text = text_of(answer.text)
    assert f"forgot 1 customer(s): {MARIO}" in text and "Erased, and every destination confirmed the deletion." in text
    assert text_of(answer.text.split('id="exit-code">')[1].split("</dd>")[0]) == "0"
    request_id = text_of(answer.text.split('id="request-id">')[1].split("</dd>")[0])
    assert len(request_id) == 12 and f"erasure request {request_id}: deletion asked at t_mailchimp" in text
    # Gone from the console: the page says so.
    gone = admin.get(f"/customers/{MARIO}")
    assert gone.status_code == 404 and "Erased: `attiva forget` was asked to erase this customer on" in gone.text
    assert "No customer has that identifier." in admin.post("/customers", {"who": MARIO_PII[0]}).text
    # The request is the one the terminal follows, confirmed by the destination.
    assert main(["forget", "--status", "--all", "--warehouse", str(warehouse)]) == 0
    assert f"{request_id}" in capsys.readouterr().out
    with duckdb.connect(str(warehouse), read_only=True) as con:
        [(status,)] = con.execute("select status from activation.erasure_destinations where request_id = ?",
                                  [request_id]).fetchall()
        actions = con.execute("select action, actor, request_id, exit_code, outcome, acted_at is not null "
                              "from activation.studio_actions").fetchall()
        stored = str(con.execute("select * from activation.studio_actions").fetchall())
    assert status == "confirmed"
    assert actions == [("erase", "ada", request_id, 0, "erased, and every destination confirmed the deletion", True)]
    assert not [value for value in (*MARIO_PII, MARIO) if value in stored]


def test_an_erasure_while_a_writer_holds_the_warehouse_says_so_and_erases_nothing(own_console, monkeypatch):
    url, warehouse = own_console
    monkeypatch.setattr(reading, "READ_WAIT", 0.5)
    admin = Visitor(url)
    admin.log_in("ada")
    token = admin.token()
    with holding_for_writing(warehouse) as holder:
        started = time.monotonic()
        answer = admin.session.post(f"{url}/customers/{MARIO}/erase", data={"csrf_token": token, "confirm": MARIO},
                                    timeout=30)
        assert answer.status_code == 503 and time.monotonic() - started < 10
        assert "Nothing erased" in answer.text and f"PID {holder.pid}" in answer.text
    assert erasure_requests(warehouse) == 0
    assert admin.get(f"/customers/{MARIO}").status_code == 200


def test_a_writer_arriving_before_the_command_runs_makes_it_give_up_saying_so(studio_warehouse, tmp_path, monkeypatch):
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(studio_warehouse, warehouse)
    monkeypatch.setattr(erasing, "WAIT", 1.0)
    with holding_for_writing(warehouse) as holder:
        erasure = erasing.run_forget(warehouse, MARIO, timeout=60)
    assert erasure.exit_code == 1 and erasure.request_id is None and f"PID {holder.pid}" in erasure.output
    assert erasure.outcome == "nothing erased: the warehouse is in use by another process; try again when it finishes"
    assert erasure_requests(warehouse) == 0
    with pytest.raises(ValueError, match="not an option"):
        erasing.run_forget(warehouse, "--status")
