"""Progress that ends at 100% on a terminal and in a log, and never hides an error.

A tqdm bar redraws one line with carriage returns: right on a terminal, garbage
in a log file or a CI transcript (every redraw kept, the last one at whatever
share the run had reached when it was cut off). So a :func:`phase` is

* on a terminal, a tqdm bar whose last state (100% and the count) stays when the
  phase ends well, and which is cleared when it raises, so the error the command
  prints next is the only thing on the line;
* anywhere else, silent while it runs and one plain line when it ends well:
  ``decode train: 100% 30/30 img in 0.4 s (loss=1.234)``, nothing when it fails
  (the error says what happened).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from tqdm import tqdm


class _Plain:
    """The bar's interface where there is no terminal: counts, prints once at the end."""

    def __init__(self, total: int | None, desc: str, unit: str, file: TextIO) -> None:
        self.total, self.desc, self.unit, self.file = total, desc, unit, file
        self.n = 0
        self.postfix = ""
        self.t0 = time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix(self, refresh: bool = True, **values: object) -> None:  # noqa: ARG002
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def refresh(self) -> None:
        """Nothing to redraw (a caller that changed ``total`` asks for one)."""

    def finish(self) -> None:
        total = self.total if self.total is not None else self.n
        share = f"{100 * self.n // total}%" if total else "100%"
        extra = f" ({self.postfix})" if self.postfix else ""
        seconds = time.perf_counter() - self.t0
        print(f"{self.desc}: {share} {self.n}/{total} {self.unit} in {seconds:.1f} s{extra}",
              file=self.file, flush=True)  # fmt: skip


@contextmanager
def phase(
    total: int | None, desc: str, unit: str, *, enabled: bool = True, file: TextIO | None = None
) -> Iterator[tqdm | _Plain]:
    """A progress display for one phase of ``total`` steps (see the module docstring);
    ``enabled=False`` (``--quiet``): nothing at all."""
    out = file if file is not None else sys.stderr
    if not enabled:
        yield _Plain(total, desc, unit, out)
        return
    if not out.isatty():
        plain = _Plain(total, desc, unit, out)
        yield plain
        plain.finish()
        return
    bar = tqdm(total=total, desc=desc, unit=unit, file=out, leave=True)
    try:
        yield bar
    except BaseException:
        bar.leave = False
        raise
    finally:
        bar.close()
