"""The landing contract: which files Attiva reads, and what each must contain.

This is a public contract: users point their own exports at it, the generator
writes it, ingestion enforces it and docs/landing.md documents it (generated from
this module by `attiva contract`). One source = one folder under the landing
root = one raw table in the warehouse (schema `raw`).
"""

from __future__ import annotations

from dataclasses import dataclass

FORMATS = ("csv", "jsonl", "parquet")


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # SQL type the value must cast to: string, bigint, double, boolean, date, timestamp
    required: bool = False
    description: str = ""
    values: tuple[str, ...] = ()  # the accepted values (text columns); anything else is quarantined
    pattern: tuple[str, str] | None = None  # (regular expression the whole value matches, what it means)
    case: str | None = None  # "lower" or "upper": the value is case-insensitive, loaded trimmed in this case
    minimum: float | None = None  # numbers: the smallest accepted value
    maximum: float | None = None  # numbers: the largest accepted value

    def __post_init__(self) -> None:
        if (self.values or self.pattern or self.case) and self.type != "string":
            raise ValueError(f"{self.name}: accepted values, patterns and case apply to text columns")
        if (self.minimum is not None or self.maximum is not None) and self.type not in ("bigint", "double"):
            raise ValueError(f"{self.name}: a range applies to number columns")
        if self.case not in (None, "lower", "upper"):
            raise ValueError(f"{self.name}: case is lower or upper")
        if any(v != _in_case(v, self.case) for v in self.values):
            raise ValueError(f"{self.name}: accepted values are written in the column's case")

    @property
    def constrained(self) -> bool:
        """Whether a value of this column can break the contract (anything but free text)."""
        return self.required or self.type != "string" or bool(self.values or self.pattern or self.case)


@dataclass(frozen=True)
class Source:
    name: str  # raw table name, e.g. crm_contacts
    folder: str  # folder under the landing root, e.g. crm/contacts
    key: str  # column that identifies a record inside one file
    columns: tuple[Column, ...]
    description: str = ""

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _in_case(value: str, case: str | None) -> str:
    return value.lower() if case == "lower" else value.upper() if case == "upper" else value


def _c(name: str, type_: str = "string", required: bool = False, description: str = "", **rules: object) -> Column:
    return Column(name, type_, required, description, **rules)  # type: ignore[arg-type]


# Codes Attiva's models and triggers compare against, exported by other systems in any case
# ("Completed", "COMPLETED"): accepted in any case and loaded lower-case, as the models read them.
# Labels Attiva only passes on (lead source, form name, platform, category) stay free text.
def _code(name: str, values: tuple[str, ...], required: bool = False, description: str = "") -> Column:
    return Column(name, "string", required, description, values=values, case="lower")


COUNTRY = ("[A-Z]{2}", "a two-letter country code (ISO 3166 alpha-2, e.g. IT)")


