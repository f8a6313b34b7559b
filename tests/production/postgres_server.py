"""A throwaway PostgreSQL server: its own cluster in a temporary folder, on a free loopback port,
with a password (the instance reads it from the environment like in production), stopped and
deleted afterwards.

Debian keeps the server programs out of PATH, in /usr/lib/postgresql/<version>/bin. initdb
refuses to run as root, so as root the cluster belongs to the `postgres` system user the
Debian package creates, and the server programs run as that user (runuser).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "attiva"
# Durability is not what a test checks: skipping fsync makes the cluster start in a second or two.
FAST = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    user: str
    password: str

    def env(self, db_name: str) -> dict[str, str]:
        """The variables deploy/dagster.postgres.yaml reads."""
        return {"DAGSTER_PG_USERNAME": self.user, "DAGSTER_PG_PASSWORD": self.password,
                "DAGSTER_PG_HOST": self.host, "DAGSTER_PG_PORT": str(self.port), "DAGSTER_PG_DB": db_name}

    def connect(self, db_name: str = "postgres"):
        import psycopg2

        con = psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                               dbname=db_name)
        con.autocommit = True
        return con

    def create_database(self, db_name: str) -> None:
        con = self.connect()
        try:
            with con.cursor() as cur:
                cur.execute(f'create database "{db_name}"')
        finally:
            con.close()


def server_bin() -> Path | None:
    """The folder holding initdb and pg_ctl: on PATH, else Debian's newest /usr/lib/postgresql/*/bin."""
    if found := shutil.which("initdb"):
        return Path(found).parent
    installed = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                       key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    return installed[-1].parent if installed else None


def unavailable() -> str | None:
    """Why a server cannot be started here, or None."""
    if server_bin() is None:
        return "PostgreSQL's server programs (initdb, pg_ctl) are not installed (Debian package `postgresql`)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no `postgres` user to own the cluster (initdb refuses root)"
        if not shutil.which("runuser"):
            return "running as root without `runuser` to start PostgreSQL as the `postgres` user"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def throwaway_server() -> Iterator[Server]:
    if reason := unavailable():
        raise RuntimeError(reason)
    bindir = server_bin()
    # Under /tmp, not pytest's tmp_path: that is private to the current user, and as root the
    # server runs as `postgres`.
    base = Path(tempfile.mkdtemp(prefix="attiva-pg-"))
    as_owner: list[str] = []
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(base, owner.pw_uid, owner.pw_gid)
        as_owner = ["runuser", "-u", "postgres", "--"]
    password = secrets.token_urlsafe(18)
    pwfile = base / "pwfile"
    pwfile.write_text(password + "\n")
    pwfile.chmod(0o600)
    if as_owner:
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    data, log = base / "data", base / "server.log"
    server = Server("127.0.0.1", _free_port(), SUPERUSER, password)

    def run(*args: str) -> None:
        proc = subprocess.run([*as_owner, *args], capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            server_log = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{Path(args[0]).name} failed ({proc.returncode}):\n{proc.stdout[-2000:]}"
                               f"{proc.stderr[-2000:]}\n{server_log}")

    started = False
    try:
        run(str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, f"--pwfile={pwfile}",
            "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync")
        pwfile.unlink()
        options = f"-c listen_addresses=127.0.0.1 -p {server.port} -k {base} {FAST}"
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
        started = True
        yield server
    finally:
        if started:
            subprocess.run([*as_owner, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)
