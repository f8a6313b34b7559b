"""`attiva studio --local` (what `make dev` runs): the console on a developer's machine with nothing
set up. Without ATTIVA_STUDIO_SECRET the session secret is one kept in data/studio/secret (made once,
mode 0600, so sessions survive a restart); with nobody in the users file a first admin is added
with a random password, printed once on the terminal and stored only as its argon2 hash."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from activations import settings
from activations.studio.users import add_user, load_users

FIRST_USER = "admin"


def local_secret(folder: Path | None = None) -> str:
    """ATTIVA_STUDIO_SECRET, else the one in data/studio/secret, made on first use."""
    if found := settings.studio_secret():
        return found
    path = (folder or settings.data_dir() / "studio") / "secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def first_user(users: Path) -> str | None:
    """With nobody in `users`, add the admin FIRST_USER (password ATTIVA_STUDIO_PASSWORD, else a random one);
    the password to print: the random one, "" when it was the variable's, None when nobody was added."""
    if users.exists() and load_users(users):
        return None
    given = settings.studio_password()
    password = given or secrets.token_urlsafe(12)
    add_user(users, FIRST_USER, "admin", password)
    return "" if given else password
