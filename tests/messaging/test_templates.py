"""Message content: templates render every demo use case, fail loudly on unknown names,
show data as text, and the links and coupons inside a message are signed, tracked and single use."""

from __future__ import annotations

import shutil
import string
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlsplit

import duckdb
import pytest

from activations import settings
from activations.messaging import coupons, links
from activations.messaging.templates import (
    RenderedMessage,
    TemplateError,
    Templates,
    message_context,
    sample_context,
)

pytestmark = pytest.mark.xdist_group("messaging_content")

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
DEMO = ["abandoned_cart", "birthday", "browse_abandonment", "cross_sell", "favourite_on_promotion",
        "favourite_on_promotion_b",
        "lead_nurture_1", "lead_nurture_2", "lead_nurture_3", "welcome_1", "welcome_2", "welcome_3", "win_back"]
CRM_TASKS = ["mql_handoff"]  # not emails: a task for sales in the CRM, no unsubscribe link, no tracked links
SMS = ["birthday_sms", "win_back_sms"]  # plain text for an SMS channel (tests/messaging/test_twilio.py)
PUSH = ["abandoned_cart_push"]  # a title and a text for a push channel (tests/messaging/test_fcm.py)
IN_APP = ["favourite_on_site"]  # a title, a text and a link for an in-app channel (tests/serve/test_in_app.py)
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
SECRET = "test-secret-0123456789"


class _TagBalance(HTMLParser):
    """Well-formedness, loosely: every non-void element closed, in order; no script."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.hrefs: list[str] = []
        self.doctype = False

    def handle_decl(self, decl):
        self.doctype = decl.lower() == "doctype html"

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self.problems.append("a <script> element")
        if tag == "a":
            self.hrefs.append(dict(attrs)["href"])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.problems.append(f"unexpected </{tag}>")


def _html_check(html: str) -> _TagBalance:
    parser = _TagBalance()
    parser.feed(html)
    parser.close()
    assert parser.doctype, "no <!doctype html>"
    assert not parser.problems and not parser.stack, (parser.problems, parser.stack)
    return parser


@pytest.fixture(scope="module")
def templates() -> Templates:
    return Templates(TEMPLATES)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the demo templates to break."""
    target = tmp_path / "templates"
    shutil.copytree(TEMPLATES, target)
    return target


# -- the demo templates -------------------------------------------------------------------------------


def test_every_use_case_has_a_template(templates):
    assert templates.names() == sorted(DEMO + CRM_TASKS + SMS + PUSH + IN_APP)


def test_an_in_app_template_renders_a_title_a_text_and_a_tracked_link(templates, tmp_path):
    context = sample_context(campaign="favourite_on_site", channel="on_site", coupon=False)
    rendered = templates.render("favourite_on_site", context)
    assert rendered.subject == "Giulia, il tuo preferito è in offerta" and rendered.html == ""
    assert rendered.text == "Arabica Etiopia Sidamo 500g a -20%: ora 10,32 €, solo per la durata della promozione.\n"
    assert rendered.link.startswith("https://www.emporionove.it/p/P-0003?utm_source=attiva&utm_medium=on_site")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "in_app_title.txt.j2").write_text("t")
    (tmp_path / "half" / "in_app.txt.j2").write_text("b")
    with pytest.raises(TemplateError, match="lacks in_app_link.txt.j2"):
        Templates(tmp_path).render("half", context)


def test_the_crm_task_template_briefs_sales_without_an_unsubscribe_footer(templates):
    context = sample_context(campaign="mql_handoff", coupon=False)
    context["trigger"].update(company="Studio <Fontana>", job_title="Titolare", lead_score=66, lead_source="web_form",
                              phone="+39 333 1234567")
    task = templates.render("mql_handoff", context)
    assert task.subject == "Nuovo MQL da chiamare: Giulia Rossi (Studio <Fontana>)"
    assert "Lead score: 66/100" in task.text and "Telefono: +39 333 1234567" in task.text
    assert "dal 20/10/2026" in task.text and "giulia.rossi@example.it" in task.text
    assert context["unsubscribe_url"] not in task.text + task.html and "Studio &lt;Fontana&gt;" in task.html
    context["trigger"].update(company=None, job_title=None, phone=None, lead_source=None)
    context["customer"].update(first_name=None, last_name=None, city=None)
    bare = templates.render("mql_handoff", context)
    assert "None" not in bare.subject + bare.text + bare.html and "Provenienza: non nota" in bare.text
    assert bare.subject == "Nuovo MQL da chiamare: giulia.rossi@example.it"