SOURCES: tuple[Source, ...] = (
    Source(
        "crm_contacts",
        "crm/contacts",
        "contact_id",
        (
            _c("contact_id", required=True, description="CRM record id"),
            _c("email", description="as typed in the CRM; any case or spacing"),
            _c("phone", description="any common spelling; +39 assumed when no country code"),
            _c("first_name"),
            _c("last_name"),
            _c("company", description="set for business (B2B) contacts"),
            _c("job_title"),
            _c("country", description="ISO 3166 alpha-2, e.g. IT", pattern=COUNTRY, case="upper"),
            _c("address", description="street and house number, as typed (\"Via Roma, 12\", \"Hauptstr. 5\")"),
            _c("city"),
            _c("birth_date", "date", description="YYYY-MM-DD"),
            _code("lifecycle_stage", ("subscriber", "lead", "mql", "sql", "customer", "other")),
            _c("lead_source", description="e.g. web_form, event, referral, paid_search, social, partner, import"),
            _c("became_lead_at", "timestamp"),
            _c("became_mql_at", "timestamp"),
            _c("became_sql_at", "timestamp"),
            _c("became_customer_at", "timestamp"),
            _c("created_at", "timestamp", required=True),
            _c("updated_at", "timestamp", required=True, description="latest version of a contact wins"),
        ),
        "CRM contacts and leads (B2C and B2B), one row per contact version.",
    ),
    Source(
        "shop_customers",
        "shop/customers",
        "shop_customer_id",
        (
            _c("shop_customer_id", required=True, description="e-commerce account id"),
            _c("email"),
            _c("phone"),
            _c("first_name"),
            _c("last_name"),
            _c("birth_date", "date"),
            _c("country", description="ISO 3166 alpha-2, e.g. IT", pattern=COUNTRY, case="upper"),
            _c("address", description="the default shipping address's street and house number"),
            _c("city"),
            _c("postal_code"),
            _c("created_at", "timestamp", required=True),
            _c("updated_at", "timestamp", required=True),
        ),
        "Shop accounts, one row per account version.",
    ),
    Source(
        "shop_products",
        "shop/products",
        "product_id",
        (
            _c("product_id", required=True),
            _c("sku"),
            _c("name", required=True),
            _c("category", required=True),
            _c("subcategory"),
            _c("brand"),
            _c("price", "double", required=True, description="list price in EUR", minimum=0),
            _c("is_active", "boolean"),
            _c("updated_at", "timestamp", required=True),
        ),
        "Product catalogue.",
    ),
    Source(
        "shop_promotions",
        "shop/promotions",
        "promotion_id",
        (
            _c("promotion_id", required=True),
            _c("product_id", required=True),
            _c("name"),
            _c(
                "discount_pct",
                "double",
                required=True,
                description="percent off the list price",
                minimum=0,
                maximum=100,
            ),
            _c("starts_at", "timestamp", required=True),
            _c("ends_at", "timestamp", required=True),
        ),
        "Price promotions on single products, with start and end.",
    ),
    Source(
        "shop_orders",
        "shop/orders",
        "order_id",
        (
            _c("order_id", required=True),
            _c("shop_customer_id", description="empty for guest checkout"),
            _c("email", description="checkout email (always set for guest checkout)"),
            _c("phone"),
            _c("ordered_at", "timestamp", required=True),
            _code("status", ("completed", "cancelled", "refunded"), required=True),
            _c("total_amount", "double", required=True, description="EUR, VAT included", minimum=0),
            _code("channel", ("web", "app", "store")),
            _c("utm_source"),
            _c("utm_medium"),
            _c("utm_campaign"),
            _c("coupon_code"),
            _c("shipping_first_name", description="the name the order ships to, as typed at checkout"),
            _c("shipping_last_name"),
            _c("shipping_address", description="street and house number the order ships to"),
            _c("shipping_city"),
            _c("shipping_postal_code"),
        ),
        "Orders, one row per order.",
    ),
    Source(
        "shop_order_items",
        "shop/order_items",
        "order_item_id",
        (
            _c("order_item_id", required=True),
            _c("order_id", required=True),
            _c("product_id", required=True),
            _c("quantity", "bigint", required=True, minimum=1),
            _c("unit_price", "double", required=True, description="EUR", minimum=0),
        ),
        "Order lines.",
    ),
    Source(
        "events",
        "events",
        "event_id",
        (
            _c("event_id", required=True, description="unique per event; replays are ignored"),
            _code(
                "event_type",
                (
                    "page_view",
                    "product_view",
                    "add_to_cart",
                    "checkout_started",
                    "identify",
                    "login",
                    "form_submit",
                    "app_open",
                    "message_displayed",
                    "message_clicked",
                    "message_dismissed",
                ),
                required=True,
            ),
            _c("occurred_at", "timestamp", required=True, description="ISO 8601, UTC unless an offset is given"),
            _c("anonymous_id", description="browser cookie or app install id"),
            _c("user_id", description="shop_customer_id once logged in"),
            _c("email", description="on identify and form_submit"),
            _c("phone"),
            _c("platform", description="e.g. web, ios or android"),
            _c("session_id"),
            _c("product_id"),
            _c("quantity", "bigint", minimum=1),
            _c("url"),
            _c("form_name", description="form_submit: e.g. newsletter, contact_sales, webinar, download"),
            _c("lead_source"),
            _c("company"),
            _c("first_name"),
            _c("last_name"),
            _c("message_id", description="message_displayed, message_clicked, message_dismissed: the in-app "
               "message's id, as GET /v1/messages answered it"),
            _c(
                "trust",
                description="who vouches for the identifiers: server or empty (your systems), signed (a "
                "browser event with a verified identity token) or browser (untrusted: tied to the "
                "anonymous_id only); written by `attiva serve`",
            ),
        ),
        "Web and app events (JSON lines, one object per line; nested objects are not read).",
    ),
    Source(
        "app_installations",
        "app/installations",
        "installation_id",
        (
            _c("installation_id", required=True, description="the app install's id (the events' anonymous_id)"),
            _c("shop_customer_id", description="the account logged in on the app, if any"),
            _c("email", description="the logged-in account's email, when the export carries it"),
            _c("push_token", required=True, description="the FCM registration token the app registered"),
            _code("platform", ("ios", "android"), required=True),
            _c("app_version"),
            _c("registered_at", "timestamp", required=True,
               description="when the app registered this token; the latest registration per installation wins"),
        ),
        "The mobile app's push registrations: one row per token an installation registered with Firebase Cloud "
        "Messaging (a new row when the token rotates).",
    ),
    Source(
        "consent",
        "consent",
        "consent_id",
        (
            _c("consent_id", required=True),
            _c("email"),
            _c("phone"),
            _c("shop_customer_id"),
            _code("channel", ("email", "sms", "push", "ads", "profiling"), required=True),
            _code("status", ("granted", "revoked"), required=True),
            _c("recorded_at", "timestamp", required=True, description="latest record per person and channel wins"),
            _c("source", description="where it was collected, e.g. checkout, newsletter_form, preference_center, crm"),
        ),
        "Consent records per channel, granted or revoked over time.",
    ),
    Source(
        "social_leads",
        "social/leads",
        "lead_id",
        (
            _c("lead_id", required=True, description="Meta's leadgen id"),
            _c("created_at", "timestamp", required=True, description="when the form was submitted"),
            _c("page_id", description="the Facebook Page whose form it was"),
            _c("form_id"),
            _c("ad_id", description="empty for organic leads"),
            _c("adgroup_id"),
            _code("platform", ("fb", "ig"), description="fb (Facebook) or ig (Instagram), as the Graph API says"),
            _c("is_organic", "boolean"),
            _c("email", description="the form's email answer, as typed"),
            _c("phone", description="the form's phone answer; +39 assumed when no country code"),
            _c("full_name", description="when the form asks for one name field"),
            _c("first_name"),
            _c("last_name"),
            _c("city"),
            _c("consent_marketing", "boolean",
               description="a marketing checkbox of the form, ticked or not; empty when the form has none"),
            _c("field_data", description="every answer as the Graph API gave it: a JSON array of {name, values}"),
            _c("received_at", "timestamp", description="when Attiva read the lead"),
        ),
        "Lead-ad form submissions from Facebook and Instagram (Meta Lead Ads), one row per lead; written by "
        "`attiva serve`'s leadgen webhook (docs/social-leads.md) or an export in the same shape.",
    ),
    Source(
        "social_interactions",
        "social/interactions",
        "interaction_id",
        (
            _c("interaction_id", required=True,
               description="the platform's id: a comment's or message's id; a reaction's is the post's and the "
                           "person's (Meta's webhooks give none)"),
            _code("platform", ("facebook", "instagram", "linkedin"), required=True),
            _code("kind", ("comment", "reaction", "share", "follow", "message", "mention"), required=True,
                  description="a mention is the brand tagged in the person's own post or story"),
            _code("verb", ("add", "edited", "remove"),
                  description="as Meta's webhooks say; empty is add. A later row with the same id replaces the "
                              "earlier: an edited comment, a reaction taken back, an unfollow"),
            _c("occurred_at", "timestamp", required=True, description="the webhook's created_time"),
            _c("page_id", description="the brand's Page, Instagram account or LinkedIn organization"),
            _c("post_id", description="the post commented, reacted to or shared; empty for follows and messages"),
            _c("from_id", description="the person's id on the platform (page-scoped on Facebook and Instagram, a "
                                      "member URN on LinkedIn); empty when the platform hides who it was"),
            _c("from_name", description="their display name or @username"),
            _c("message", description="the comment's or message's text"),
            _c("reaction_type", description="like, love, haha, wow, sad, angry, care; LinkedIn's praise, "
                                            "empathy, interest, appreciation, entertainment"),
            _c("email", description="an email the person shared in a direct message (Messenger's and Instagram's "
                                    "email quick reply)"),
            _c("phone", description="a phone number they shared the same way"),
        ),
        "Social interactions with the brand's pages and accounts on Facebook, Instagram and LinkedIn (comments, "
        "reactions, shares, follows, direct messages, mentions), one row per interaction as the platforms' "
        "webhooks and exports give them (docs/social.md).",
    ),
    Source(
        "email_engagement",
        "email_engagement",
        "engagement_id",
        (
            _c("engagement_id", required=True),
            _c("email", required=True),
            _code("event_type", ("delivered", "open", "click", "bounce", "unsubscribe", "complaint"), required=True),
            _c("occurred_at", "timestamp", required=True),
            _c("campaign"),
            _c("message_id"),
            _code("bounce_type", ("hard", "soft"), description="for bounces"),
            _c("url", description="for clicks"),
        ),
        "Email engagement as exported by an email service provider.",
    ),
    Source(
        "web_mentions",
        "listening/mentions",
        "mention_id",
        (
            _c("mention_id", required=True, description="the feed item's id (RSS guid, Atom id) or the export's"),
            _c("url", description="the item's link; the same url landed twice counts once"),
            _code("source_kind", ("news", "blog", "social", "review")),
            _c("source_name", description="the feed or site, e.g. a newspaper's name"),
            _c("title"),
            _c("text", required=True, description="the mention's text (a news item's summary, a post)"),
            _c("author"),
            _c("published_at", "timestamp", required=True),
            _c("language", description="as the feed said (e.g. it, en-GB); Attiva decides its own"),
        ),
        "Brand and product mentions on the web: RSS/Atom news and blogs, social and review exports, one row per "
        "mention; written by `attiva listen` (docs/listening.md) or an export in the same shape.",
    ),
)

SOURCES_BY_NAME = {s.name: s for s in SOURCES}
