"""Who answers without looking: the rule that excludes an annotator, and why.

Kept apart from the model of the votes (:mod:`.model`), which applies it
(:meth:`.model.SkillState.judge`): the rule is read from the settings
(``DynamicConfig.exclusion``) and judged on plain numbers, a skill and a few
counts, whatever path measured them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ExclusionRule:
    """Exclude annotators who answer without looking, as soon as the evidence is clear.

    * the same answer to nearly every one of ``min_votes // 2`` or more items,
      where the others' answers make that unlikely for an honest annotator
      (always-yes, always-no; :meth:`one_answer`);
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

        Read from the raw answers, so it needs no decided item. ``others()`` (the
        others' answers on the same items) is asked for only once ``min_votes // 2``
        answers are nearly all one. The others are read as answering with
        :data:`OTHERS_ACCURACY`: their share of the favourite then says what share
        of these items truly is the favourite, and an annotator who never errs gives
        it that often; the rule excludes only when even such an annotator repeats
        the favourite this often with a chance below :data:`FALSE_ALARM`.

        Why not a fixed share: in a pool of 80% positives beside one careless
        voter, the others say "yes" to 70% of an honest annotator's first ten items
        (all true yeses, one chance in ten); ten identical answers there are no
        sign of spam, while on a balanced pool they are (0.5 ** 10).
        """
        total = float(sum(answers))
        if total < max(self.min_votes // 2, 1):
            return None
        favourite = max(range(len(answers)), key=lambda c: answers[c])
        if answers[favourite] < 0.97 * total:
            return None
        theirs = [float(x) for x in others()]
        share = theirs[favourite] / sum(theirs) if sum(theirs) > 0 else 1.0
        same = round(answers[favourite])
        if honest_chance(share, len(answers), round(total), same) > FALSE_ALARM:
            return None
        return (
            f"gave the same answer {answers[favourite]:.0f} times out of {total:.0f} "
            f"while the others on the same items gave it {share:.0%} of the time"
        )


# How accurate the one-answer rule reads the others as being: a crowd's typical
# worker (near-chance crowds are about 0.65, careful teams 0.8 and more).
OTHERS_ACCURACY = 0.7
# The chance, at most, that the one-answer rule excludes an honest annotator.
FALSE_ALARM = 1e-3


def honest_chance(share: float, k: int, n: int, same: int) -> float:
    """The chance that an annotator who never errs gives one answer ``same`` or more
    times of ``n``, on items where others of :data:`OTHERS_ACCURACY` gave it with
    ``share`` (of ``k`` classes): the binomial tail at the items' true rate."""
    wrong = (1.0 - OTHERS_ACCURACY) / max(k - 1, 1)
    rate = (share - wrong) / (OTHERS_ACCURACY - wrong)
    if rate >= 1.0:
        return 1.0
    rate = max(rate, 0.0)
    return sum(math.comb(n, j) * rate**j * (1.0 - rate) ** (n - j) for j in range(same, n + 1))
