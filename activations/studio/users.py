"""Who may sign in to the console, with which role: studio_users.yml (ATTIVA_STUDIO_USERS).

The file keeps only argon2id hashes (argon2-cffi's PasswordHasher, its recommended parameters),
never a password: `attiva studio --add-user NAME --role ROLE` writes one.

    users:
      giulia: {role: marketer, password_hash: "$argon2id$v=19$m=65536,t=3,p=4$..."}
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from activations.config.errors import ConfigError, first_problem

# What each role sees: a viewer no personal data (masked identifiers, no names), a marketer and an
# admin everything; a marketer and an admin may pause, resume and test-send campaigns; only an admin
# may erase a customer (and will change settings once that page exists).
ROLES = ("viewer", "marketer", "admin")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
HEADER = """\
# Users of `attiva studio`: argon2id hashes only, never passwords.
# Add or change one with `attiva studio --add-user NAME --role viewer|marketer|admin`.
"""

_hasher = PasswordHasher()
# Checked when the name is unknown, so a wrong name costs as long as a wrong password.
_UNKNOWN = _hasher.hash("no such user")


class UsersFileError(ConfigError):
    """A mistake in the users file or in --add-user, in the one configuration-error shape."""

    def __init__(self, reason: str, *, file: str | None = None, user: str | None = None,
                 field: str | None = None) -> None:
        super().__init__(reason, file=file, entry=user, entry_kind="user", field=field)


class UserEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal[ROLES] = Field(description="viewer, marketer or admin")  # type: ignore[valid-type]
    password_hash: str = Field(pattern=r"^\$argon2", description="an argon2 hash (`attiva studio --add-user`)")


class UsersFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    users: dict[str, UserEntry] = Field(default_factory=dict)


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password_hash: str

    @property
    def sees_personal_data(self) -> bool:
        return self.role != "viewer"

    @property
    def may_act(self) -> bool:
        """Changes things (pause, resume, test sends): marketers and admins, never a viewer."""
        return self.role in ("marketer", "admin")

    @property
    def may_erase(self) -> bool:
        """Erases a customer (`attiva forget` from the customer's page): admins only."""
        return self.role == "admin"


def load_users(path: Path) -> dict[str, User]:
    """The users file by name; a missing file means nobody can sign in yet."""
    if not path.exists():
        return {}
    raw = yaml.safe_load(path.read_text()) or {}
    try:
        parsed = UsersFile.model_validate(raw)
    except ValidationError as exc:
        where, reason = first_problem(exc, UsersFile)
        raise UsersFileError(reason, file=str(path), field=where) from None
    for name in parsed.users:
        _check_name(name, path)
    return {name: User(name, entry.role, entry.password_hash) for name, entry in parsed.users.items()}


def add_user(path: Path, name: str, role: str, password: str) -> bool:
    """Store `name` with `role` and the hash of `password` (replacing an existing user's role and
    password); True if the user is new."""
    if role not in ROLES:
        raise UsersFileError(f"unknown role {role!r}: expected one of {', '.join(ROLES)}", user=name, field="role")
    _check_name(name, None)
    if len(password) < 8:
        raise UsersFileError("the password is shorter than 8 characters", user=name, field="password")
    users = load_users(path)
    new = name not in users
    users[name] = User(name, role, _hasher.hash(password))
    body = {"users": {u.name: {"role": u.role, "password_hash": u.password_hash} for u in users.values()}}
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(HEADER + yaml.safe_dump(body, sort_keys=True, width=200))
    os.chmod(tmp, 0o600)  # hashes are slow to crack, not impossible: readable by its owner only
    os.replace(tmp, path)
    return new


def authenticate(users: dict[str, User], name: str, password: str) -> User | None:
    """The user if `password` is theirs, else None (the same work either way)."""
    user = users.get(name)
    try:
        _hasher.verify(user.password_hash if user else _UNKNOWN, password)
    except (VerificationError, InvalidHashError):
        return None
    return user


def _check_name(name: str, path: Path | None) -> None:
    if not NAME.match(name):
        raise UsersFileError("a user name is 1-64 letters, digits, '.', '_', '@' or '-'",
                             file=str(path) if path else None, user=name)
