"""``synset_builder.progress.phase``: 100% at the end on a terminal and in a log; an
error leaves nothing of the bar behind."""

from __future__ import annotations

import io

import pytest

from synset_builder.progress import phase


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def last_state(text: str) -> str:
    """What a terminal shows on the last line: what follows the last carriage return."""
    return text.rstrip("\n").split("\n")[-1].rsplit("\r", 1)[-1]


def test_a_log_gets_one_plain_line_at_the_end() -> None:
    log = io.StringIO()
    with phase(3, "decode train", "img", file=log) as bar:
        for _ in range(3):
            bar.update(1)
        assert log.getvalue() == ""  # silent while it runs: no redraws in a log
        bar.set_postfix(loss="0.500", refresh=False)
    (line,) = log.getvalue().splitlines()
    assert line.startswith("decode train: 100% 3/3 img in ") and line.endswith(" (loss=0.500)")
    assert "\r" not in log.getvalue()


def test_a_failed_phase_leaves_only_the_error() -> None:
    log, term = io.StringIO(), Terminal()
    for out in (log, term):
        with pytest.raises(RuntimeError), phase(3, "epoch 1/2", "batch", file=out) as bar:
            bar.update(1)
            raise RuntimeError("cut")
    assert log.getvalue() == ""
    assert last_state(term.getvalue()).strip() == ""  # the bar's line is cleared


def test_a_terminal_keeps_the_final_bar() -> None:
    term = Terminal()
    with phase(4, "decode val", "img", file=term) as bar:
        bar.update(4)
    assert "100%" in last_state(term.getvalue()) and "4/4" in last_state(term.getvalue())


def test_quiet_prints_nothing() -> None:
    for out in (io.StringIO(), Terminal()):
        with phase(2, "x", "img", enabled=False, file=out) as bar:
            bar.update(2)
        assert out.getvalue() == ""
