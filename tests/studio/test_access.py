"""Who gets in and how: passwords checked against argon2 hashes, every form guarded by its CSRF token,
roles from the users file, and a console that will not start without its secret or its users."""

from __future__ import annotations

import stat

import pytest
import yaml
from starlette.routing import Route

from activations.cli import main
from activations.serve.app import running_server
from activations.studio.app import Studio, create_app
from activations.studio.sessions import COOKIE, StudioConfigError
from activations.studio.throttle import LoginThrottle
from activations.studio.users import UsersFileError, add_user, authenticate, load_users
from tests.studio.conftest import PASSWORDS, SECRET, Visitor, form_token


def test_a_signed_out_visitor_is_sent_to_the_login_page_and_back(visitor):
    answer = visitor.get("/customers")
    assert answer.url.endswith("/login?next=/customers") and "Log in" in answer.text
    signed_in = visitor.post("/login", {"name": "mara", "password": PASSWORDS["mara"], "next": "/customers"})
    assert signed_in.status_code == 200 and signed_in.url.endswith("/customers")


def test_a_wrong_password_or_an_unknown_name_is_refused_alike(visitor):
    for name, password in (("mara", "not-her-password"), ("nobody", "whatever-password")):
        answer = visitor.log_in(name, password)
        assert answer.status_code == 401 and "Wrong name or password." in answer.text
    assert visitor.get("/audiences").url.endswith("/login?next=/audiences")


def test_a_post_without_the_forms_token_is_refused_with_403(visitor, as_marketer):
    for path, data in (("/customers", {"who": "mario.rossi@gmail.com"}), ("/logout", {})):
        refused = as_marketer.post(path, data, token=False)
        assert refused.status_code == 403 and "CSRF" in refused.text
        assert as_marketer.post(path, {**data, "csrf_token": "forged"}, token=False).status_code == 403
    assert as_marketer.get("/audiences").status_code == 200  # still signed in: nothing was done


def test_the_login_form_is_guarded_too(visitor):
    refused = visitor.post("/login", {"name": "mara", "password": PASSWORDS["mara"]}, token=False)
    assert refused.status_code == 403


def test_every_post_route_checks_the_token(studio):
    posts = [r for r in create_app(studio, SECRET).routes if isinstance(r, Route) and "POST" in (r.methods or ())]
    assert {r.path for r in posts} == {"/login", "/logout", "/customers", "/customers/{customer_id}/erase",
                                       "/builder", "/builder/estimate",
                                       "/builder/save", "/campaigns/{campaign}/pause",
                                       "/campaigns/{campaign}/resume", "/campaigns/{campaign}/test-send",
                                       "/audiences/{name}/retry"}
    assert all(getattr(r.endpoint, "csrf_checked", False) for r in posts)


def test_logging_out_ends_the_session_and_signing_in_starts_a_new_one(visitor):
    visitor.get("/login")
    before = visitor.session.cookies.get(COOKIE)
    visitor.log_in("mara")
    assert visitor.session.cookies.get(COOKIE) != before
    page = visitor.get("/audiences")
    assert visitor.post("/logout", {"csrf_token": form_token(page.text)}, token=False).url.endswith("/login")
    assert visitor.get("/audiences").url.endswith("/login?next=/audiences")


def test_a_removed_user_is_signed_out_at_once(studio_warehouse, tmp_path):
    users = tmp_path / "users.yml"
    add_user(users, "mara", "marketer", PASSWORDS["mara"])
    add_user(users, "ada", "admin", PASSWORDS["ada"])
    with running_server(create_app(Studio(users, studio_warehouse), SECRET)) as url:
        visitor = Visitor(url)
        assert visitor.log_in("mara").url.endswith("/audiences")
        raw = yaml.safe_load(users.read_text())
        del raw["users"]["mara"]
        users.write_text(yaml.safe_dump(raw))
        assert visitor.get("/audiences").url.endswith("/login?next=/audiences")


def test_the_users_file_keeps_argon2_hashes_only_readable_by_its_owner(users_file):
    text = users_file.read_text()
    assert "$argon2id$" in text and not any(password in text for password in PASSWORDS.values())
    assert stat.S_IMODE(users_file.stat().st_mode) == 0o600
    users = load_users(users_file)
    assert authenticate(users, "vera", PASSWORDS["vera"]).role == "viewer"
    assert authenticate(users, "vera", PASSWORDS["mara"]) is None


