"""How long a synset's "below its goal" answer may be reused before it is counted again.

Why: whether a synset has reached its goal (``goal`` accepted items) is an aggregate
that changes slowly, yet every task fetch asked it: counting the synset's candidates
up to the goal, then its accepted items up to the goal, a measurable share of
PostgreSQL's time per fetch under ``bench/web_load.py`` (all of a synset's
candidates read when the goal is above their count), and more with a real goal
below the candidate count, where it probes every candidate's consensus row until it
has found the goal's worth.

Each worker process keeps the last answer per synset for ``web_goal_recheck_seconds``
(0: count on every fetch). The answer is tied to the goal it was counted for, and
every fetch reads the synset's row, so a curator's new goal takes effect at once;
only the arrival at the goal is seen up to that many seconds late, which serves a
few more pages than the goal needed (leases taken just before it do the same).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class GoalCache:
    """The last goal answer per synset: ``(goal, below goal, monotonic time counted)``."""

    seconds: float
    _answers: dict[int, tuple[int | None, bool, float]] = field(default_factory=dict)

    def known(self, synset_id: int, goal: int | None) -> bool | None:
        """The fresh answer for this synset at this goal, or None: count it again."""
        answer = self._answers.get(synset_id)
        if answer is None or self.seconds <= 0:
            return None
        counted_goal, below, at = answer
        if counted_goal != goal or time.monotonic() - at > self.seconds:
            return None
        return below

    def remember(self, synset_id: int, goal: int | None, below: bool) -> None:
        if self.seconds > 0:
            self._answers[synset_id] = (goal, below, time.monotonic())
