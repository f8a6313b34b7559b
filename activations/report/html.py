"""The report as one self-contained HTML page: inline CSS, inline SVG (svg.py), no script.

Sections (their ids are what tests look for): campaigns, uplift, variants, audiences, funnel,
listening, social, predictions, sync-health. A section without data says so in words instead of drawing an empty chart, and so
does one whose numbers are still too small to estimate anything (no chart of zeros).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from html import escape
from typing import Any

from activations.report import svg
from activations.report.data import ReportData
from activations.report.intervals import rate_difference

SECTIONS = ("campaigns", "uplift", "variants", "audiences", "funnel", "listening", "social", "predictions",
            "sync-health")

CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2733; background: #f6f7f9;
       margin: 0; line-height: 1.45; }
main { max-width: 1240px; margin: 0 auto; padding: 20px 24px 60px; }
header h1 { margin: 0 0 4px; font-size: 26px; }
header p { margin: 0; color: #5b6673; }
nav { margin: 14px 0 4px; display: flex; gap: 16px; flex-wrap: wrap; }
nav a { color: #2f6fb0; text-decoration: none; font-weight: 500; }
section { background: #fff; border: 1px solid #e1e5ea; border-radius: 10px; padding: 18px 22px; margin-top: 22px; }
section h2 { margin: 0 0 6px; font-size: 20px; }
.lede { color: #5b6673; margin: 0 0 14px; max-width: 80ch; }
.tiles { display: flex; gap: 14px; flex-wrap: wrap; margin-top: 18px; }
.tile { background: #fff; border: 1px solid #e1e5ea; border-radius: 10px; padding: 12px 16px; flex: 1 1 120px;
        min-width: 0; }
.tile b { display: block; font-size: 22px; }
.tile span { color: #5b6673; font-size: 13px; }
table { border-collapse: collapse; width: 100%; font-size: 13px; margin-top: 12px; }
th, td { padding: 5px 7px; border-bottom: 1px solid #edf0f3; text-align: right; white-space: nowrap; }
th { background: #f1f4f7; color: #3b4754; font-weight: 600; position: sticky; top: 0; }
th:first-child, td:first-child, td.text, th.text { text-align: left; }
.scroll { overflow-x: auto; }
.empty { background: #fbf7e9; border: 1px dashed #d9c98f; border-radius: 8px; padding: 14px 16px; color: #6b5a1e; }
.muted { color: #8793a0; }
.good { color: #23834a; font-weight: 600; }
.bad { color: #b03a2e; font-weight: 600; }
svg.chart { display: block; max-width: min(100%, 940px); height: auto; margin: 10px auto 0; background: #fff; }
footer { color: #8793a0; font-size: 12px; margin-top: 28px; }
"""


def pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f}%"


def points(value: float | None) -> str:
    """A difference of two rates, in percentage points."""
    if value is None:
        return "–"
    return "0 pp" if abs(value) < 5e-7 else f"{value * 100:+.1f} pp"


def euro(value: float | None) -> str:
    return "–" if value is None else f"€{value:,.2f}"


def signed_euro(value: float | None) -> str:
    if value is None:
        return "–"
    return "€0" if abs(value) < 0.005 else f"{'+' if value > 0 else '−'}€{abs(value):,.2f}"


def count(value: Any) -> str:
    return "–" if value is None else f"{int(value):,}"


def _empty(message: str) -> str:
    return f'<p class="empty">No data yet: {escape(message)}</p>'


