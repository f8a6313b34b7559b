"""`attiva studio`: its flags, and what they do (starlette and uvicorn are imported only when serving)."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from activations import settings

DESCRIPTION = """\
The marketer's console: audiences with their destinations and last syncs, an audience builder
(conditions, a live size, saved as a dbt model on a git branch for review), customers (search by
email, phone or any id; profile, consent and its history, latest events, messages with the reason,
audiences, identity; an admin may erase one with `attiva forget`), and campaigns (performance,
uplift, A/B tests, each step's email rendered, test sends, pause/resume).

Users sign in with a name and password kept in studio_users.yml (ATTIVA_STUDIO_USERS) as argon2
hashes; `--add-user NAME --role viewer|marketer|admin` adds one (the password from
ATTIVA_STUDIO_PASSWORD, else asked). A viewer sees no personal data. Sessions are cookies signed
with ATTIVA_STUDIO_SECRET, which must be set. docs/studio.md."""

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `attiva studio` flags."""
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (this machine only: 127.0.0.1, "
                                                             "localhost or ::1)")
    parser.add_argument("--port", type=int, default=settings.studio_port(),
                        help=f"port (default ATTIVA_STUDIO_PORT or {settings.STUDIO_PORT})")
    parser.add_argument("--users", type=Path, default=None,
                        help="users file (default ATTIVA_STUDIO_USERS or studio_users.yml at the project root)")
    parser.add_argument("--add-user", metavar="NAME", help="add a user (or change their role and password), exit")
    parser.add_argument("--role", help="with --add-user: viewer (sees no personal data), marketer or admin")
    parser.add_argument("--local", action="store_true",
                        help="for `make dev`: without ATTIVA_STUDIO_SECRET use one kept in data/studio/secret, and "
                             "with nobody in the users file add an admin whose password is printed once")


def run_from_args(args: argparse.Namespace) -> int:
    """Add a user, or serve the console until interrupted."""
    from activations.studio.sessions import StudioConfigError
    from activations.studio.users import UsersFileError, add_user

    users = Path(args.users or settings.studio_users_path())
    try:
        if args.add_user:
            if not args.role:
                raise UsersFileError("--role is required: viewer, marketer or admin", user=args.add_user)
            password = settings.studio_password() or _ask_password(args.add_user)
            new = add_user(users, args.add_user, args.role, password)
            print(f"user {args.add_user!r} ({args.role}) {'added to' if new else 'changed in'} {users}",
                  file=sys.stderr)
            return 0
        if args.host not in LOOPBACK:
            print(f"attiva studio: serves only on this machine ({', '.join(LOOPBACK)}), not on {args.host}: its "
                  "cookies travel without TLS; put a TLS proxy on this machine in front of it", file=sys.stderr)
            return 2
        from activations.serve.app import run
        from activations.studio.app import Studio, create_app

        studio = Studio(users, Path(args.warehouse or settings.warehouse_path()))
        secret = settings.studio_secret()
        if args.local:
            from activations.studio.local import FIRST_USER, first_user, local_secret

            secret = local_secret()
            password = first_user(users)
            if password is not None:
                said = f"the password {password} (shown this once" if password else "ATTIVA_STUDIO_PASSWORD ("
                print(f"attiva studio: no user yet, so {FIRST_USER!r} (admin) was added to {users}; sign in with "
                      f"{said}; change it with `attiva studio --add-user {FIRST_USER} --role admin`)", file=sys.stderr)
        app = create_app(studio, secret)
    except (UsersFileError, StudioConfigError) as exc:
        print(f"attiva studio: {exc}", file=sys.stderr)
        return 2
    print(f"attiva studio on http://{args.host}:{args.port} (users from {users}, warehouse {studio.warehouse_path})",
          file=sys.stderr)
    run(app, args.host, args.port)
    return 0


def _ask_password(name: str) -> str:
    from activations.studio.users import UsersFileError

    if not sys.stdin.isatty():
        raise UsersFileError("no terminal to ask the password on: set ATTIVA_STUDIO_PASSWORD", user=name,
                             field="password")
    first = getpass.getpass(f"password for {name}: ")
    if getpass.getpass("again: ") != first:
        raise UsersFileError("the two passwords differ", user=name, field="password")
    return first