def test_add_user_takes_the_password_from_the_environment_and_refuses_an_unknown_role(tmp_path, monkeypatch, capsys):
    users = tmp_path / "studio_users.yml"
    monkeypatch.setenv("ATTIVA_STUDIO_PASSWORD", "a-long-password")
    assert main(["studio", "--users", str(users), "--add-user", "gino", "--role", "owner"]) == 2
    assert "unknown role 'owner': expected one of viewer, marketer, admin" in capsys.readouterr().err
    assert not users.exists()
    assert main(["studio", "--users", str(users), "--add-user", "gino", "--role", "marketer"]) == 0
    assert authenticate(load_users(users), "gino", "a-long-password").role == "marketer"
    # Again: the role and password change, nobody is added twice.
    monkeypatch.setenv("ATTIVA_STUDIO_PASSWORD", "another-long-one")
    assert main(["studio", "--users", str(users), "--add-user", "gino", "--role", "viewer"]) == 0
    assert "changed in" in capsys.readouterr().err
    assert list(load_users(users)) == ["gino"] and authenticate(load_users(users), "gino", "another-long-one")


def test_add_user_without_a_terminal_or_variable_says_how_to_give_the_password(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ATTIVA_STUDIO_PASSWORD", raising=False)
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(["studio", "--users", str(tmp_path / "u.yml"), "--add-user", "gino", "--role", "viewer"]) == 2
    assert "set ATTIVA_STUDIO_PASSWORD" in capsys.readouterr().err


def test_a_short_password_or_a_bad_name_is_refused(tmp_path):
    with pytest.raises(UsersFileError, match="shorter than 8"):
        add_user(tmp_path / "u.yml", "gino", "viewer", "short")
    with pytest.raises(UsersFileError, match="letters, digits"):
        add_user(tmp_path / "u.yml", "gino rossi", "viewer", "long-enough")


def test_the_console_refuses_to_start_without_its_secret(studio, tmp_path, monkeypatch, capsys):
    for secret in (None, "", "too-short"):
        with pytest.raises(StudioConfigError, match="ATTIVA_STUDIO_SECRET"):
            create_app(studio, secret)
    monkeypatch.delenv("ATTIVA_STUDIO_SECRET", raising=False)
    assert main(["studio", "--users", str(studio.users_path), "--warehouse", str(studio.warehouse_path)]) == 2
    err = capsys.readouterr().err
    assert "attiva studio: ATTIVA_STUDIO_SECRET is not set: it signs the console's session cookies" in err


def test_the_console_refuses_to_start_with_nobody_to_sign_in(studio_warehouse, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ATTIVA_STUDIO_SECRET", SECRET)
    assert main(["studio", "--users", str(tmp_path / "none.yml"), "--warehouse", str(studio_warehouse)]) == 2
    err = capsys.readouterr().err
    assert "no users in" in err and "--add-user NAME --role admin" in err


def test_the_console_serves_only_on_this_machine(studio, monkeypatch, capsys):
    monkeypatch.setenv("ATTIVA_STUDIO_SECRET", SECRET)
    assert main(["studio", "--host", "0.0.0.0", "--users", str(studio.users_path)]) == 2
    assert "serves only on this machine" in capsys.readouterr().err


def test_after_login_it_goes_only_to_a_page_of_its_own(visitor):
    answer = visitor.post("/login", {"name": "mara", "password": PASSWORDS["mara"], "next": "https://evil.example"})
    assert answer.url == visitor.base_url + "/audiences"
    answer = visitor.post("/login", {"name": "mara", "password": PASSWORDS["mara"], "next": "//evil.example/x"})
    assert answer.url == visitor.base_url + "/audiences"


def test_five_failed_sign_ins_lock_that_name_for_a_while_and_no_other(studio):
    with running_server(create_app(studio, SECRET)) as url:  # its own throttle: the shared console's users stay free
        guesser, other = Visitor(url), Visitor(url)
        for _ in range(5):
            assert guesser.log_in("mara", "a-guess-password").status_code == 401
        locked = guesser.log_in("mara")  # the right password, now too late
        assert locked.status_code == 429 and "Too many failed sign-ins" in locked.text
        assert int(locked.headers["Retry-After"]) > 800
        assert other.log_in("vera").status_code == 200  # another name signs in as before


def test_the_lock_lifts_when_the_failures_leave_the_window():
    now = [1000.0]
    throttle = LoginThrottle(clock=lambda: now[0])
    for _ in range(5):
        throttle.failed("mara")
    assert throttle.wait("mara") == pytest.approx(900)
    now[0] += 899
    assert throttle.wait("mara") == pytest.approx(1)
    now[0] += 2
    assert throttle.wait("mara") == 0
    throttle.failed("mara")
    throttle.succeeded("mara")  # a success forgets the failures
    assert throttle.wait("mara") == 0