@pytest.mark.parametrize("name", DEMO)
def test_demo_template_validates_and_renders(templates, name):
    context = sample_context(campaign=name, step=2)
    templates.validate(name, context)
    message = templates.render(name, context)
    assert isinstance(message, RenderedMessage)
    assert message.subject and "\n" not in message.subject and message.subject == message.subject.strip()
    parser = _html_check(message.html)
    assert context["unsubscribe_url"] in parser.hrefs
    assert context["unsubscribe_url"] in message.text
    tracked = [h for h in parser.hrefs if h != context["unsubscribe_url"]]
    assert tracked, "no tracked link"
    for href in tracked:
        query = parse_qs(urlsplit(href).query)
        assert query["utm_source"] == ["attiva"] and query["utm_campaign"] == [name], href
        assert query["utm_medium"] == ["email"] and query["utm_content"] == ["step-2"], href
    assert "utm_campaign=" + name in message.text
    assert "Giulia" in message.html and "Giulia" in message.text


@pytest.mark.parametrize("name", DEMO)
def test_demo_template_renders_without_optional_content(templates, name):
    """No coupon, no recommendations, no first name: nothing prints `None`, nothing breaks."""
    context = sample_context(campaign=name, coupon=False)
    context["recommendations"] = []
    context["customer"]["first_name"] = None
    context["customer"]["last_name"] = None
    message = templates.render(name, context)
    _html_check(message.html)
    assert "None" not in message.subject + message.html + message.text


def test_demo_templates_show_what_each_use_case_is_about(templates):
    def render(name, **changes):
        context = sample_context(campaign=name)
        context["trigger"].update(changes)
        return templates.render(name, context)

    cart = render("abandoned_cart")
    assert "Miscela Classica 250g" in cart.html and "Moka Express 3 tazze" in cart.text and "7,90 €" in cart.html
    birthday = render("birthday")
    assert "SAMPLE-7KQ2-XM9P" in birthday.html and "SAMPLE-7KQ2-XM9P" in birthday.text and "31/12/2026" in birthday.html
    cross = render("cross_sell")
    assert all(r["name"] in cross.html for r in sample_context()["recommendations"])
    promo = render("favourite_on_promotion", product_name="Kenya AA 250g", discount_pct=25.0, current_price=9.5)
    assert "Kenya AA 250g" in promo.subject and "25%" in promo.subject and "9,50 €" in promo.html
    back = render("win_back", days_since_last_order=120)
    assert "120 giorni" in back.text and "SAMPLE-7KQ2-XM9P" in back.html and "Tazzine da espresso x6" in back.html
    browse = render("browse_abandonment", viewed_product_name="Moka Viva 6 tazze")
    assert "Moka Viva 6 tazze" in browse.subject and "/p/P-0003?" in browse.html


# -- errors ---------------------------------------------------------------------------------------------


def test_unknown_variable_names_template_file_line_and_variable(folder):
    (folder / "birthday" / "body.txt.j2").write_text("Ciao {{ customer.first_name }},\n\n{{ nickname }}\n")
    with pytest.raises(TemplateError) as caught:
        Templates(folder).validate("birthday", sample_context(campaign="birthday"))
    error = caught.value
    assert error.template == "birthday" and error.file == folder / "birthday" / "body.txt.j2"
    assert error.line == 3 and error.variable == "nickname"
    assert "birthday" in str(error) and "body.txt.j2" in str(error) and "line 3" in str(error)
    assert "nickname" in str(error)


