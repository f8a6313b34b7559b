"""`attiva listen`: read the RSS and Atom feeds of listening.yml and land their items as mentions.

Each item becomes a `listening/mentions` landing row (the landing contract's `web_mentions`): the RSS
guid or Atom id as mention_id (the link when there is none), the link, the feed's title as source_name,
the title, the description or summary without its HTML as text, the author, the publication time and the
language the feed declares. All the items of one run go in one JSON-lines file; ingestion takes it like
any other landing file, and staging counts an item fetched again once (stg_listening__mentions).

A feed that cannot be fetched or parsed is reported with the reason and skipped; the other feeds still
land. Parsed with the standard library (xml.etree: Python's expat refuses entity-expansion bombs);
feedparser would add two dependencies, one of them (sgmllib3k) without a wheel.
"""

from __future__ import annotations

import hashlib
import html
import re
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

from activations import settings
from activations.ingest.contract import SOURCES_BY_NAME
from activations.listening.config import Feed, Listening

FOLDER = SOURCES_BY_NAME["web_mentions"].folder
ATOM = "{http://www.w3.org/2005/Atom}"
DC = "{http://purl.org/dc/elements/1.1/}"
CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
USER_AGENT = "attiva-listen/1 (+https://github.com/attiva)"
MAX_BYTES = 20_000_000  # a feed larger than this is not a feed


class FeedError(Exception):
    """A feed that could not be read: unreachable, not RSS or Atom, not XML."""


@dataclass
class ListenResult:
    landed: Path | None = None
    mentions: int = 0
    per_feed: dict[str, int] = field(default_factory=dict)  # url -> items read
    failed: dict[str, str] = field(default_factory=dict)  # url -> why

    def __str__(self) -> str:
        lines = [f"  {url}: {n} item(s)" for url, n in self.per_feed.items()]
        lines += [f"  {url}: FAILED: {why}" for url, why in self.failed.items()]
        where = f" in {self.landed}" if self.landed else ""
        return "\n".join([f"{self.mentions} mention(s) landed{where} from {len(self.per_feed)} feed(s)"
                          f"{f', {len(self.failed)} failed' if self.failed else ''}", *lines])


def listen(listening: Listening, landing: Path, timeout: float = 20.0) -> ListenResult:
    """Fetch every feed, land the items of those that parse as one file; report those that do not."""
    result = ListenResult()
    rows: list[dict] = []
    for feed in listening.feeds:
        url = feed_url(feed.url)
        try:
            items = parse_feed(fetch(url, timeout), feed)
        except FeedError as exc:
            result.failed[url] = str(exc)
            continue
        result.per_feed[url] = len(items)
        rows += items
    if rows:
        from activations.serve.events import write_landing_file

        result.landed = write_landing_file(Path(landing) / FOLDER, rows, "feeds")
        result.mentions = len(rows)
    return result


def feed_url(url: str) -> str:
    """The URL with `{sandbox_port}` filled in (ATTIVA_SANDBOX_PORT): the demo's feeds are the sandbox's."""
    return url.replace("{sandbox_port}", str(settings.sandbox_port()))


def fetch(url: str, timeout: float = 20.0) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT,
                                                   "Accept": "application/rss+xml, application/atom+xml, */*"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - http(s) only (config)
            body = answer.read(MAX_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise FeedError(f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise FeedError(f"unreachable: {getattr(exc, 'reason', exc)}") from None
    if len(body) > MAX_BYTES:
        raise FeedError(f"larger than {MAX_BYTES:,} bytes")
    return body


def parse_feed(body: bytes, feed: Feed) -> list[dict]:
    """The landing rows of an RSS 2.0 or Atom 1.0 document."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise FeedError(f"not XML: {exc}") from None
    if root.tag == "rss" and root.find("channel") is not None:
        return _rss(root.find("channel"), feed)
    if root.tag == f"{ATOM}feed":
        return _atom(root, feed)
    raise FeedError(f"neither RSS nor Atom (root element {root.tag!r})")


def _rss(channel: ET.Element, feed: Feed) -> list[dict]:
    source = feed.name or _text(channel.find("title"))
    language = _text(channel.find("language"))
    rows = []
    for item in channel.findall("item"):
        link = _text(item.find("link"))
        title = _text(item.find("title"))
        text = _plain(_text(item.find(f"{CONTENT}encoded")) or _text(item.find("description"))) or title
        published = _rfc822(_text(item.find("pubDate")) or _text(item.find(f"{DC}date")))
        guid = _text(item.find("guid")) or link or _digest(source, title, published)
        rows.append(_row(guid, link, feed, source, title, text,
                         _text(item.find("author")) or _text(item.find(f"{DC}creator")), published, language))
    return rows


def _atom(root: ET.Element, feed: Feed) -> list[dict]:
    source = feed.name or _text(root.find(f"{ATOM}title"))
    language = root.get(XML_LANG)
    rows = []
    for entry in root.findall(f"{ATOM}entry"):
        links = entry.findall(f"{ATOM}link")
        link = next((x.get("href") for x in links if x.get("rel", "alternate") == "alternate"), None)
        title = _plain(_text(entry.find(f"{ATOM}title")))
        text = _plain(_text(entry.find(f"{ATOM}summary")) or _text(entry.find(f"{ATOM}content"))) or title
        published = _iso(_text(entry.find(f"{ATOM}published")) or _text(entry.find(f"{ATOM}updated")))
        author = entry.find(f"{ATOM}author")
        rows.append(_row(_text(entry.find(f"{ATOM}id")) or link or _digest(source, title, published), link, feed,
                         source, title, text, _text(author.find(f"{ATOM}name")) if author is not None else None,
                         published, entry.get(XML_LANG) or language))
    return rows


def _row(mention_id, url, feed: Feed, source, title, text, author, published, language) -> dict:
    return {"mention_id": mention_id, "url": url, "source_kind": feed.kind, "source_name": source, "title": title,
            "text": text, "author": author, "published_at": published, "language": language}


def _text(element: ET.Element | None) -> str | None:
    value = (element.text or "").strip() if element is not None else ""
    return value or None


_TAGS = re.compile(r"<[^>]+>")


def _plain(value: str | None) -> str | None:
    """HTML as the text a reader sees: tags dropped, entities decoded, white space collapsed."""
    if value is None:
        return None
    return " ".join(html.unescape(_TAGS.sub(" ", value)).split()) or None


def _rfc822(value: str | None) -> str | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return _iso(value)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def _iso(value: str | None) -> str | None:
    """An ISO 8601 time as UTC; anything else as written (ingestion quarantines it, naming the line)."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def _digest(*parts: str | None) -> str:
    return "sha1:" + hashlib.sha1("\x1f".join(p or "" for p in parts).encode()).hexdigest()
