"""Audiences and their syncs, read from the dbt manifest.

A sync is declared next to the audience SQL, in the `aud_*` model's YAML (or a conversions model's,
`conv_*`: one row per conversion rather than per customer, sent once to an ad platform; or the product
catalog's, `catalog_*`: one row per product, naming no one, so its syncs map no identifiers):

    config:
      meta:
        activations:
          - destination: hubspot          # an instance in destinations.yml
            mode: upsert                  # upsert, update, insert, mirror or full_resync
            identifiers: {email: email}   # identifier kind -> audience column
            fields: {firstname: first_name}   # destination field -> audience column
            consent: email_marketable     # boolean column a row needs to be sent, or `none`
            guards: {max_remove_share: 0.2, max_shrink_share: 0.5}   # optional (mirror)
            list: Attiva champions        # HubSpot: the sync's own list, found or created (mirror needs it)

Every mistake is reported with the model and the field, before anything is sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from activations import settings
from activations.config.errors import ConfigError, first_problem
from activations.destinations import DestinationConfig
from activations.destinations.base import MODES, DestinationConfigError
from activations.destinations.config import DestinationsFile, destination_class

T = TypeVar("T")
DEFAULT_GUARDS = {"max_remove_share": 0.2, "max_shrink_share": 0.5}
SYNC_NAME = re.compile(r"[A-Za-z0-9_\-]+")  # a sync's name is part of its asset key and its plan files


class SyncDeclarationError(ConfigError):
    """A sync declaration that cannot work, naming the file, the model and the field."""

    def __init__(self, reason: str, *, file: str | None = None, model: str | None = None,
                 field: str | None = None) -> None:
        super().__init__(reason, file=file, entry=model, entry_kind="model", field=field)


class GuardsEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    max_remove_share: float = Field(DEFAULT_GUARDS["max_remove_share"], ge=0, le=1,
                                    description="a mirror run stops before removing more than this share")
    max_shrink_share: float = Field(DEFAULT_GUARDS["max_shrink_share"], ge=0, le=1,
                                    description="a run stops before the audience shrinks by more than this share")


class SyncDeclaration(BaseModel):
    """One entry of an aud_* model's meta.activations: an audience kept in sync with a destination.

    A destination type may take options of its own per sync (HubSpot's `list`); they are checked
    against that type (destinations/config.per_sync_model)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    destination: str = Field(description="an instance in destinations.yml")
    mode: Literal[MODES] = Field("upsert", description="how the destination is kept: docs/syncs.md")  # type: ignore[valid-type]
    identifiers: dict[str, str] = Field(default_factory=dict, description="identifier kind -> audience column, e.g. "
                                        "{email: email}; none for a destination of rows that name no one (a catalog)")
    fields: dict[str, str] = Field(default_factory=dict, description="destination field -> audience column")
    consent: str | None = Field(description="the boolean column a row needs to be sent (e.g. consent_ads), or `none`")
    guards: GuardsEntry = Field(default_factory=GuardsEntry)
    key: str = Field("customer_id", description="the audience column identifying a row across runs")
    name: str | None = Field(None, pattern=SYNC_NAME.pattern, description="letters, digits, '_' and '-'")
    schedule: str | None = Field(None, description="a cron expression for this sync's own schedule")


@dataclass(frozen=True)
class Audience:
    name: str  # the dbt model, e.g. aud_champions
    relation: str  # schema.table in the warehouse
    description: str
    columns: tuple[str, ...]
    unique_columns: tuple[str, ...] = ()  # columns a dbt `unique` test guarantees
    file: str | None = None  # the YAML declaring it, for error messages
    layer: str = "audiences"  # its folder under models/: the first part of its Dagster asset key


@dataclass(frozen=True)
class Sync:
    name: str  # <audience>__<destination> unless declared
    audience: Audience
    destination: str
    mode: str
    key: str  # the audience column identifying a row across runs
    identifiers: dict[str, str]
    fields: dict[str, str] = field(default_factory=dict)
    consent: str | None = None  # None only when declared `none`
    guards: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_GUARDS))
    schedule: str | None = None
    # Destination options this sync sets for itself (HubSpot's `list`): `DestinationConfig.for_sync`.
    destination_options: dict[str, Any] = field(default_factory=dict)


def load_manifest(path: Path | None = None) -> dict[str, Any]:
    """The manifest dbt wrote: `path`, else ATTIVA_MANIFEST, else dbt_project/target/manifest.json."""
    path = path or settings.manifest_path()
    if not path.exists():
        raise FileNotFoundError(f"no dbt manifest at {path}: run `make dbt-parse` (dbt parse) first")
    return json.loads(path.read_text())


def declared_in(node: dict[str, Any]) -> str | None:
    """The YAML file declaring a model's config (`dbt_project/models/.../_x.yml`), for error messages."""
    patch = node.get("patch_path") or ""
    return f"dbt_project/{patch.split('://', 1)[-1]}" if patch else node.get("original_file_path")