def test_unknown_attribute_names_the_attribute(folder):
    html = (folder / "win_back" / "body.html.j2").read_text()
    (folder / "win_back" / "body.html.j2").write_text(html.replace("trigger.days_since_last_order",
                                                                   "trigger.days_since_last_visit"))
    with pytest.raises(TemplateError, match=r"body\.html\.j2, line \d+: unknown attribute 'days_since_last_visit'"):
        Templates(folder).validate("win_back", sample_context(campaign="win_back"))


def test_unknown_name_in_a_shared_block_names_the_block(folder):
    block = folder / "_layout" / "recommendations.txt.j2"
    block.write_text(block.read_text().replace("item.price", "item.list_price"))
    with pytest.raises(TemplateError) as caught:
        Templates(folder).validate("cross_sell", sample_context(campaign="cross_sell"))
    assert caught.value.file == block and caught.value.variable == "list_price" and caught.value.line


def test_missing_template_or_part_is_named(folder):
    (folder / "welcome_2" / "body.txt.j2").unlink()
    with pytest.raises(TemplateError, match=r"'welcome_2' lacks body\.txt\.j2"):
        Templates(folder).validate("welcome_2", sample_context())
    with pytest.raises(TemplateError, match=r"'no_such_template' not found"):
        Templates(folder).validate("no_such_template", sample_context())
    with pytest.raises(TemplateError, match="not found"):
        Templates(folder).render("../templates", sample_context())


def test_syntax_error_is_named_with_its_line(folder):
    (folder / "welcome_1" / "subject.txt.j2").write_text("Benvenuto\n{% if customer.first_name %}\n")
    with pytest.raises(TemplateError, match=r"subject\.txt\.j2, line \d+: syntax error") as caught:
        Templates(folder).validate("welcome_1", sample_context())
    assert caught.value.line


def test_a_context_missing_a_documented_variable_is_refused(templates):
    context = sample_context()
    del context["unsubscribe_url"]
    with pytest.raises(TemplateError, match="unsubscribe_url"):
        templates.render("welcome_1", context)


def test_sandbox_keeps_templates_away_from_python_internals_and_shared_data(folder):
    context = sample_context()
    for source in ("{{ customer.__class__.__mro__ }}", "{{ recommendations.append(1) }}",
                   "{{ customer.update({'email': 'x'}) }}"):
        (folder / "welcome_1" / "body.txt.j2").write_text(source)
        with pytest.raises(TemplateError, match=r"body\.txt\.j2, line 1"):
            Templates(folder).render("welcome_1", context)
    assert len(context["recommendations"]) == 3 and context["customer"]["email"] == "giulia.rossi@example.it"


def test_each_template_is_compiled_once(folder):
    templates = Templates(folder)
    first = templates.render("welcome_1", sample_context())
    (folder / "welcome_1" / "subject.txt.j2").write_text("{{ changed }}")
    assert templates.render("welcome_1", sample_context()) == first


# -- data is shown, never run ---------------------------------------------------------------------------

HOSTILE = {
    "first_name": "{{ 7*7 }}",
    "last_name": "<script>alert('x')</script>",
    "city": "{% for i in range(3) %}loop{% endfor %}",
}


