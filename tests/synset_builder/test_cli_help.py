"""Every command's ``--help`` says what its source says: no word lost, no odd placeholder.

Help text is rendered as the user sees it (``synset ... --help``) for every
command and sub-command of the tree, and every bracketed phrase of a command's
description or an option's help (``[settings: 0.9]``,
``[candidates/clean/accepted]``) must come out whole; flags must not carry a
``<bool>`` placeholder.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import typer

from synset_builder.cli import app, main
from synset_builder.cli.common import fill_setting_defaults
from synset_builder.export.formats import WRITERS

BRACKETED = re.compile(r"\[[^\[\]]+\]")


def _walk(command: typer.core.TyperGroup, path: tuple[str, ...] = ()) -> Iterator[tuple]:
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _walk(sub, (*path, name))


TREE = list(_walk(typer.main.get_command(app)))  # type: ignore[arg-type]
for _, _command in TREE:  # the help as shown: settings' defaults filled in
    fill_setting_defaults(_command)


def _flat(text: str) -> str:
    """Help wraps long lines; compare with the whitespace folded."""
    return " ".join(text.split())


def test_the_tree_holds_the_bracketed_help_the_issue_named() -> None:
    texts = [_flat(c.help or "") for _, c in TREE]
    texts += [_flat(p.help or "") for _, c in TREE for p in c.params if hasattr(p, "help")]
    joined = "\n".join(texts)
    assert "[candidates/clean/accepted]" in joined
    assert "[settings: 0.9]" in joined


@pytest.mark.parametrize("path", [p for p, _ in TREE], ids=lambda p: " ".join(p) or "synset")
def test_help_keeps_bracketed_words_and_shows_no_bool_placeholder(path, capsys) -> None:
    command = dict(TREE)[path]
    assert main([*path, "--help"]) == 0
    shown = capsys.readouterr().out
    assert "<bool>" not in shown
    # Notes for developers belong in comments (the user trials read two in help).
    assert "helpers" not in shown and "Long by" not in shown, shown
    flat = _flat(shown)
    sources = [command.help or ""] + [p.help or "" for p in command.params if hasattr(p, "help")]
    for phrase in BRACKETED.findall(_flat("\n".join(sources))):
        assert phrase in flat, f"{' '.join(path)} --help lost {phrase!r}:\n{shown}"
    for param in command.params:
        if getattr(param, "is_flag", False):  # a flag takes no value: nothing after its name
            name = rf"(?<![\w-]){re.escape(param.opts[-1])}(?![\w-])"
            assert re.search(name, shown), (param.opts, shown)
            assert not re.search(rf"{name}\s*<", shown), (param.opts, shown)


def test_export_help_names_every_format() -> None:
    export = dict(TREE)[("export",)]
    (formats,) = [p for p in export.params if "--format" in p.opts]
    for name in WRITERS:
        assert name in formats.help


def test_export_help_is_for_users(capsys) -> None:
    """The first user trial read a developer's note in 'synset export --help'."""
    assert main(["export", "--help"]) == 0
    shown = _flat(capsys.readouterr().out)
    assert "Write train/val/test splits of the accepted images, with a datasheet." in shown
    assert "helpers" not in shown and "Long by" not in shown