# What a sync may send: audiences (one row per customer), conversions (one row per conversion) and the
# product catalog (one row per product).
SYNC_SOURCE_PREFIXES = ("aud_", "conv_", "catalog_")


def audiences(manifest: dict[str, Any], prefixes: tuple[str, ...] = ("aud_",)) -> list[Audience]:
    """Every `aud_*` model (or model named with one of `prefixes`), with the columns its YAML declares."""
    found = []
    nodes = manifest.get("nodes", {}).values()
    unique: dict[str, set[str]] = {}
    for test in nodes:
        if test.get("resource_type") == "test" and (test.get("test_metadata") or {}).get("name") == "unique":
            unique.setdefault(test.get("attached_node") or "", set()).add(test.get("column_name") or "")
    for node in nodes:
        if node.get("resource_type") == "model" and node["name"].startswith(prefixes):
            fqn = node.get("fqn") or []
            found.append(Audience(name=node["name"], relation=f"{node['schema']}.{node.get('alias') or node['name']}",
                                  description=node.get("description", ""), columns=tuple(node.get("columns", {})),
                                  unique_columns=tuple(sorted(unique.get(node.get("unique_id", ""), ()))),
                                  file=declared_in(node), layer=fqn[1] if len(fqn) > 2 else "audiences"))
    return sorted(found, key=lambda a: a.name)


@dataclass(frozen=True)
class BrokenSync:
    """A declared sync that cannot run, and why: it fails on its own, the other syncs run."""

    name: str  # as the sync would be named, so commands and assets about it find it
    audience: str
    destination: str | None
    error: Exception  # a SyncDeclarationError, or the DestinationConfigError of its destination

    @property
    def reason(self) -> str:
        return str(self.error)


@dataclass(frozen=True)
class Declarations:
    """Every sync declared in the audiences' YAML: those that can run, and the broken ones."""

    syncs: list[Sync]
    broken: list[BrokenSync] = field(default_factory=list)

    def broken_named(self, name: str) -> BrokenSync | None:
        return next((b for b in self.broken if b.name == name), None)


def declared_syncs(manifest: dict[str, Any], destinations: DestinationsFile) -> Declarations:
    """Every declared sync, each validated on its own: a mistake in one (or in its destination's entry in
    destinations.yml) makes that one a BrokenSync and leaves the others alone."""
    found: list[Sync | BrokenSync] = []
    nodes = {n["name"]: n for n in manifest.get("nodes", {}).values() if n.get("resource_type") == "model"}
    for audience in audiences(manifest, SYNC_SOURCE_PREFIXES):
        entries = (nodes[audience.name].get("config", {}).get("meta", {}) or {}).get("activations") or []
        if not isinstance(entries, list):
            found.append(BrokenSync(f"{audience.name}__activations", audience.name, None, SyncDeclarationError(
                "must be a list of syncs", file=audience.file, model=audience.name, field="meta.activations")))
            continue
        for index, entry in enumerate(entries):
            found.append(_one_sync(audience, index, entry, destinations))
    kept = one_per_key(found, lambda s: s.name, lambda s: BrokenSync(
        s.name, s.audience if isinstance(s, BrokenSync) else s.audience.name, s.destination,
        SyncDeclarationError(f"two syncs are named {s.name!r}: give one of them a `name`",
                             model=s.audience if isinstance(s, BrokenSync) else s.audience.name)))
    kept = _one_option_owner(kept)
    return Declarations([s for s in kept if isinstance(s, Sync)], [s for s in kept if isinstance(s, BrokenSync)])


def _one_option_owner(found: list[Sync | BrokenSync]) -> list[Sync | BrokenSync]:
    """A per-sync option (HubSpot's list) belongs to one sync: a mirror sync removing from a list another
    sync fills would take that sync's contacts out. The second sync naming it is broken, not the first."""
    owners: dict[tuple[str, str, str], str] = {}
    kept: list[Sync | BrokenSync] = []
    for sync in found:
        clash = None
        if isinstance(sync, Sync):
            for key, value in sync.destination_options.items():
                owner = owners.setdefault((sync.destination, key, str(value).strip().lower()), sync.name)
                if owner != sync.name:
                    clash = SyncDeclarationError(
                        f"{value!r} already belongs to sync {owner!r} on {sync.destination}; give sync "
                        f"{sync.name!r} its own", file=sync.audience.file, model=sync.audience.name, field=key)
        kept.append(BrokenSync(sync.name, sync.audience.name, sync.destination, clash) if clash else sync)
    return kept


def one_per_key(items: list[T], key: Callable[[T], str], duplicate: Callable[[T], T]) -> list[T]:
    """`items`, where two or more share a key, replaced by one `duplicate(first of them)`: names and
    campaigns are asset keys, so each may stand once, and a clash breaks the declarations involved."""
    keys = [key(item) for item in items]
    kept: list[T] = []
    for item, k in zip(items, keys, strict=True):
        if keys.count(k) == 1:
            kept.append(item)
        elif k not in {key(done) for done in kept}:
            kept.append(duplicate(item))
    return kept