@pytest.mark.parametrize("name", ["abandoned_cart", "lead_nurture_1", "browse_abandonment"])
def test_values_from_data_are_shown_as_text(templates, name):
    context = sample_context(campaign=name)
    context["customer"].update(HOSTILE)
    context["trigger"]["viewed_product_name"] = "{% for i in range(3) %}loop{% endfor %} <script>x</script>"
    context["trigger"]["cart_products"][0]["name"] = "<b onmouseover=\"alert(1)\">{{ 7*7 }}</b>"
    message = templates.render(name, context)
    everything = message.subject + message.html + message.text
    plain = templates.render(name, sample_context(campaign=name))
    # 7*7 was not computed: no "49" beyond the sample's own prices, and the loop did not run.
    assert everything.count("49") == (plain.subject + plain.html + plain.text).count("49")
    assert "looploop" not in everything
    assert "<script>" not in message.html and "onmouseover=\"" not in message.html
    _html_check(message.html)
    if name == "lead_nurture_1":
        assert "{{ 7*7 }} &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in message.html
        assert "{{ 7*7 }} <script>alert('x')</script>" in message.text
    if name != "lead_nurture_1":
        assert "<p>Ciao {{ 7*7 }},</p>" in message.html and "Ciao {{ 7*7 }}," in message.text
    if name == "abandoned_cart":
        assert message.subject.startswith("{{ 7*7 }}, hai dimenticato")
        assert "&lt;b onmouseover=&#34;alert(1)&#34;&gt;{{ 7*7 }}&lt;/b&gt;" in message.html
        assert "<b onmouseover=\"alert(1)\">{{ 7*7 }}</b>" in message.text
    if name == "browse_abandonment":
        assert "{% for i in range(3) %}loop{% endfor %} <script>x</script>" in message.subject
        assert "{% for i in range(3) %}loop{% endfor %} &lt;script&gt;x&lt;/script&gt;" in message.html


def test_a_link_from_data_is_escaped_and_only_http_is_tracked(templates):
    context = sample_context(campaign="cross_sell")
    context["recommendations"][0]["url"] = 'https://www.emporionove.it/p/1?a=1&b="><script>x</script>'
    html = templates.render("cross_sell", context).html
    assert "<script>" not in html and "&amp;b=" in html
    context["recommendations"][0]["url"] = "javascript:alert(1)"
    with pytest.raises(TemplateError, match="http"):
        templates.render("cross_sell", context)


# -- UTM ------------------------------------------------------------------------------------------------


def test_add_utm_keeps_existing_params_and_fragment():
    url = links.add_utm("https://shop.example/p/1?color=blu&size=&utm_source=old#reviews",
                        source="attiva", medium="email", campaign="win_back", content="step-2")
    parts = urlsplit(url)
    assert parts.fragment == "reviews" and parts.path == "/p/1"
    assert parse_qsl(parts.query, keep_blank_values=True) == [
        ("color", "blu"), ("size", ""), ("utm_source", "attiva"), ("utm_medium", "email"),
        ("utm_campaign", "win_back"), ("utm_content", "step-2")]


def test_add_utm_refuses_links_that_are_not_http():
    for url in ("javascript:alert(1)", "data:text/html,x", "/relative/path"):
        with pytest.raises(ValueError, match="http"):
            links.add_utm(url, source="attiva", medium="email", campaign="c", content="step-1")


def test_track_uses_the_channel_campaign_and_step(templates):
    context = message_context(customer=sample_context()["customer"], trigger=sample_context()["trigger"],
                              campaign="welcome", step=3, unsubscribe_url="https://u.example/x", channel="esp")
    assert "utm_medium=esp&amp;utm_campaign=welcome&amp;utm_content=step-3" in templates.render("welcome_1", context).html
    plain = {k: v for k, v in context.items() if k not in ("track", "channel")}
    assert "utm_medium=email&utm_campaign=welcome&utm_content=step-3" in templates.render("welcome_1", plain).text


# -- unsubscribe ----------------------------------------------------------------------------------------


def test_unsubscribe_token_round_trip():
    for customer_id, campaign in [("C0001", "birthday"), ("cus_è/ü?&=.", "lead_nurture"), ("x" * 200, "c")]:
        token = links.unsubscribe_token(customer_id, campaign, SECRET)
        assert set(token) <= set(string.ascii_letters + string.digits + "-_.")
        assert links.verify_unsubscribe(token, SECRET) == (customer_id, campaign)
        assert SECRET not in token


