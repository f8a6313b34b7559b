"""`attiva studio --local`, what `make dev` starts: with no secret and no user it keeps a secret of its own
in data/studio/secret and adds an admin whose password it prints once; started again, it adds nobody and
the sessions signed before still count."""

from __future__ import annotations

import os
import re
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from activations.studio.sessions import COOKIE
from tests.studio.conftest import Visitor


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def local_console(tmp_path: Path, warehouse: Path) -> Iterator[tuple[str, str]]:
    """`attiva studio --local` in its own process; its URL and what it said before serving."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATTIVA_STUDIO")}
    env["ATTIVA_DATA"] = str(tmp_path / "data")
    process = subprocess.Popen([sys.executable, "-m", "activations.cli", "studio", "--local", "--port", str(port),
                                "--users", str(tmp_path / "users.yml"), "--warehouse", str(warehouse)],
                               env=env, stderr=subprocess.PIPE, text=True)
    said = ""
    try:
        while "attiva studio on http" not in said:
            line = process.stderr.readline()
            assert line, f"the console stopped: {said}"
            said += line
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield url, said
    finally:
        process.terminate()
        process.wait(10)


def test_make_dev_console_starts_with_nothing_set_up_and_keeps_its_secret(tmp_path, studio_warehouse):
    with local_console(tmp_path, studio_warehouse) as (url, said):
        password = re.search(r"'admin' \(admin\) was added to .*; sign in with the password (\S+) ", said)[1]
        secret = tmp_path / "data" / "studio" / "secret"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600 and secret.read_text() not in said
        admin = Visitor(url)
        assert admin.log_in("admin", password).url.endswith("/audiences")
        cookie = admin.session.cookies.get(COOKIE)
    assert password not in (tmp_path / "users.yml").read_text()  # only its hash

    with local_console(tmp_path, studio_warehouse) as (url, said):
        assert "was added" not in said  # somebody can sign in already: nobody added, no password shown
        again = Visitor(url)
        again.session.cookies.set(COOKIE, cookie)
        assert again.get("/audiences").url.endswith("/audiences")  # the first run's session still counts
