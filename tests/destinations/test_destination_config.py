"""destinations.yml loading: defaults, environment, and errors that name file, destination and field."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from activations.destinations.base import Capabilities, Destination, DestinationConfigError, Secret
from activations.destinations.config import REGISTRY, build_client, env_prefix, load_destinations, parse_destination

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "destinations.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_root_file_loads_and_builds_every_type(monkeypatch, tmp_path):
    monkeypatch.setenv("ATTIVA_DATA", str(tmp_path))
    configs = load_destinations(ROOT / "destinations.yml", env={})
    assert {c.type for c in configs.values()} == set(REGISTRY)
    for config in configs.values():
        client = build_client(config)
        try:
            assert isinstance(client, Destination)
            assert isinstance(client.capabilities, Capabilities)
            assert client.capabilities.type == config.type
        finally:
            client.close()


def test_defaults_point_at_the_sandbox(tmp_path):
    path = write(tmp_path, "destinations:\n  crm-main:\n    type: hubspot\n")
    config = load_destinations(path, env={})["crm-main"]
    assert config.url == "http://127.0.0.1:8765/hubspot"
    assert config.token.reveal() == "sandbox-hubspot-token"
    config = load_destinations(path, env={"ATTIVA_SANDBOX_PORT": "9999"})["crm-main"]
    assert config.url == "http://127.0.0.1:9999/hubspot"


def test_url_and_token_come_from_the_instance_environment(tmp_path):
    path = write(tmp_path, "destinations:\n  crm-main:\n    type: hubspot\n")
    assert env_prefix("crm-main") == "ATTIVA_CRM_MAIN"
    env = {"ATTIVA_CRM_MAIN_URL": "https://api.hubapi.com", "ATTIVA_CRM_MAIN_TOKEN": "pat-eu1-secret"}
    config = load_destinations(path, env=env)["crm-main"]
    assert config.url == "https://api.hubapi.com"
    assert config.token.reveal() == "pat-eu1-secret"
    assert "pat-eu1-secret" not in repr(config) and "pat-eu1-secret" not in str(config)


def test_a_real_url_without_a_token_is_refused(tmp_path):
    path = write(tmp_path, "destinations:\n  crm:\n    type: hubspot\n")
    with pytest.raises(DestinationConfigError) as err:
        load_destinations(path, env={"ATTIVA_CRM_URL": "https://api.hubapi.com"})
    assert "ATTIVA_CRM_TOKEN" in str(err.value)


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ("  ads:\n    type: tiktok\n", "type", "unknown type"),
        ("  ads:\n    audience_id: '1'\n", "type", "missing"),
        ("  ads:\n    type: meta\n", "audience_id", "missing"),
        ("  ads:\n    type: meta\n    audience_id: '1'\n    audeince: x\n", "audeince", "unknown option"),
        ("  ads:\n    type: meta\n    audience_id: '1'\n    batch_size: 20000\n", "batch_size", "platform"),
        ("  ads:\n    type: meta\n    audience_id: '1'\n    batch_size: many\n", "batch_size", "integer"),
        ("  ads:\n    type: meta\n    audience_id: '1'\n    api_version: latest\n", "api_version", "version"),
        ("  ads:\n    type: meta\n    audience_id: '1'\n    token: abc\n", "token", "secrets"),
        (
            "  ads:\n    type: google\n    operating_account_id: '1'\n    user_list_id: '2'\n",
            "ad_user_data_consent",
            "missing",
        ),
        ("  ads:\n    type: file_export\n    folder: out\n    format: xlsx\n", "format", "one of"),
    ],
)
def test_errors_name_the_file_destination_and_field(tmp_path, body, field, words):
    path = write(tmp_path, "destinations:\n" + body)
    with pytest.raises(DestinationConfigError) as err:
        for config in load_destinations(path, env={}).values():
            build_client(config).close()
    message = str(err.value)
    assert str(path) in message and "'ads'" in message and f"'{field}'" in message and words in message
    assert err.value.field == field and err.value.destination == "ads" and err.value.file == str(path)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(DestinationConfigError, match="file not found"):
        load_destinations(tmp_path / "nope.yml", env={})
    with pytest.raises(DestinationConfigError, match="YAML"):
        load_destinations(write(tmp_path, "destinations: [\n"), env={})
    with pytest.raises(DestinationConfigError, match="destinations"):
        load_destinations(write(tmp_path, "- a\n"), env={})


def test_numeric_ids_are_read_as_strings(tmp_path):
    path = write(tmp_path, "destinations:\n  mail:\n    type: brevo\n    list_id: 1234\n")
    assert load_destinations(path, env={})["mail"].options["list_id"] == "1234"


def test_a_hubspot_list_is_named_per_sync_not_per_destination(tmp_path):
    # The retired destination-wide list id, and the per-sync name set in the wrong place, both say where it goes.
    old = write(tmp_path, "destinations:\n  crm:\n    type: hubspot\n    list_id: attiva-audiences\n")
    with pytest.raises(DestinationConfigError, match="list_id.*named per sync"):
        load_destinations(old, env={})
    misplaced = write(tmp_path, "destinations:\n  crm:\n    type: hubspot\n    list: Champions\n")
    with pytest.raises(DestinationConfigError, match="'list'.*set per sync"):
        load_destinations(misplaced, env={})
    config = load_destinations(write(tmp_path, "destinations:\n  crm:\n    type: hubspot\n"), env={})["crm"]
    assert config.for_sync({"list": 42}).options["list"] == "42"
    with pytest.raises(DestinationConfigError, match="plan"):
        config.for_sync({"plan": "private_app"})  # not a per-sync option


def test_limits_can_only_be_tightened(tmp_path):
    config = parse_destination("crm", {"type": "hubspot", "batch_size": 50, "max_concurrency": 2}, env={})
    client = build_client(config)
    assert client.capabilities.batch_size == 50 and client.capabilities.max_concurrency == 2
    client.close()
    config = parse_destination("crm", {"type": "hubspot", "requests_per_window": 500, "window_seconds": 10}, env={})
    with pytest.raises(DestinationConfigError, match="faster"):
        build_client(config)


def test_capabilities_follow_options(tmp_path):
    with_list = build_client(parse_destination("a", {"type": "hubspot", "plan": "private_app"}, env={}).for_sync(
        {"list": "Champions"}))
    without = build_client(parse_destination("b", {"type": "hubspot"}, env={}))
    assert "mirror" in with_list.capabilities.modes and "mirror" not in without.capabilities.modes
    assert with_list.capabilities.requests_per_window == 95  # two requests per send with a list
    assert without.capabilities.requests_per_window == 100
    with_list.close()
    without.close()


def test_secret_never_prints_and_cannot_be_pickled():
    secret = Secret("hunter2")
    assert str(secret) == "***" and "hunter2" not in repr(secret) and f"{secret}" == "***"
    assert secret.redact("token hunter2 leaked") == "token *** leaked"
    with pytest.raises(TypeError):
        pickle.dumps(secret)