def test_unsubscribe_token_tampering_is_detected():
    token = links.unsubscribe_token("C0001", "birthday", SECRET)
    version, customer, campaign, expires, signature = token.split(".")
    other = links.unsubscribe_token("C0002", "birthday", SECRET).split(".")[1]
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    later = int(expires) + 10 * 365 * 86400
    for forged in (f"{version}.{other}.{campaign}.{expires}.{signature}",
                   f"{version}.{customer}.{campaign}.{expires}.{flipped}",
                   f"{version}.{customer}.{campaign}.{later}.{signature}",  # a longer life is not signed
                   f"v1.{customer}.{campaign}.{signature}",  # nor a downgrade to the version without expiry
                   f"{version}.{customer}.{campaign}.{expires}", "",
                   "not a token", f"{token}.x", "v1.%%%.***.é"):
        assert links.verify_unsubscribe(forged, SECRET) is None, forged
    assert links.verify_unsubscribe(token, "another-secret") is None
    assert links.verify_unsubscribe(token, SECRET) == ("C0001", "birthday")


def test_unsubscribe_tokens_expire():
    import time

    sent_long_ago = links.unsubscribe_token("C0001", "birthday", SECRET, now=time.time() - links.TOKEN_LIFETIME - 60)
    assert links.verify_unsubscribe(sent_long_ago, SECRET) is None
    recent = links.unsubscribe_token("C0001", "birthday", SECRET, now=time.time() - links.TOKEN_LIFETIME + 60)
    assert links.verify_unsubscribe(recent, SECRET) == ("C0001", "birthday")


def test_without_a_real_secret_messaging_refuses_to_start_outside_the_sandbox(monkeypatch):
    from activations.messaging.send import run_pass

    monkeypatch.delenv("ATTIVA_UNSUBSCRIBE_SECRET", raising=False)
    monkeypatch.setenv("ATTIVA_UNSUBSCRIBE_BASE_URL", "https://www.emporionove.it/unsubscribe")
    with pytest.raises(links.MissingUnsubscribeSecret, match="ATTIVA_UNSUBSCRIBE_SECRET is not set") as caught:
        run_pass(None, [], {}, None, None)  # before it touches the warehouse or any channel
    assert links.DEV_UNSUBSCRIBE_SECRET not in str(caught.value)
    monkeypatch.setenv("ATTIVA_UNSUBSCRIBE_BASE_URL", "http://localhost:8766/unsubscribe")  # the sandbox: allowed
    assert links.unsubscribe_secret() == links.DEV_UNSUBSCRIBE_SECRET


def test_unsubscribe_url_carries_the_token_and_keeps_the_base_query():
    url = links.unsubscribe_url("https://attiva.example/unsubscribe?lang=it", "C0001", "win_back", SECRET)
    query = parse_qs(urlsplit(url).query)
    assert query["lang"] == ["it"] and links.verify_unsubscribe(query["token"][0], SECRET) == ("C0001", "win_back")


def test_the_secret_never_appears_in_errors(monkeypatch):
    with pytest.raises(ValueError) as caught:
        links.unsubscribe_token("", "birthday", SECRET)
    assert SECRET not in str(caught.value)
    with pytest.raises(ValueError) as caught:
        links.unsubscribe_token("C1", "birthday", "")
    assert "empty" in str(caught.value)


def test_secret_and_base_url_come_from_the_environment(monkeypatch):
    monkeypatch.delenv("ATTIVA_UNSUBSCRIBE_SECRET", raising=False)
    monkeypatch.delenv("ATTIVA_UNSUBSCRIBE_BASE_URL", raising=False)
    assert links.unsubscribe_secret() == "attiva-dev-unsubscribe-secret"
    assert links.unsubscribe_base_url() == "http://127.0.0.1:8766/unsubscribe"
    monkeypatch.setenv("ATTIVA_UNSUBSCRIBE_SECRET", SECRET)
    monkeypatch.setenv("ATTIVA_UNSUBSCRIBE_BASE_URL", "https://attiva.example/u")
    assert links.unsubscribe_secret() == SECRET and links.unsubscribe_base_url() == "https://attiva.example/u"


def test_templates_folder_comes_from_the_environment(monkeypatch, folder):
    monkeypatch.setenv("ATTIVA_TEMPLATES", str(folder))
    assert settings.templates_dir() == folder and Templates().folder == folder
    monkeypatch.delenv("ATTIVA_TEMPLATES")
    assert settings.templates_dir() == settings.project_root() / "templates"


