"""Who answers without looking: the rule that excludes an annotator, and why.

Kept apart from the model of the votes (:mod:`.model`), which applies it
(:meth:`.model.SkillState.judge`): the rule is read from the settings
(``DynamicConfig.exclusion``) and judged on plain numbers, a skill and a few
counts, whatever path measured them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ExclusionRule:
    """Exclude annotators who answer without looking, as soon as the evidence is clear.

    * the same answer to nearly every one of ``min_votes`` decided items of which
      a fair share were something else (always-yes, always-no);
    * kappa below ``floor`` over ``2 * min_votes`` decided votes (random clicks;
      ``floor=0.1`` is a binary balanced accuracy of 0.55). Kappa measured on
      20 votes has a spread of about 0.2, so a real but weak annotator would be
      thrown out as often as a clicker; and soft credit pulls a real
      annotator's measured kappa toward 0, so the floor stays low;
    * gold accuracy near chance over ``min_votes // 2`` gold answers.
    """

    floor: float = 0.1
    min_votes: int = 20

    def reason(
        self, skill: float, votes: float, gold_total: int, gold_correct: int, k: int = 2
    ) -> str | None:
        """Why this record gets its annotator excluded, or None."""
        if gold_total >= max(self.min_votes // 2, 1):
            gold_kappa = (gold_correct / gold_total - 1.0 / k) / (1.0 - 1.0 / k)
            if gold_kappa < self.floor:
                return (
                    f"gold accuracy {gold_correct}/{gold_total} = "
                    f"{gold_correct / gold_total:.2f} is near chance (kappa {gold_kappa:.2f} "
                    f"< {self.floor:.2f})"
                )
        if votes >= 2 * self.min_votes and skill < self.floor:
            return (
                f"agreement with consensus over {votes:.0f} decided votes is near chance "
                f"(kappa {skill:.2f} < {self.floor:.2f})"
            )
        return None

    def one_answer(
        self, answers: Sequence[float], others: Callable[[], Sequence[float]]
    ) -> str | None:
        """The same answer every time while the others vary: always-yes, always-no.

        Read from the raw answers, so it needs no decided item: ``min_votes // 2``
        identical answers on items where the other voters gave that answer at most
        three times in four (an honest annotator who meets a "no" item 40% of the
        time repeats one answer ten times running about once in 10,000).
        ``others()`` (the others' answers on the same items) is asked for only then.
        """
        total = float(sum(answers))
        if total < max(self.min_votes // 2, 1):
            return None
        favourite = max(range(len(answers)), key=lambda c: answers[c])
        if answers[favourite] < 0.97 * total:
            return None
        theirs = [float(x) for x in others()]
        share = theirs[favourite] / sum(theirs) if sum(theirs) > 0 else 1.0
        if share <= 0.75:
            return (
                f"gave the same answer {answers[favourite]:.0f} times out of {total:.0f} "
                f"while the others on the same items gave it {share:.0%} of the time"
            )
        return None
