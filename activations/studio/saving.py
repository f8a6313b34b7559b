"""Saving a built audience for review: its model (`aud_<name>.sql`) and YAML (description, contract,
columns with their tests, an optional sync declaration) committed on a new branch `audiences/<name>`,
by the console's user, for an engineer to read and merge. Nothing runs until they do.

The commit is made with git's plumbing in a temporary index (hash-object, read-tree, update-index,
write-tree, commit-tree, update-ref), so the project's working tree, its index and the checked-out
branch are never touched: someone editing files in the checkout loses nothing. It is refused while
that working tree has uncommitted changes all the same (the commit is made on HEAD, which would not
be what they see), and when the name is taken by a model or a branch.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from activations import settings
from activations.studio.builder import CONTACT_COLUMNS, UNSAFE_TEXT, Column

NAME = re.compile(r"aud_[a-z0-9_]+")
MAX_NAME = 60
MAX_DESCRIPTION = 300
AUDIENCES_DIR = "dbt_project/models/audiences"
BRANCH_PREFIX = "audiences/"
# The audience column an identifier kind of a destination is sent from.
IDENTIFIER_COLUMNS = {"email": "email", "phone": "phone", "first_name": "first_name", "last_name": "last_name",
                      "country": "country", "external_id": "customer_id"}
SYNC_CONSENTS = ("email_marketable", "consent_ads", "consent_sms", "consent_email", "none")


class Refused(ValueError):
    """Saving was refused, and why (nothing was written)."""


@dataclass(frozen=True)
class SyncChoice:
    """The sync the marketer chose: a configured destination, a mode, the consent column a row needs."""

    destination: str
    mode: str
    consent: str


@dataclass(frozen=True)
class Saved:
    branch: str
    commit: str


def check_name(name: str, description: str) -> None:
    if not NAME.fullmatch(name) or len(name) > MAX_NAME:
        raise Refused(f"the name must be aud_ followed by lower-case letters, digits or _ (at most {MAX_NAME} "
                      f"characters), e.g. aud_coffee_fans; {name!r} is not")
    if not description.strip():
        raise Refused("say in a sentence who the audience is (the description)")
    if UNSAFE_TEXT.search(description) or len(description) > MAX_DESCRIPTION:
        raise Refused(f"the description is one line of at most {MAX_DESCRIPTION} characters, without braces or "
                      "backslashes")


def sync_entry(name: str, choice: SyncChoice, destinations) -> dict[str, Any]:
    """The `meta.activations` entry for `choice`: identifiers are every kind the destination accepts that
    an audience carries; an email tool keeping one contact per address gets `key: email`; a destination
    whose syncs name their own list (HubSpot) gets one named after the audience."""
    from activations.destinations.config import destination_class

    config = destinations.configs.get(choice.destination)
    if config is None:
        problem = destinations.problem(choice.destination)
        raise Refused(f"destination {choice.destination!r} " + (f"cannot be used: {problem}" if problem else
                      f"is not in destinations.yml ({', '.join(sorted(destinations.configs))})"))
    cls = destination_class(config.type)
    capabilities = cls.platform_capabilities(config)
    entry: dict[str, Any] = {"destination": choice.destination, "mode": choice.mode, "consent": choice.consent,
                             "identifiers": {kind: IDENTIFIER_COLUMNS[kind] for kind in capabilities.identifiers
                                             if kind in IDENTIFIER_COLUMNS}}
    if capabilities.required_identifiers == ("email",):
        entry["key"] = "email"
    if "list" in cls.options and cls.options["list"].per_sync:
        entry["list"] = f"Attiva {name}"
    return entry


def check_sync(name: str, columns: list[str], entry: dict[str, Any], destinations) -> None:
    """The project's own validator (activations.manifest.declared_syncs) on the entry, as if the model
    were in the manifest already; Refused with its reason."""
    from activations.manifest import declared_syncs

    node = {"resource_type": "model", "name": name, "schema": "audiences", "unique_id": f"model.attiva.{name}",
            "description": "", "columns": {c: {} for c in columns},
            "config": {"meta": {"activations": [entry]}}, "original_file_path": f"{AUDIENCES_DIR}/{name}.yml"}
    found = declared_syncs({"nodes": {node["unique_id"]: node}}, destinations)
    if found.broken:
        raise Refused(f"the sync cannot work: {found.broken[0].reason}")


def model_yaml(name: str, description: str, columns: list[Column], sync: dict[str, Any] | None) -> str:
    """The model's YAML, like _audiences.yml's entries: contract enforced, each column typed, customer_id
    tested unique, not null and present in customers."""
    config: dict[str, Any] = {"contract": {"enforced": True}}
    if sync:
        config["meta"] = {"activations": [sync]}
    entries = []
    for col in columns:
        entry: dict[str, Any] = {"name": col.name, "data_type": col.data_type}
        if col.description:
            entry["description"] = col.description
        if col.name == "customer_id":
            entry["data_tests"] = ["unique", "not_null", {"relationships": {
                "arguments": {"to": "ref('customers')", "field": "customer_id"}}}]
        entries.append(entry)
    body = {"version": 2, "models": [{"name": name, "description": description, "config": config,
                                      "columns": entries}]}
    return ("# Built in the console (attiva studio): review the conditions in the .sql beside it.\n" +
            yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=110))


def model_columns(all_columns: dict[str, Column], extra: list[Column]) -> list[Column]:
    """The contact columns every audience carries, then the traits the conditions test."""
    return [all_columns[name] for name in CONTACT_COLUMNS] + extra


def git(root: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None,
        check: bool = True) -> str:
    proc = subprocess.run(["git", *args], cwd=root, env={**os.environ, **(env or {})}, input=stdin,
                          capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise Refused(f"git {args[0]} failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


def dirty_files(root: Path) -> list[str]:
    """Uncommitted changes in the project's working tree (modified, staged or untracked, not ignored)."""
    return [line[3:] for line in git(root, "status", "--porcelain", "--untracked-files=all", ".").splitlines()]


