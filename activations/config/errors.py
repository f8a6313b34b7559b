"""One shape for every configuration mistake: which file, which entry, which field, what is allowed.

Every configuration file (destinations.yml, channels.yml, messaging.yml, serve_keys.yml) and every
declaration in a dbt model's YAML (meta.activations, meta.messaging) reports its mistakes as a
`ConfigError`; `from_validation` turns pydantic's errors into the same words.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError


class ConfigError(ValueError):
    """A configuration mistake: `file <file>, <entry kind> '<entry>', field '<field>': <reason>`.

    `entry_kind` names what the entry is in the user's words (destination, channel, key, model)."""

    def __init__(self, reason: str, *, file: str | None = None, entry: str | None = None,
                 entry_kind: str = "entry", field: str | None = None) -> None:
        self.reason, self.file, self.entry, self.entry_kind, self.field = reason, file, entry, entry_kind, field
        super().__init__(describe(reason, file=file, entry=entry, entry_kind=entry_kind, field=field))


def describe(reason: str, *, file: str | None = None, entry: str | None = None, entry_kind: str = "entry",
             field: str | None = None) -> str:
    """The one wording of a configuration mistake (also used by errors that are not ValueErrors)."""
    where = ", ".join(part for part in (f"file {file}" if file else "",
                                        f"{entry_kind} {entry!r}" if entry else "",
                                        f"field {field!r}" if field else "") if part)
    return f"{where}: {reason}" if where else reason


def field_path(loc: Iterable[Any]) -> str:
    """pydantic's location as the user writes it in YAML: `steps[0].delay`, `caps.per_day`."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def first_problem(exc: ValidationError, model: type[BaseModel], subject: str = "") -> tuple[str, str]:
    """(field, reason) of the first mistake pydantic found in `model`, in the words of today's messages:
    the field as the file writes it (`from`, not `sender`; `steps[0].delay`), the reason with what is
    allowed (the field's description, or the options an entry accepts, as what `subject` accepts)."""
    errors = exc.errors(include_url=False)
    # An unknown option first: a misspelled one also reads as the real one missing.
    error = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc, described, container = _as_written(error["loc"], model)
    reason = reason_for(error, options(container), subject)
    if described and error["type"] not in ("value_error", "extra_forbidden"):
        reason = f"{reason}: {described}" if error["type"] == "missing" else f"{reason} ({described})"
    return field_path(loc), reason


def options(model: type[BaseModel] | None) -> list[str]:
    """The option names `model` accepts, as written in the file (fields marked `exclude` are refused ones)."""
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items() if not f.exclude]


def _as_written(loc: Iterable[Any], model: type[BaseModel] | None
                ) -> tuple[list[Any], str | None, type[BaseModel] | None]:
    """The location as the file writes it (fields by alias, without the union members pydantic tried), the
    last field's description, and the model its last part was looked up in."""
    written: list[Any] = []
    description, keyed, container = None, False, model
    for part in loc:
        found = model.model_fields.get(str(part)) if model is not None and isinstance(part, str) else None
        if model is not None and isinstance(part, str):
            container = model
        if found is not None:
            written.append(found.alias or part)
            description = found.description
            types = _types(found.annotation)
            keyed = dict in types
            model = next((t for t in types if isinstance(t, type) and issubclass(t, BaseModel)), None)
        elif isinstance(part, int) or keyed or (model is not None and part not in model.model_fields):
            written.append(part)  # a list index, a key of a mapping the user wrote, or an unknown option
            keyed = False
        # else: the union member pydantic tried (`str`, `WindowEntry`): not something the user wrote
    return written, description, container


def _types(annotation: Any) -> list[Any]:
    # Optional[X], list[X], X | Y, Annotated[X, ...]: every type inside, so nested models are found.
    origin = getattr(annotation, "__origin__", None)
    args = getattr(annotation, "__args__", None)
    if not args:
        return [annotation]
    return [origin] * isinstance(origin, type) + [t for arg in args for t in _types(arg)]


def reason_for(error: dict[str, Any], allowed: Sequence[str] = (), subject: str = "") -> str:
    """One pydantic error (from `ValidationError.errors()`) as a sentence for the user."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "missing":
        return "missing required option"
    if kind == "extra_forbidden":
        if not allowed:
            return "unknown option"
        return f"unknown option; {subject or 'it'} accepts: {', '.join(sorted(allowed))}"
    if kind in ("bool_type", "bool_parsing"):
        return "expected true or false"
    if kind.startswith("int_"):
        return "expected an integer"
    if kind.startswith("float_"):
        return "expected a number"
    if kind == "string_pattern_mismatch":
        return f"{error.get('input')!r} is not allowed"
    if kind in ("string_too_short", "too_short"):
        return "must not be empty"
    if kind.startswith("string_"):
        return "expected a string"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "expected a mapping"
    if kind == "list_type":
        return "expected a list"
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected', '')}".replace("'", "")
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        words = {"greater_than": "above", "greater_than_equal": "at least", "less_than": "below",
                 "less_than_equal": "at most"}
        bound = next(iter(ctx.values()), "")
        bound = int(bound) if isinstance(bound, float) and bound.is_integer() else bound
        return "must be positive" if (kind, bound) == ("greater_than", 0) else f"must be {words[kind]} {bound}"
    return error["msg"]
