"""The `attiva` command: every subcommand documents itself, and bad paths get a clear message."""

import pytest

from activations.cli import build_parser, main

COMMANDS = ["generate", "ingest", "build", "summary", "contract", "sandbox", "demo", "identity"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: attiva " + command in capsys.readouterr().out


def test_help_lists_every_command():
    assert set(COMMANDS) <= set(build_parser()._subparsers._group_actions[0].choices)


def test_missing_landing_folder_is_a_clear_error(tmp_path, capsys):
    code = main(["ingest", "--landing", str(tmp_path / "nope"), "--warehouse", str(tmp_path / "w.duckdb")])
    assert code == 2 and "landing folder" in capsys.readouterr().err


def test_missing_warehouse_is_a_clear_error(tmp_path, capsys):
    assert main(["summary", "--warehouse", str(tmp_path / "none.duckdb")]) == 2
    assert "no warehouse" in capsys.readouterr().err
