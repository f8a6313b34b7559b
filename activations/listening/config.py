"""`listening.yml`: whose mentions to count (the brand, its competitors), what they are about (topics) and
which RSS/Atom feeds `attiva listen` reads. Read through a typed model like every configuration file;
a mistake names the file, the entry and the field (activations/config/errors.py)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from activations import settings
from activations.config.errors import ConfigError, first_problem


class ListeningConfigError(ConfigError):
    """listening.yml is wrong: names the file, the entry and the field."""


class BrandEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, description="the brand as people write it, e.g. Casa Lume")
    aliases: list[str] = Field(default_factory=list,
                               description="other spellings that mean it: CasaLume, @casalume, casalume.it")

    @field_validator("name", "aliases")
    @classmethod
    def _words(cls, value):
        names = [value] if isinstance(value, str) else value
        if any(not n.strip() for n in names):
            raise ValueError("expected a name with at least one letter or digit")
        return value


class FeedEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    url: str = Field(description="the RSS or Atom feed's URL")
    kind: Literal["news", "blog", "social", "review"] = Field("news", description="what its items are")
    name: str | None = Field(None, description="the source's name (default: the feed's own title)")


class ListeningFile(BaseModel):
    """listening.yml: the brand, its competitors, the topics and the feeds of web listening."""

    model_config = ConfigDict(extra="forbid", strict=True)

    brand: BrandEntry = Field(description="the brand whose mentions are counted")
    competitors: list[BrandEntry] = Field(default_factory=list,
                                          description="brands the share of voice is measured against")
    topics: dict[str, list[str]] = Field(
        default_factory=dict, description="topic name -> keywords or phrases (Italian and English) that put a "
                                          "mention in it; a mention may have several topics")
    feeds: list[str | FeedEntry] = Field(
        default_factory=list, description="RSS or Atom feeds `attiva listen` reads: a URL (news), or "
                                          "{url, kind: news|blog|social|review, name}")

    @field_validator("feeds")
    @classmethod
    def _urls(cls, value: list[str | FeedEntry]) -> list[str | FeedEntry]:
        for feed in value:
            url = feed if isinstance(feed, str) else feed.url
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"expected an http(s) URL, not {url!r}")
        return value

    @field_validator("topics")
    @classmethod
    def _keywords(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, words in value.items():
            if not words or any(not w.strip() for w in words):
                raise ValueError(f"topic {name!r}: expected a list of keywords")
        return value


@dataclass(frozen=True)
class Brand:
    name: str
    aliases: tuple[str, ...] = ()

    @property
    def spellings(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class Feed:
    url: str
    kind: str = "news"
    name: str | None = None


@dataclass(frozen=True)
class Listening:
    """listening.yml, read: the brand first among `brands`, then the competitors in the file's order."""

    brand: Brand
    competitors: tuple[Brand, ...] = ()
    topics: dict[str, tuple[str, ...]] | None = None
    feeds: tuple[Feed, ...] = ()

    @property
    def brands(self) -> tuple[Brand, ...]:
        return (self.brand, *self.competitors)


def load_listening(path: Path | str | None = None) -> Listening | None:
    """listening.yml (ATTIVA_LISTENING); None when there is no such file (no listening configured)."""
    path = Path(path or settings.listening_path())
    if not path.exists():
        return None
    where = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ListeningConfigError(f"not valid YAML: {exc}", file=where) from None
    if not isinstance(raw, dict):
        raise ListeningConfigError("expected a mapping with brand, competitors, topics and feeds", file=where)
    try:
        parsed = ListeningFile.model_validate(raw)
    except ValidationError as exc:
        field_name, reason = first_problem(exc, ListeningFile)
        entry = None
        if field_name.startswith("competitors[") and isinstance(raw.get("competitors"), list):
            index = int(field_name.split("[", 1)[1].split("]", 1)[0])
            item = raw["competitors"][index]
            entry = str(item.get("name")) if isinstance(item, dict) and item.get("name") else f"competitors[{index}]"
            field_name = field_name.split("]", 1)[1].lstrip(".") or None
        raise ListeningConfigError(reason, file=where, entry=entry, entry_kind="competitor",
                                   field=field_name) from None
    names = [b.name.casefold() for b in (parsed.brand, *parsed.competitors)]
    if len(set(names)) != len(names):
        raise ListeningConfigError("a competitor has the brand's or another competitor's name", file=where,
                                   field="competitors")
    return Listening(
        brand=Brand(parsed.brand.name.strip(), tuple(a.strip() for a in parsed.brand.aliases)),
        competitors=tuple(Brand(c.name.strip(), tuple(a.strip() for a in c.aliases)) for c in parsed.competitors),
        topics={name: tuple(w.strip() for w in words) for name, words in parsed.topics.items()},
        feeds=tuple(Feed(f) if isinstance(f, str) else Feed(f.url, f.kind, f.name) for f in parsed.feeds),
    )
