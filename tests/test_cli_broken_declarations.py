"""One broken sync declaration (or destinations.yml entry) fails only the commands about that sync:
the others still plan, send and list, on a real DuckDB file and the sandbox over HTTP."""

from __future__ import annotations

import json

import pytest

from tests.test_cli_syncs import MIRROR, UPSERT, attiva, declaration, env, manifest  # noqa: F401 - env is a fixture

pytestmark = pytest.mark.xdist_group("sandbox_cli")

BROKEN = "aud_test__nowhere"


@pytest.fixture
def one_broken(env):  # noqa: F811 - the fixture imported above
    """UPSERT as before, plus a sync to a destination destinations.yml does not have."""
    (env.root / "manifest.json").write_text(json.dumps(manifest([
        declaration("hook", "upsert", UPSERT), declaration("nowhere", "upsert", BROKEN)])))
    return env


def test_a_sync_to_an_unknown_destination_fails_alone(one_broken, capsys):
    code, out, _ = attiva(capsys, "sync", UPSERT)
    assert code == 0 and "success" in out
    assert one_broken.received()[0] == 4

    code, _, err = attiva(capsys, "sync", BROKEN)
    assert code == 2
    assert "model 'aud_test', field 'meta.activations[1].destination': 'nowhere' is not in destinations.yml" in err
    assert len(err.strip().splitlines()) == 1


def test_sync_all_runs_the_others_and_exits_non_zero(one_broken, capsys):
    code, out, err = attiva(capsys, "sync", "--all")
    assert code == 2
    assert one_broken.received()[0] == 4
    assert UPSERT in out and f"{BROKEN} cannot run" in err and "'nowhere'" in err


def test_syncs_lists_the_broken_one_and_says_why(one_broken, capsys):
    code, out, err = attiva(capsys, "syncs")
    assert code == 2
    assert UPSERT in out and BROKEN in out and "broken declaration" in out
    assert f"{BROKEN} cannot run" in err
    code, _, _ = attiva(capsys, "plan", UPSERT)
    assert code == 0


def test_a_bad_destinations_entry_fails_only_the_syncs_sending_to_it(env, capsys):  # noqa: F811
    (env.root / "destinations.yml").write_text(
        "destinations:\n"
        "  hook: {type: webhook, path: /cli/upsert}\n"
        "  mirror_hook: {type: carrier_pigeon}\n")
    code, _, err = attiva(capsys, "sync", MIRROR)
    assert code == 2 and "mirror_hook" in err and "carrier_pigeon" in err
    code, out, _ = attiva(capsys, "sync", UPSERT)
    assert code == 0 and env.received()[0] == 4
