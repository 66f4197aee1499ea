"""Every ``synset`` command starts without paying for the others' libraries.

The package's import rule (``synset_builder/cli/__init__.py``) is checked in a
fresh interpreter, since this test process has long imported everything; and
since ``--help`` is built from whatever the package registered, it is checked
against the command list of the design, so laziness never hides a command.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

import synset_builder.cli
from synset_builder.cli import app

SYNSET = os.path.join(os.path.dirname(sys.executable), "synset")

# What `synset --version` and `--help` must not load: the stages' libraries.
HEAVY = (
    "numpy", "scipy", "PIL", "torch", "alembic", "fastapi", "argon2", "sqlalchemy",
    "pydantic_settings", "nltk", "imagehash", "requests", "uvicorn", "annotator_web", "rich",
    "numba", "llvmlite", "faiss",
)  # fmt: skip

# The contract of docs/architecture.md and the README: names may be added, never lost.
COMMANDS = {
    "init", "hierarchy", "crawl", "clean", "users", "gold", "serve", "votes", "consensus",
    "export", "verify", "train", "requeue", "takedown", "status",
}  # fmt: skip
SUBCOMMANDS = {
    "hierarchy": {"add", "add-custom", "queries", "show"},
    "consensus": {"evaluate", "annotators"},
    "users": {"add"},
    "gold": {"add"},
    "votes": {"import", "export"},
}

NOT_COMMANDS = {"__init__", "__main__", "common"}

LOADED = """
import json, sys
{action}
print(json.dumps(sorted({{name.split(".")[0] for name in sys.modules}})))
"""


@pytest.mark.parametrize(
    "action",
    [
        "import synset_builder.cli",
        "from synset_builder.cli import main; main(['--version'])",
        "from synset_builder.cli import main; main(['--help'])",
        "from synset_builder.cli import main; main(['hierarchy', '--help'])",
    ],
)
def test_starting_the_cli_loads_no_heavy_library(action: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LOADED.format(action=action)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert sorted(loaded & set(HEAVY)) == []


def _listed(help_text: str) -> set[str]:
    """The command names of a click help page's Commands section."""
    names, inside = set(), False
    for line in help_text.splitlines():
        if line.strip() == "Commands:":
            inside = True
        elif inside and line.startswith("  ") and line.strip():
            if not line.startswith("   "):  # a wrapped description is indented further
                names.add(line.split()[0])
        elif inside and line.strip():
            inside = False
    return names


def _commands_of(module: str) -> set[str]:
    """What one module of the package registers, on an app of its own."""
    alone = typer.Typer()
    importlib.import_module(f"synset_builder.cli.{module}").register(alone)
    alone.command("placeholder")(lambda: None)  # a group, even for one command
    return set(typer.main.get_command(alone).commands) - {"placeholder"}  # type: ignore[attr-defined]


def test_help_lists_every_command_and_sub_command() -> None:
    done = subprocess.run([SYNSET, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    top = _listed(done.stdout)
    assert top >= COMMANDS
    # Every module of the package, whether the design names its commands or not.
    folder = Path(synset_builder.cli.__file__).parent
    for module in sorted(p.stem for p in folder.glob("*.py") if p.stem not in NOT_COMMANDS):
        assert _commands_of(module) <= top, module
    registered = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    for group, expected in SUBCOMMANDS.items():
        sub = subprocess.run([SYNSET, group, "--help"], capture_output=True, text=True, timeout=60)
        assert sub.returncode == 0, sub.stderr
        assert expected <= _listed(sub.stdout), (group, sub.stdout)
        assert set(registered[group].commands) == _listed(sub.stdout)
