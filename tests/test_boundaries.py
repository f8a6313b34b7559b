"""The product apart from its test doubles and demo data: nothing in activations/ or orchestration/
imports the sandbox, the generator or the demo (nor the sandbox's own dependency, aiosmtpd), so a
production install runs without them. They import from the product, never the other way round."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("activations", "orchestration")
OUTSIDE = {"sandbox", "generator", "demo", "simulator", "aiosmtpd"}


def imported_packages(path: Path) -> set[tuple[int, str]]:
    """(line, top-level package) of every import in the file, including those inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {(node.lineno, alias.name.split(".")[0]) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add((node.lineno, node.module.split(".")[0]))
    return found


def test_the_product_imports_nothing_from_the_sandbox_the_generator_or_the_demo():
    files = [path for package in PRODUCT for path in sorted((ROOT / package).rglob("*.py"))]
    assert len(files) > 100  # the scan saw the product
    crossings = [f"{path.relative_to(ROOT)}:{line} imports {name}"
                 for path in files for line, name in sorted(imported_packages(path)) if name in OUTSIDE]
    assert not crossings, "\n".join(crossings)


def test_the_scan_sees_an_import_inside_a_function(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from sandbox.server import run\n    import generator.run\n")
    assert imported_packages(module) == {(2, "sandbox"), (3, "generator")}


def test_the_cli_lists_the_commands_the_packages_register_and_survives_a_broken_one(monkeypatch, capsys):
    import importlib.metadata

    from activations.cli import PLUGIN_COMMANDS, main

    registered = importlib.metadata.entry_points(group=PLUGIN_COMMANDS)
    assert {entry.name for entry in registered} == {"generate", "demo", "sandbox", "simulate"}
    broken = importlib.metadata.EntryPoint("mailer", "no_such_package.command:register", PLUGIN_COMMANDS)
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: [*registered, broken])
    assert main(["mailer"]) == 2
    assert "attiva mailer: unavailable, no_such_package.command:register could not be loaded" in capsys.readouterr().err
    assert main(["contract"]) == 0  # everything else still works