def _not_yet(message: str) -> str:
    """There is data, but too little to estimate anything: said in words, not drawn as a chart of zeros."""
    return f'<p class="empty">Not enough data yet: {escape(message)}</p>'


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], text_columns: int | Sequence[int] = 1) -> str:
    """Cells are already-escaped HTML; `text_columns` (the first n, or their positions) are left-aligned."""
    text = set(range(text_columns)) if isinstance(text_columns, int) else set(text_columns)
    head = "".join(f'<th class="text">{escape(h)}</th>' if i in text else f"<th>{escape(h)}</th>"
                   for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f'<td class="text">{c}</td>' if i in text else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _section(anchor: str, title: str, lede: str, body: str) -> str:
    return (f'<section id="{anchor}"><h2>{escape(title)}</h2><p class="lede">{escape(lede)}</p>{body}</section>')


# -- sections --------------------------------------------------------------------------------------


def campaigns_section(data: ReportData) -> str:
    lede = ("Every triggered campaign, step and variant: what went out, what recipients did, and the orders that "
            "followed (UTM, the message's coupon, else the last message within the attribution window). Engagement "
            "rates are over delivered messages; conversion and revenue over sent ones.")
    if not data.campaigns:
        return _section("campaigns", "Campaigns", lede, _empty("no triggered message has been sent or held out."))
    rows = [[escape(r["campaign"]), count(r["step"]), escape(r["variant"] or ""), count(r["sent"]),
             count(r["held_out"]), count(r["delivered"]), count(r.get("bounced")), pct(r["open_rate"]),
             pct(r["click_rate"]), pct(r["unsubscribe_rate"], 2), pct(r["conversion_rate"]), euro(r["revenue"]),
             euro(r["revenue_per_recipient"])] for r in data.campaigns]
    table = _table(["Campaign", "Step", "Variant", "Sent", "Held out", "Delivered", "Bounced", "Open rate",
                    "Click rate", "Unsubscribe rate", "Conversion rate", "Revenue", "Revenue / recipient"], rows,
                   text_columns=(0, 2))
    chart_rows = [(_campaign_label(data, r), _engagement(r)) for r in data.campaigns if r["sent"]]
    chart = svg.stacked_bar_chart(
        "What recipients did, per campaign step", chart_rows, ENGAGEMENT_SEGMENTS,
        x_label="Messages sent", y_label="Campaign · step", fmt=lambda v: f"{v:,.0f}",
    ) if chart_rows else '<p class="muted">Only held-out customers so far: nothing sent to chart.</p>'
    converted = sum(int(r["converted"] or 0) for r in data.campaigns)
    note = "" if converted else (
        '<p class="muted">No order has followed a message yet: orders come in after the messages, within the '
        "attribution window, and show here as they are loaded.</p>")
    return _section("campaigns", "Campaigns", lede, chart + note + table + _journeys(data))


SKIPPED_FOR = (("skipped_opened", "opened"), ("skipped_clicked", "clicked"), ("skipped_bought", "bought"),
               ("skipped_stopped", "replied STOP"), ("skipped_in_audience", "in the audience"),
               ("skipped_timed_out", "waited in vain"))


def _journeys(data: ReportData) -> str:
    """The path customers took through each journey (measurement.journey_steps): per step, sent, skipped and why."""
    if not data.journeys:
        return ""
    rows = [[escape(r["campaign"]), count(r["step"]), escape(r["channel"] or ""), count(r["reached"]),
             count(r["sent"]), count(r["skipped"]),
             escape(", ".join(f"{r[k]:,} {label}" for k, label in SKIPPED_FOR if r[k])) or "–",
             count(r["suppressed"]), count(r["waiting"]), pct(r["share_sent"])] for r in data.journeys]
    return ("<h3>The path customers took through each journey</h3>"
            '<p class="muted">A step is skipped when the branch its policy declares is not taken (unless the '
            "customer opened, clicked, bought, replied STOP or is in an audience; or a step that waits for one of "
            "those waited in vain); a skipped step's reason may name several.</p>"
            + _table(["Campaign", "Step", "Channel", "Reached", "Sent", "Skipped", "Skipped because",
                      "Suppressed", "Waiting", "Share sent"], rows, text_columns=(0, 2, 6)))


# Stacking order: the further a recipient went, the further left.
ENGAGEMENT_SEGMENTS = (("clicked", svg.PALETTE[2]), ("opened, no click", svg.PALETTE[0]),
                       ("delivered, not opened", "#9ec5e8"), ("bounced", svg.PALETTE[3]),
                       ("no report yet", "#d5d9de"))


def _engagement(row: dict[str, Any]) -> dict[str, float]:
    sent, delivered, opened, clicked = (int(row[k] or 0) for k in ("sent", "delivered", "opened", "clicked"))
    bounced = int(row.get("bounced") or 0)
    return {"clicked": clicked, "opened, no click": max(opened - clicked, 0),
            "delivered, not opened": max(delivered - opened, 0), "bounced": bounced,
            "no report yet": max(sent - delivered - bounced, 0)}


def _campaign_label(data: ReportData, row: dict[str, Any]) -> str:
    label = f"{row['campaign']} · {row['step']}"
    if _has_variants(data, row):
        label += f" · {_variant_name(row['campaign'], row['variant'])}"
    return _fit(label)


def _variant_name(campaign: str, variant: str | None) -> str:
    """A variant by what tells it apart: `favourite_on_promotion_b` of `favourite_on_promotion` is `b`."""
    variant = variant or ""
    rest = variant[len(campaign):].strip("_") if variant.startswith(campaign) else variant
    return rest or "a"


def _fit(label: str, width: int = 34) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def _has_variants(data: ReportData, row: dict[str, Any]) -> bool:
    return sum(1 for r in data.campaigns if r["campaign"] == row["campaign"] and r["step"] == row["step"]) > 1


def uplift_verdict(low: float | None, high: float | None, too_small: bool, holdout: int, waiting: int = 0) -> str:
    """What a campaign's uplift interval says, in words (HTML): better, worse, no clear difference, or why
    there is no answer yet."""
    if not holdout and waiting:
        return '<span class="muted">waiting for the attribution window to close</span>'
    if not holdout:
        return '<span class="muted">no holdout</span>'
    if too_small:
        return '<span class="muted">too small to say</span>'
    if low is None or high is None:
        return '<span class="muted">no estimate</span>'
    if low > 0:
        return '<span class="good">better than doing nothing</span>'
    if high < 0:
        return '<span class="bad">worse than doing nothing</span>'
    return "no clear difference"


def uplift_section(data: ReportData) -> str:
    lede = ("Customers a campaign was meant for (treated, including those whose message a send-time check such as "
            "consent or a frequency cap then stopped) against its holdout (customers deliberately not sent it): the "
            "share who ordered and the revenue per customer within the attribution window. Bars are 95 % "
            "intervals; an interval that crosses zero means the campaign may have made no difference. Grey rows are "
            "too small to say anything yet. A customer counts once their attribution window has closed; "
            "Waiting are those messaged (or held out) too recently to tell.")
    if not data.uplift:
        return _section("uplift", "Uplift against the holdout", lede,
                        _empty("no campaign has both sent and held-out customers."))
    # Campaigns without a holdout (or without anyone treated) have no estimate: table only. Nor is anything
    # charted while every campaign is too small to say: a chart of zeros would look like an answer.
    estimated = [r for r in data.uplift if r["conversion_uplift"] is not None]
    if estimated and not all(r["too_small_to_say"] for r in estimated):
        conversion = svg.interval_chart(
            "Conversion uplift (treated minus holdout)",
            [(r["campaign"], float(r["conversion_uplift"]), r["conversion_uplift_ci_low"],
              r["conversion_uplift_ci_high"], bool(r["too_small_to_say"])) for r in estimated],
            x_label="Difference in conversion rate (percentage points), 95 % interval", y_label="Campaign",
            fmt=points)
        revenue = svg.interval_chart(
            "Revenue uplift per customer (treated minus holdout)",
            [(r["campaign"], float(r["revenue_uplift"] or 0), r["revenue_uplift_ci_low"],
              r["revenue_uplift_ci_high"], bool(r["too_small_to_say"])) for r in estimated],
            x_label="Difference in revenue per customer (EUR), 95 % interval", y_label="Campaign", fmt=signed_euro)
    elif not estimated and any(r.get("customers_waiting") for r in data.uplift):
        conversion, revenue = _not_yet(
            "every customer messaged (or held out) so far is still within the attribution window: the uplift is "
            "measured once their window closes (Waiting below)."), ""
    elif estimated:
        conversion, revenue = _not_yet(
            "too small to say for every campaign so far: it takes at least 30 customers in each group and 10 "
            "orders in all within the attribution window (the table shows the counts so far)."), ""
    else:
        conversion, revenue = _empty("no campaign has both customers sent it and customers held out."), ""
    rows = [[escape(r["campaign"]), count(r["treated_customers"]), count(r["holdout_customers"]),
             count(r.get("customers_waiting") or 0), pct(r["treated_conversion_rate"]), pct(r["holdout_conversion_rate"]), points(r["conversion_uplift"]),
             f"{points(r['conversion_uplift_ci_low'])} to {points(r['conversion_uplift_ci_high'])}",
             pct(r["conversion_uplift_relative"], 0), signed_euro(r["revenue_uplift"]),
             f"{signed_euro(r['revenue_uplift_ci_low'])} to {signed_euro(r['revenue_uplift_ci_high'])}",
             uplift_verdict(r["conversion_uplift_ci_low"], r["conversion_uplift_ci_high"], bool(r["too_small_to_say"]),
                      int(r["holdout_customers"] or 0), int(r.get("customers_waiting") or 0))]
            for r in data.uplift]
    table = _table(["Campaign", "Treated", "Holdout", "Waiting", "Treated conv.", "Holdout conv.", "Uplift", "95 % interval",
                    "Relative", "Revenue / customer", "95 % interval", "Verdict"], rows)
    return _section("uplift", "Uplift against the holdout", lede, conversion + revenue + table)


def variants_section(data: ReportData) -> str:
    lede = ("A/B tests: where a campaign step sends two or more variants (another subject line, another layout), "
            "each customer gets one of them by chance, so the variants can be compared: each against the others, "
            "open and click rates of delivered messages and conversion of sent ones. Bars are 95 % intervals.")
    if not data.variants:
        return _section("variants", "A/B tests", lede,
                        _empty("no campaign step has sent two variants (a step lists several templates)."))
    charted = [r for r in data.variants if r["open_rate_difference_ci_low"] is not None]
    label = {id(r): _fit(f"{r['campaign']} · {r['step']} · {_variant_name(r['campaign'], r['variant'])}")
             for r in data.variants}
    chart = svg.interval_chart(
        "Open rate, each variant minus the others",
        [(label[id(r)], float(r["open_rate_difference"]), r["open_rate_difference_ci_low"],
          r["open_rate_difference_ci_high"], bool(r["too_small_to_say"])) for r in charted],
        x_label="Difference in open rate (percentage points), 95 % interval", y_label="Variant",
        fmt=points) if charted else _not_yet("too few opens so far to compare the variants (10 in all at least).")
    rows = [[escape(r["campaign"]), count(r["step"]), escape(r["variant"] or ""), count(r["sent"]),
             count(r["delivered"]), pct(r["open_rate"]), _interval(r, "open_rate_difference"), pct(r["click_rate"]),
             _interval(r, "click_rate_difference"), pct(r["conversion_rate"]), _interval(r, "conversion_rate_difference"),
             _ab_verdict(r)] for r in data.variants]
    table = _table(["Campaign", "Step", "Variant", "Sent", "Delivered", "Open rate", "vs the others", "Click rate",
                    "vs the others", "Conversion", "vs the others", "Verdict"], rows, text_columns=(0, 2))
    return _section("variants", "A/B tests", lede, chart + table)


def _interval(row: dict[str, Any], name: str) -> str:
    low, high = row[f"{name}_ci_low"], row[f"{name}_ci_high"]
    middle = points(row[name])
    return middle if low is None or high is None else f"{middle} ({points(low)} to {points(high)})"


def _ab_verdict(row: dict[str, Any]) -> str:
    if row["too_small_to_say"]:
        return '<span class="muted">too small to say</span>'
    for name, what in (("conversion_rate_difference", "converts"), ("open_rate_difference", "opened"),
                       ("click_rate_difference", "clicked")):
        low, high = row[f"{name}_ci_low"], row[f"{name}_ci_high"]
        if low is not None and low > 0:
            return f'<span class="good">{what} more</span>'
        if high is not None and high < 0:
            return f'<span class="bad">{what} less</span>'
    return "no clear difference"


def audiences_section(data: ReportData) -> str:
    lede = "How many people each audience held when it was synced to its destination, the last run of each day."
    if not data.audience_sizes:
        return _section("audiences", "Audience sizes over time", lede, _empty("no sync has run yet."))
    series: dict[str, list[tuple[date, float]]] = {}
    for r in data.audience_sizes:
        series.setdefault(f"{r['sync_name']} ({r['destination']})", []).append((r["day"], float(r["audience_rows"])))
    days = {r["day"] for r in data.audience_sizes}
    if len(days) == 1:  # the first day of syncing: no line yet, a bar per sync
        chart = svg.bar_chart(f"Audience size per sync and destination on {min(days):%d %b %Y}", [
            (_fit(name.split(" (")[0], 28), values[-1][1], f"({name.rsplit('(', 1)[1]}") for name, values in
            series.items()], x_label="People in the audience", y_label="Sync", fmt=_short_count)
        note = '<p class="muted">One day of sync runs so far: the next days draw the line over time.</p>'
        return _section("audiences", "Audience sizes over time", lede, chart + note)
    chart = svg.line_chart("Audience size per sync and destination", series, x_label="Day of the sync run",
                           y_label="People in the audience", fmt=_short_count, whole=True)
    return _section("audiences", "Audience sizes over time", lede, chart)


def _short_count(value: float) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if abs(value) >= 10_000:
        return f"{value / 1_000:.0f}k"
    return f"{value:,.0f}"


def funnel_section(data: ReportData) -> str:
    lede = ("Leads from the CRM and forms, and how many went on to become marketing-qualified (MQL), sales-qualified "
            "(SQL) and customers. A stage counts only when it was dated (for customers, the CRM's date or a first "
            "order); people who reached a later stage without passing through an earlier one are counted as skipped, "
            "not in the stage they skipped. A rate is the share of the earlier stage's people who went on.")
    if not data.funnel_totals:
        return _section("funnel", "Lead funnel", lede, _empty("no leads in the warehouse."))
    bars = []
    previous = None
    for row in data.funnel_totals:
        went_on = row["came_from_previous"]
        note = "" if previous is None else f"({pct(went_on / previous if previous else None)} of previous went on)"
        bars.append((row["stage"], float(row["people"]), note))
        previous = row["people"]
    chart = svg.bar_chart("Lead funnel, every source and month", bars, x_label="People", y_label="Stage",
                          fmt=_short_count)
    rows = [[escape(r["lead_source"]), count(r["leads"]), count(r["mqls"]), count(r["sqls"]), count(r["customers"]),
             "–" if r["skipped"] is None else count(r["skipped"]),
             pct(r["mqls"] / r["leads"] if r["leads"] else None),
             pct(r["mqls_reaching_sql"] / r["mqls"] if r["mqls"] else None),
             pct(r["sqls_reaching_customer"] / r["sqls"] if r["sqls"] else None), _days(r["days_to_mql"]),
             _days(r["days_to_sql"]), _days(r["days_to_customer"])] for r in data.funnel]
    table = _table(["Lead source", "Leads", "MQL", "SQL", "Customers", "Skipped a stage", "Lead → MQL", "MQL → SQL",
                    "SQL → customer", "Days to MQL", "Days MQL → SQL", "Days SQL → customer"], rows)
    return _section("funnel", "Lead funnel", lede, chart + table)


def listening_section(data: ReportData) -> str:
    lede = ("Mentions of the brand on the web (news, blogs, social posts and reviews of listening.yml's feeds and "
            "exports), each counted once, per week: how many, its share of voice (its mentions over those of the brand "
            "and the competitors in listening.yml) and how they feel (average sentiment from −1 to +1, and the shares "
            "positive and negative of the Italian and English ones). Sentiment is read by a lexicon: "
            "docs/listening.md has its measured accuracy.")
    own = [r for r in data.listening if r["is_own_brand"]]
    if not own:
        return _section("listening", "Brand and listening", lede, _empty("no mention of the brand yet."))
    brand = own[0]["brand"]
    series: dict[str, list[tuple[date, float]]] = {}
    for r in data.listening:
        series.setdefault(r["brand"], []).append((r["week_start"], float(r["share_of_voice"])))
    sentiment = {f"{brand}: average sentiment": [(r["week_start"], float(r["avg_sentiment"]))
                                                for r in own if r["avg_sentiment"] is not None]}
    charts = svg.line_chart("Share of voice per week", series, x_label="Week", y_label="Share of mentions",
                            fmt=lambda v: pct(v, 0))
    if sentiment[f"{brand}: average sentiment"]:
        charts += svg.line_chart(f"Sentiment of {brand}'s mentions per week", sentiment, x_label="Week",
                                 y_label="Average sentiment", fmt=lambda v: f"{v:+.2f}")
    rows = [[f"{r['week_start']:%d %b %Y}", count(r["mentions"]), pct(r["share_of_voice"]),
             "–" if r["avg_sentiment"] is None else f"{r['avg_sentiment']:+.2f}", pct(r["share_positive"]),
             pct(r["share_negative"])] for r in reversed(own[-8:])]
    table = _table([f"Week ({brand})", "Mentions", "Share of voice", "Average sentiment", "Positive", "Negative"],
                   rows)
    return _section("listening", "Brand and listening", lede, charts + table)


SOCIAL_KINDS = ("reaction", "comment", "share", "follow", "message", "mention")


def social_section(data: ReportData) -> str:
    lede = ("Interactions with the brand's pages and accounts on Facebook, Instagram and LinkedIn, per week: reactions, "
            "comments, shares, follows, direct messages and mentions, each counted once and without those taken back. "
            "\"From customers\" counts the interactions of handles that are known customers: a handle is linked once "
            "its owner shared an email or phone in a direct message; the rest is anonymous brand engagement "
            "(docs/social.md).")
    if not data.social:
        return _section("social", "Social engagement", lede, _empty("no social interaction landed yet."))
    weeks: dict[date, dict[str, int]] = {}
    from_customers: dict[date, int] = {}
    for r in data.social:
        weeks.setdefault(r["week_start"], {})[r["kind"]] = int(r["interactions"])
        from_customers[r["week_start"]] = from_customers.get(r["week_start"], 0) + int(r["interactions_by_customers"])
    kinds = [k for k in SOCIAL_KINDS if any(k in w for w in weeks.values())]
    series = {kind: [(week, float(w.get(kind, 0))) for week, w in weeks.items()] for kind in kinds}
    chart = svg.line_chart("Social interactions per week, by kind", series, x_label="Week", y_label="Interactions",
                           fmt=_short_count, whole=True)
    rows = []
    for week in list(weeks)[-8:][::-1]:
        total = sum(weeks[week].values())
        rows.append([f"{week:%d %b %Y}", count(total), *(count(weeks[week].get(k, 0)) for k in kinds),
                     pct(from_customers[week] / total if total else None)])
    table = _table(["Week", "Interactions", *(f"{k.capitalize()}s" for k in kinds), "From customers"], rows)
    return _section("social", "Social engagement", lede, chart + table)


def _days(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def predictions_section(data: ReportData) -> str:
    lede = ("What the system learned this week. The churn, purchase and lead-conversion models (docs/propensity.md): "
            "how well each ranked customers on days it never saw (AUC: 0.5 is chance, 1 perfect) against the "
            "rule-based score on the same customers, and whether it was published. Customer lifetime value "
            "(docs/predictive-traits.md): how close the model came on a held-out 90 days, and what it expects "
            "buyers to be worth over the next year. A model that fails its check keeps the last published scores. "
            "Then what campaigns learned on their own: how each A/B step shared its messages between variants day "
            "by day (a bandit moves towards the variant that earns more), and the open rate of mail sent at each "
            "customer's best hour.")
    learned = allocations_part(data) + send_time_part(data)
    if not data.propensity_models and not data.clv_model:
        return _section("predictions", "What the system learned", lede,
                        _empty("no model has been trained yet.") + learned)
    parts = []
    if not any(r["published_at"] for r in [*data.propensity_models, *data.clv_model]):
        parts.append(_not_yet("no model has passed its check yet; each training's reason is below."))

    def auc(value: float | None) -> str:
        return "–" if value is None else f"{value:.3f}"

    judged = [r for r in data.propensity_models if r["auc"] is not None]
    if judged:
        parts.append(svg.bar_chart(
            "Holdout AUC of each model, against its rule-based score",
            [(label, float(value), note) for r in judged
             for label, value, note in ((r["model"], r["auc"], "model"), (f"{r['model']} (rule)", r["rule_auc"] or 0,
                                                                            r["rule"] or "rule"))],
            x_label="AUC on customers the model never saw (0.5 = chance)", y_label="Model", fmt=lambda v: f"{v:.2f}"))
    if data.propensity_models:
        rows = [[escape(r["model"]), escape(f"{r['trained_at']:%Y-%m-%d}"), count(r["holdout_rows"]), auc(r["auc"]),
                 auc(r["rule_auc"]), escape(r["rule"] or ""), "–" if r["brier"] is None else f"{r['brier']:.3f}",
                 "yes" if r["published"] else "no", escape(r["reason"] or ""),
                 escape(f"{r['published_at']:%Y-%m-%d}") if r["published_at"] else "never"]
                for r in data.propensity_models]
        parts.append(_table(["Model", "Trained", "Holdout customers", "AUC", "Rule AUC", "Rule", "Brier", "Published",
                             "Why", "Scores from"], rows, text_columns=(0, 1, 5, 7, 8, 9)))
    if data.clv_values:
        parts.append(svg.bar_chart(
            "Buyers by predicted value over the next 365 days (lifetime value model)",
            [(r["band"], float(r["buyers"]), "") for r in data.clv_values],
            x_label="Buyers", y_label="Predicted value", fmt=_short_count))
    for r in data.clv_model:
        def num(value: float | None, digits: int = 3) -> str:
            return "–" if value is None else f"{value:.{digits}f}"

        parts.append(_table(
            ["Lifetime value", "Trained", "Buyers", "Repeat buyers", "Holdout predicted", "Holdout actual", "Error",
             "r, α, a, b", "Why", "Scores from"],
            [[escape(r["status"]), escape(f"{r['trained_at']:%Y-%m-%d}"), count(r["customers"]),
              count(r["repeat_buyers"]), num(r["holdout_predicted"], 0), num(r["holdout_actual"], 0),
              pct(r["holdout_error"]), ", ".join(num(r[k]) for k in ("r", "alpha", "a", "b")), escape(r["reason"] or ""),
              escape(f"{r['published_at']:%Y-%m-%d}") if r["published_at"] else "never"]],
            text_columns=(0, 1, 7, 8, 9)))
    return _section("predictions", "What the system learned", lede, "".join(parts) + learned)


def allocations_part(data: ReportData) -> str:
    """Each A/B step's share of messages per variant, per day it planned: a bandit's shares move towards the
    variant that earns more; an even split's stay put."""
    steps: dict[tuple[str, int], dict[date, dict[str, int]]] = {}
    for r in data.allocations:
        steps.setdefault((r["campaign"], r["step"]), {}).setdefault(r["day"], {})[r["variant"]] = int(r["messages"])
    steps = {k: v for k, v in steps.items() if len({name for day in v.values() for name in day}) > 1}
    if not steps:
        return ""
    parts = ["<h3>Allocations over time</h3>"]
    for (campaign, step), days in sorted(steps.items()):
        variants = sorted({name for day in days.values() for name in day})
        series = {_variant_name(campaign, v): [(day, 100 * counts.get(v, 0) / sum(counts.values()))
                                               for day, counts in sorted(days.items())] for v in variants}
        if len(days) > 1:
            parts.append(svg.line_chart(f"{campaign} · step {step}: share of messages per variant", series,
                                        x_label="Day planned", y_label="Share of the step's messages (%)",
                                        fmt=lambda v: f"{v:.0f}%"))
        rows = [[escape(f"{day:%Y-%m-%d}"), *(pct(counts.get(v, 0) / sum(counts.values())) for v in variants),
                 count(sum(counts.values()))] for day, counts in sorted(days.items())]
        parts.append(_table(["Day", *(_variant_name(campaign, v) for v in variants), "Messages"], rows,
                            text_columns=(0,)))
    return "".join(parts)


def send_time_part(data: ReportData) -> str:
    """Open rate of delivered mail by what chose its hour, then, for campaigns with a control group, the effect of
    the hour itself: the group sent as soon as due against the rest, with its 95 % interval."""
    timed = [r for r in data.send_times if r["delivered"]]
    if not any(r["timed_by"] != "as_soon_as_due" for r in timed):
        return ""
    labels = {"as_soon_as_due": "as soon as due", "best_hour": "the customer's best hour",
              "segment_hour": "their segment's best hour", "control": "as soon as due (control group)"}
    rows = [[escape(labels.get(r["timed_by"], r["timed_by"])), count(r["delivered"]), count(r["opened"]),
             pct(r["opened"] / r["delivered"])] for r in timed]
    return ("<h3>Send-time optimization</h3>"
            + _table(["Sent at", "Delivered", "Opened", "Open rate"], rows, text_columns=(0,))
            + '<p class="muted">Customers with a best hour have an engagement history, those without do not: the '
              "rows above are not the effect of the hour alone. The control group's are.</p>"
            + _send_time_tests(data.send_time_tests))


def _send_time_tests(tests: list[dict]) -> str:
    """Per campaign with `send_time_control`: open rate of the control group and of the rest, the difference and
    its interval (Newcombe's, as the uplift's)."""
    by_campaign: dict[str, dict[bool, dict]] = {}
    for r in tests:
        if r["delivered"]:
            by_campaign.setdefault(r["campaign"], {})[bool(r["control"])] = r
    rows = []
    for campaign, groups in sorted(by_campaign.items()):
        if set(groups) != {True, False}:
            continue
        control, timed = groups[True], groups[False]
        lift, low, high = rate_difference(timed["opened"], timed["delivered"], control["opened"], control["delivered"])
        rows.append([escape(campaign), f"{pct(control['opened'] / control['delivered'])} of {count(control['delivered'])}",
                     f"{pct(timed['opened'] / timed['delivered'])} of {count(timed['delivered'])}",
                     f"{lift * 100:+.1f} pt", f"{low * 100:+.1f} to {high * 100:+.1f} pt"])
    if not rows:
        return ""
    return ("<h4>What the best hour adds (randomized)</h4>"
            + _table(["Campaign", "Control: as soon as due", "At the best hour", "Open rate lift", "95 % interval"],
                     rows, text_columns=(0,))
            + '<p class="muted">The control group is a random share of each campaign\'s customers '
              "(send_time_control), sent as soon as due: the difference is the effect of sending at the best hour.</p>")


def sync_health_section(data: ReportData) -> str:
    lede = ("The last run of each sync: rows the destination confirmed, rejected, or that were set aside as invalid "
            "(bad identifiers) before sending; then what the destination itself reported, where it does: rows it "
            "received and found invalid (Meta), and the share of people it matched to its users (Google's match "
            "rate, as the range it gives).")
    if not data.sync_health:
        return _section("sync-health", "Sync health", lede, _empty("no sync has run yet."))
    segments = [("confirmed", svg.PALETTE[2]), ("rejected", svg.PALETTE[3]), ("invalid", svg.PALETTE[1])]
    chart_rows = [(_fit(r["sync_name"]), {s: float(r[s] or 0) for s, _ in segments}) for r in data.sync_health
                  if any(r[s] for s, _ in segments)]
    chart = svg.stacked_bar_chart("Last run per sync: confirmed, rejected and invalid rows", chart_rows, segments,
                                  x_label="Rows in the run", y_label="Sync", fmt=_short_count) if chart_rows else ""
    rows = [[escape(r["sync_name"]), escape(r["destination"] or ""), escape(r["status"] or ""),
             escape(f"{r['started_at']:%Y-%m-%d %H:%M}" if isinstance(r["started_at"], datetime) else ""),
             count(r["audience_rows"]), count(r["planned"]), count(r["sent"]), count(r["confirmed"]),
             count(r["rejected"]), count(r["invalid"]), pct(r["confirmed_rate"]), count(r.get("reported_received")),
             count(r.get("reported_invalid")), _match_range(r)]
            for r in data.sync_health]
    table = _table(["Sync", "Destination", "Status", "Last run (UTC)", "Audience", "Planned", "Sent", "Confirmed",
                    "Rejected", "Invalid", "Confirmed rate", "Received (reported)", "Invalid (reported)",
                    "Match rate"], rows, text_columns=4)
    note = "" if chart_rows else '<p class="muted">The last runs had nothing to send (audiences unchanged).</p>'
    matched = [r for r in data.sync_health if r.get("match_rate_low") is not None]
    match_chart = svg.interval_chart(
        "Match rate reported by the destination (last run)",
        [(_fit(r["sync_name"]), float(r["match_rate"]), r["match_rate_low"], r["match_rate_high"], False)
         for r in matched],
        x_label="Share of uploaded people the destination matched to its users (its range)", y_label="Sync",
        fmt=lambda v: pct(v, 0)) if matched else ""
    return _section("sync-health", "Sync health", lede, chart + note + match_chart + table)


def _match_range(row: dict[str, Any]) -> str:
    low, high = row.get("match_rate_low"), row.get("match_rate_high")
    return "–" if low is None or high is None else f"{pct(low, 0)}–{pct(high, 0)}"



def _tiles(data: ReportData) -> str:
    sent = sum(int(r["sent"] or 0) for r in data.campaigns)
    held = sum(int(r["held_out"] or 0) for r in data.campaigns)
    revenue = sum(float(r["revenue"] or 0) for r in data.campaigns)
    tiles = [(count(sent), "messages sent"), (count(held), "held out"), (euro(revenue), "revenue attributed"),
             (count(len({r["campaign"] for r in data.campaigns})), "campaigns"),
             (count(len(data.sync_health)), "syncs"), (count(data.sync_runs), "sync runs")]
    return '<div class="tiles">' + "".join(f'<div class="tile"><b>{v}</b><span>{escape(k)}</span></div>'
                                           for v, k in tiles) + "</div>"


BUILDERS: tuple[tuple[str, Callable[[ReportData], str]], ...] = (
    ("Campaigns", campaigns_section), ("Uplift", uplift_section), ("A/B tests", variants_section),
    ("Audiences", audiences_section), ("Lead funnel", funnel_section), ("Brand and listening", listening_section),
    ("Social engagement", social_section), ("Predicted scores", predictions_section),
    ("Sync health", sync_health_section))


def render(data: ReportData, *, title: str = "Attiva — marketing report") -> str:
    """The whole page."""
    generated = data.generated_at.strftime("%Y-%m-%d %H:%M UTC") if data.generated_at else "now"
    nav = "".join(f'<a href="#{anchor}">{escape(name)}</a>' for anchor, (name, _) in zip(SECTIONS, BUILDERS,
                                                                                        strict=True))
    missing = (f'<p class="muted">Not built yet in this warehouse: {escape(", ".join(data.missing))} '
               f"(run `attiva build`).</p>") if data.missing else ""
    body = "\n".join(build(data) for _, build in BUILDERS)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{CSS}</style>
</head>
<body>
<main>
<header><h1>{escape(title)}</h1><p>Data as of {escape(generated)}. Everything below is computed in the warehouse
(dbt models in <code>measurement</code>).</p>
<nav>{nav}</nav>{missing}</header>
{_tiles(data)}
{body}
<footer>Generated by <code>attiva report</code>. Self-contained: no scripts, no network.</footer>
</main>
</body>
</html>
"""
