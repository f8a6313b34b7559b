"""News and blog feeds about the demo retailer, for `attiva listen` over loopback HTTP.

- ``GET /listening/feeds/news.rss``: an RSS 2.0 news feed (Italian and English items, one Spanish, one
  syndicated twice under two guids with the same link)
- ``GET /listening/feeds/blog.atom``: an Atom 1.0 blog feed
- ``GET /listening/feeds/broken.xml``: a feed cut off half-way, to see a bad feed fail alone

Items are dated in the days before the request, so a demo's listening marts always have a recent week.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# (hours ago, guid, link, title, description, language)
NEWS = (
    (5, "news-101", "https://news.example/casa-lume-milano", "Casa Lume apre a Milano",
     "Casa Lume apre un nuovo negozio in Brera: prezzi ottimi e consegna gratuita in città.", "it"),
    (6, "news-101-syndicated", "https://news.example/casa-lume-milano", "Casa Lume apre a Milano",
     "Casa Lume apre un nuovo negozio in Brera: prezzi ottimi e consegna gratuita in città.", "it"),
    (30, "news-102", "https://news.example/lanterna-living-ritardi", "Lanterna Living, clienti arrabbiati",
     "Ritardi nelle consegne di Lanterna Living: molti clienti delusi aspettano da settimane.", "it"),
    (54, "news-103", "https://news.example/home-retail-uk", "Italian home brands in London",
     "Casa Lume and Maison Ardesia bring Italian design to London; reviewers love the quality of the linen.", "en"),
    (80, "news-104", "https://news.example/casa-lume-madrid", "Casa Lume llega a Madrid",
     "Casa Lume abre su primera tienda en Madrid con muebles y lámparas de diseño italiano.", "es"),
    (100, "news-105", "https://news.example/casa-lume-richiamo", "Richiamo per una lampada Casa Lume",
     "Casa Lume ritira una lampada da tavolo: un difetto del cavo, pessima notizia per i clienti.", "it"),
)
BLOG = (
    (3, "tag:blog.example,2026:1", "https://blog.example/divano-casa-lume", "Il mio divano Casa Lume",
     "<p>Dopo sei mesi il divano di <b>Casa Lume</b> è ancora perfetto, comodissimo!</p>"),
    (27, "tag:blog.example,2026:2", "https://blog.example/ardesia-vs-lume", "Maison Ardesia o Casa Lume?",
     "<p>Ho confrontato i piumini di Maison Ardesia e Casa Lume: qualità simile, ma Casa Lume costa meno.</p>"),
    (75, "tag:blog.example,2026:3", "https://blog.example/reso", "A return that went wrong",
     "<p>The Casa Lume return took three weeks and the refund was wrong. Really disappointing.</p>"),
)


def _news(now: datetime) -> str:
    items = "".join(
        f"<item><guid isPermaLink=\"false\">{guid}</guid><link>{link}</link><title>{escape(title)}</title>"
        f"<description>{escape(text)}</description><dc:creator>Redazione</dc:creator>"
        f"<pubDate>{format_datetime(now - timedelta(hours=hours))}</pubDate></item>"
        for hours, guid, link, title, text, _ in NEWS)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Notizie Casa &amp; Design</title>'
            f'<link>https://news.example/</link><language>it</language>{items}</channel></rss>')


def _blog(now: datetime) -> str:
    entries = "".join(
        f"<entry><id>{guid}</id><link rel=\"alternate\" href=\"{link}\"/><title>{escape(title)}</title>"
        f"<summary type=\"html\">{escape(text)}</summary><author><name>Giulia</name></author>"
        f"<published>{(now - timedelta(hours=hours)).isoformat()}</published>"
        f"<updated>{(now - timedelta(hours=hours)).isoformat()}</updated></entry>"
        for hours, guid, link, title, text in BLOG)
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="it">'
            f'<title>Diario di casa</title><id>tag:blog.example,2026:feed</id><updated>{now.isoformat()}</updated>'
            f'{entries}</feed>')


async def news(request: Request) -> Response:
    return Response(_news(datetime.now(UTC)), media_type="application/rss+xml; charset=utf-8")


async def blog(request: Request) -> Response:
    return Response(_blog(datetime.now(UTC)), media_type="application/atom+xml; charset=utf-8")


async def broken(request: Request) -> Response:
    return Response(_news(datetime.now(UTC))[:400], media_type="application/rss+xml; charset=utf-8")


def routes() -> list[Route]:
    return [Route("/feeds/news.rss", news, methods=["GET"]), Route("/feeds/blog.atom", blog, methods=["GET"]),
            Route("/feeds/broken.xml", broken, methods=["GET"])]