def syncs(manifest: dict[str, Any], destinations: dict[str, DestinationConfig]) -> list[Sync]:
    """Every declared sync, validated against the audience's columns and the destination's capabilities;
    the first mistake raises (`declared_syncs` keeps the others instead)."""
    found = declared_syncs(manifest, DestinationsFile(dict(destinations)))
    if found.broken:
        raise found.broken[0].error
    return found.syncs


def _one_sync(audience: Audience, index: int, entry: Any, destinations: DestinationsFile) -> Sync | BrokenSync:
    """One entry of meta.activations: its Sync, or a BrokenSync saying what is wrong."""
    destination = entry.get("destination") if isinstance(entry, dict) else None
    destination = destination if isinstance(destination, str) else None
    name = entry.get("name") if isinstance(entry, dict) else None
    if not (isinstance(name, str) and SYNC_NAME.fullmatch(name)):
        name = f"{audience.name}__{destination}" if destination and SYNC_NAME.fullmatch(destination) \
            else f"{audience.name}__activations_{index}"
    if destination is not None and (problem := destinations.problem(destination)):
        return BrokenSync(name, audience.name, destination, problem)
    try:
        return _parse(audience, index, entry, destinations.configs)
    except (SyncDeclarationError, DestinationConfigError) as exc:
        return BrokenSync(name, audience.name, destination, exc)


def _parse(audience: Audience, index: int, entry: Any, destinations: dict[str, DestinationConfig]) -> Sync:
    where, file = f"meta.activations[{index}]", audience.file

    def fail(field_name: str, reason: str) -> SyncDeclarationError:
        return SyncDeclarationError(reason, file=file, model=audience.name, field=f"{where}.{field_name}")

    if not isinstance(entry, dict):
        raise SyncDeclarationError("a sync is a mapping with destination, mode, identifiers, consent", file=file,
                                   model=audience.name, field=where)
    destination = entry.get("destination")
    if destination not in destinations:
        raise fail("destination", f"{destination!r} is not in destinations.yml ({', '.join(sorted(destinations))})")
    per_sync = {key: option for key, option in destination_class(destinations[destination].type).options.items()
                if option.per_sync}
    try:
        declared = SyncDeclaration.model_validate({k: v for k, v in entry.items() if k not in per_sync})
    except ValidationError as exc:
        field_name, reason = first_problem(exc, SyncDeclaration, "a sync")
        if reason.startswith("unknown option;") and per_sync:
            reason += f"; {destinations[destination].type} also: {', '.join(sorted(per_sync))}"
        raise fail(field_name, reason) from None
    options = {key: entry[key] for key in per_sync if entry.get(key) is not None}
    config = destinations[destination].for_sync(options, fail)
    capabilities = config.limited(destination_class(config.type).platform_capabilities(config))
    columns = set(audience.columns)

    def column(field_name: str, value: str) -> str:
        if value not in columns:
            raise fail(field_name, f"{value!r} is not a column of {audience.name} ({', '.join(audience.columns)})")
        return value

    mode = declared.mode
    if mode not in capabilities.modes:
        hints = "".join(f"; `{key}:` {option.help}" for key, option in per_sync.items() if key not in options)
        raise fail("mode", f"{destination} ({config.type}) cannot do {mode}; it can do "
                           f"{', '.join(sorted(capabilities.modes))}{hints}")
    identifiers = declared.identifiers
    if not identifiers and capabilities.identifiers:
        raise fail("identifiers", f"{config.type} needs at least one of {', '.join(capabilities.identifiers)}")
    if identifiers and not capabilities.identifiers:
        raise fail("identifiers", f"{config.type} knows rows by their key and takes no identifiers; remove them")
    for kind, col in identifiers.items():
        if kind not in capabilities.identifiers:
            raise fail(f"identifiers.{kind}", f"{config.type} accepts {', '.join(capabilities.identifiers)}")
        column(f"identifiers.{kind}", col)
    if missing := [k for k in capabilities.required_identifiers if k not in identifiers]:
        raise fail("identifiers", f"{config.type} needs {', '.join(missing)}")
    fields = declared.fields
    if fields and not capabilities.accepts_fields:
        raise fail("fields", f"{config.type} takes identifiers only; remove fields")
    if missing := [f for f in capabilities.required_fields if f not in fields]:
        raise fail("fields", f"{config.type} needs the fields {', '.join(missing)}")
    for name, col in fields.items():
        if name.startswith("_") or name in identifiers:
            raise fail(f"fields.{name}", "a destination field name must not start with '_' or repeat an identifier kind")
        column(f"fields.{name}", col)
    consent = None if declared.consent in (None, "none") else column("consent", declared.consent)
    return Sync(name=declared.name or f"{audience.name}__{destination}", audience=audience,
                destination=destination, mode=mode, key=column("key", declared.key),
                identifiers=dict(identifiers), fields=dict(fields), consent=consent,
                guards=declared.guards.model_dump(), schedule=declared.schedule,
                destination_options={key: config.options[key] for key in options})