def name_taken(root: Path, name: str) -> str | None:
    """Why `name` cannot be used: a model of that name in HEAD or on disk, or the branch already there."""
    committed = git(root, "ls-tree", "-r", "--name-only", "HEAD", "--", "dbt_project/models").splitlines()
    on_disk = [str(p.relative_to(root)) for p in (root / "dbt_project" / "models").rglob(f"{name}.*")]
    for path in committed + on_disk:
        stem = Path(path).name.rsplit(".", 1)[0]
        if stem == name and Path(path).suffix in (".sql", ".py"):
            return f"a model named {name} exists already ({path}): choose another name"
    if git(root, "rev-parse", "--verify", "--quiet", f"refs/heads/{BRANCH_PREFIX}{name}", check=False).strip():
        return (f"the branch {BRANCH_PREFIX}{name} exists already (saved before, not merged yet?): choose another "
                "name, or ask an engineer to merge or delete it")
    return None


def author_email(user: str) -> str:
    return f"{user}@{settings.studio_email_domain()}"


def save(root: Path, name: str, files: dict[str, str], author: str, message: str) -> Saved:
    """Commit `files` (file name in the audiences folder -> text) on HEAD as the new branch
    audiences/<name>, without touching the working tree, the index or the checked-out branch."""
    if taken := name_taken(root, name):
        raise Refused(taken)
    if dirty := dirty_files(root):
        shown = ", ".join(dirty[:10]) + (f" and {len(dirty) - 10} more" if len(dirty) > 10 else "")
        raise Refused(f"the project's git working tree has uncommitted changes ({shown}): commit or stash them "
                      "first, so the new branch starts from what is checked out")
    prefix = git(root, "rev-parse", "--show-prefix").strip()
    head = git(root, "rev-parse", "--verify", "HEAD").strip()
    identity = {"GIT_AUTHOR_NAME": author, "GIT_AUTHOR_EMAIL": author_email(author),
                "GIT_COMMITTER_NAME": author, "GIT_COMMITTER_EMAIL": author_email(author)}
    with tempfile.TemporaryDirectory(prefix="attiva-studio-index-") as scratch:
        index = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        git(root, "read-tree", head, env=index)
        for file_name, text in files.items():
            blob = git(root, "hash-object", "-w", "--stdin", stdin=text).strip()
            git(root, "update-index", "--add", "--cacheinfo", f"100644,{blob},{prefix}{AUDIENCES_DIR}/{file_name}",
                env=index)
        tree = git(root, "write-tree", env=index).strip()
    commit = git(root, "commit-tree", tree, "-p", head, "-F", "-", env=identity, stdin=message).strip()
    branch = f"{BRANCH_PREFIX}{name}"
    # The empty old value makes the update fail if the branch appeared meanwhile: never overwritten.
    git(root, "update-ref", "-m", f"attiva studio: {name} by {author}", f"refs/heads/{branch}", commit, "")
    return Saved(branch, commit)


def show(root: Path, name: str) -> str | None:
    """The saved branch's commit as an engineer reviews it: `git show --stat --patch`; None if no such branch."""
    if not NAME.fullmatch(name):
        return None
    ref = f"refs/heads/{BRANCH_PREFIX}{name}"
    if not git(root, "rev-parse", "--verify", "--quiet", ref, check=False).strip():
        return None
    return git(root, "show", "--stat", "--patch", "--format=commit %H%nAuthor: %an <%ae>%nDate:   %ad%n%n%B", ref)