# -- coupons --------------------------------------------------------------------------------------------

ISSUED = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        coupons.ensure_coupons(con)
        coupons.ensure_coupons(con)  # idempotent
    return path


def test_new_code_is_random_and_unambiguous():
    codes = {coupons.new_code("BDAY") for _ in range(2000)}
    assert len(codes) == 2000
    for code in codes:
        prefix, *groups = code.split("-")
        assert prefix == "BDAY" and [len(g) for g in groups] == [4, 4]
        assert not set("".join(groups)) & set("0O1I")
    assert coupons.new_code("").count("-") == 1
    with pytest.raises(ValueError):
        coupons.new_code("bad prefix")


def test_issue_is_idempotent_per_message_even_after_a_restart(warehouse):
    with duckdb.connect(str(warehouse)) as con:
        first = coupons.issue(con, "C1", "birthday", "C1:2026", 1, 15.0, ISSUED, 30)
    assert first["code"].startswith("BIRTHDAY-") and first["discount_pct"] == 15.0
    assert first["expires_at"] == ISSUED + timedelta(days=30) and first["redeemed_at"] is None
    with duckdb.connect(str(warehouse)) as con:  # a resend after a crash: a new process, the same message
        again = coupons.issue(con, "C1", "birthday", "C1:2026", 1, 20.0, ISSUED + timedelta(hours=1), 10)
        next_step = coupons.issue(con, "C1", "birthday", "C1:2026", 2, 15.0, ISSUED, 30)
        next_year = coupons.issue(con, "C1", "birthday", "C1:2027", 1, 15.0, ISSUED, 30)
        assert again == first
        assert len({first["code"], next_step["code"], next_year["code"]}) == 3
        assert con.execute("select count(*) from activation.coupons").fetchone()[0] == 3


def test_codes_are_unique_and_a_collision_draws_again(warehouse, monkeypatch):
    with duckdb.connect(str(warehouse)) as con:
        issued = [coupons.issue(con, f"C{i}", "win_back", f"k{i}", 1, 10.0, ISSUED, 14, prefix="BACK")
                  for i in range(300)]
        assert len({c["code"] for c in issued}) == 300
        taken = issued[0]["code"]
        draws = iter([taken, taken, "BACK-ZZZZ-ZZZZ"])
        monkeypatch.setattr(coupons, "new_code", lambda prefix: next(draws))
        fresh = coupons.issue(con, "C999", "win_back", "k999", 1, 10.0, ISSUED, 14, prefix="BACK")
        assert fresh["code"] == "BACK-ZZZZ-ZZZZ" and fresh["customer_id"] == "C999"
        assert con.execute("select count(*) from activation.coupons where code = ?", [taken]).fetchone()[0] == 1
        monkeypatch.setattr(coupons, "new_code", lambda prefix: taken)
        with pytest.raises(RuntimeError, match="unused coupon code"):
            coupons.issue(con, "C1000", "win_back", "k1000", 1, 10.0, ISSUED, 14)


def test_redeem_is_single_use_and_respects_expiry(warehouse):
    with duckdb.connect(str(warehouse)) as con:
        coupon = coupons.issue(con, "C1", "birthday", "C1:2026", 1, 15.0, ISSUED, 30)
        expiring = coupons.issue(con, "C2", "birthday", "C2:2026", 1, 15.0, ISSUED, 1)
        at = ISSUED + timedelta(days=3)
        assert coupons.redeem(con, coupon["code"].lower(), at) is True
        assert coupons.redeem(con, coupon["code"], at + timedelta(hours=1)) is False
        assert coupons.redeem(con, expiring["code"], at) is False
        assert coupons.redeem(con, "BIRTHDAY-NONE-NONE", at) is False
        assert coupons.issue(con, "C1", "birthday", "C1:2026", 1, 15.0, ISSUED, 30)["redeemed_at"] == at
