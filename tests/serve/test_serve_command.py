"""`attiva serve`: --help documents host, port and keys; --add-key prints a key once and stores its hash."""

from __future__ import annotations

import hashlib

import pytest
import yaml

from activations.cli import main
from activations.serve.keys import load_keys


def test_help_documents_host_port_and_keys(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: attiva serve" in out
    for words in ("--host", "default 127.0.0.1", "--port", "8766", "--keys", "sha256", "Retry-After"):
        assert words in out


def test_add_key_prints_it_once_and_stores_only_its_hash(tmp_path, capsys):
    keys_file = tmp_path / "serve_keys.yml"
    assert main(["serve", "--keys", str(keys_file), "--add-key", "storefront", "--browser", "--rate", "5"]) == 0
    key = capsys.readouterr().out.strip()
    assert key.startswith("atv_") and key not in keys_file.read_text()
    stored = load_keys(keys_file).keys[0]
    assert stored.sha256 == hashlib.sha256(key.encode()).hexdigest()
    assert stored.kind == "browser" and stored.fields == {"first_name", "recommendations", "promotions"}
    assert stored.per_second == 5

    assert main(["serve", "--keys", str(keys_file), "--add-key", "crm", "--fields", "email,first_name",
                 "--endpoints", "profiles"]) == 0
    entries = yaml.safe_load(keys_file.read_text())["keys"]
    assert [e["name"] for e in entries] == ["storefront", "crm"]
    assert entries[1]["fields"] == ["email", "first_name"] and entries[1]["endpoints"] == ["profiles"]
    capsys.readouterr()
    assert main(["serve", "--keys", str(keys_file), "--add-key", "crm"]) == 2  # names are unique
    assert main(["serve", "--keys", str(keys_file), "--add-key", "x", "--fields", "password"]) == 2
    assert "unknown password" in capsys.readouterr().err


def test_the_example_keys_file_loads():
    from activations.settings import project_root

    config = load_keys(project_root() / "serve_keys.yml")
    assert all(len(k.sha256) == 64 for k in config.keys)


def test_the_storefront_page_is_packaged_with_the_code():
    # A non-editable install carries only what package-data lists: the page must be in it.
    import tomllib
    from pathlib import Path, PurePosixPath

    import activations.serve
    from activations.settings import project_root

    config = tomllib.loads((project_root() / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["activations.serve"]
    package = Path(activations.serve.__file__).parent
    files = [p.relative_to(package).as_posix() for p in (package / "static").rglob("*") if p.is_file()]
    assert {"static/index.html", "static/storefront.js"} <= set(files)
    assert all(any(PurePosixPath(f).match(p) for p in patterns) for f in files), (files, patterns)


def test_every_key_declares_its_kind_and_a_browser_key_sees_only_what_a_storefront_shows(tmp_path, capsys):
    from activations.serve.keys import KeysFileError

    keys_file = tmp_path / "serve_keys.yml"
    entry = {"name": "old", "sha256": "a" * 64}
    keys_file.write_text(yaml.safe_dump({"keys": [entry]}))
    with pytest.raises(KeysFileError, match="key 'old', field 'kind': missing required option: server .* or browser"):
        load_keys(keys_file)  # a key written before kinds: refused, not silently read as either
    keys_file.write_text(yaml.safe_dump({"keys": [{**entry, "kind": "browser", "fields": ["first_name", "lead_score"]}]}))
    with pytest.raises(KeysFileError, match="browser key is public and may see only .* not lead_score"):
        load_keys(keys_file)
    keys_file.write_text(yaml.safe_dump({"keys": [{**entry, "kind": "browser"}]}))
    assert load_keys(keys_file).keys[0].fields == {"first_name", "recommendations", "promotions"}
    assert main(["serve", "--keys", str(tmp_path / "new.yml"), "--add-key", "x", "--browser", "--fields",
                 "first_name,email"]) == 2
    assert "not email" in capsys.readouterr().err
