"""Did the baseline learn the set at all? Out-of-sample accuracy against chance.

Suspects are images whose label the model disputes; that means something only when
the model predicts better than a guess. On a set it cannot learn (too few images,
classes that look alike, labels that are noise) every out-of-sample image it gets
wrong would become a suspect and be sent back to the crowd for nothing. So before
suspects are written, the out-of-sample accuracy is tested against *chance*: the
accuracy of always answering the commonest class of those same images (the best a
model that learned nothing can do). A one-sided binomial test asks whether the
number of correct answers is above what that guesser would get; the run counts as
learned only when it is, at ``ALPHA``. The val and test splits are pooled (both
are unseen by the final model, and more images make a fairer test); without
either, the held-out-fold predictions of ``--folds`` are used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import binomtest

from synset_builder.train.loop import TrainResult

# A run must beat chance at this significance before its disagreements are suspects.
ALPHA = 0.01


@dataclass(frozen=True)
class Learnability:
    """Out-of-sample correct answers against the commonest-class guesser."""

    split: str
    images: int
    correct: int
    chance: float
    p_value: float
    alpha: float = ALPHA

    @property
    def accuracy(self) -> float:
        return self.correct / self.images

    @property
    def learned(self) -> bool:
        return self.p_value < self.alpha

    def as_json(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "images": self.images,
            "correct": self.correct,
            "top1": round(self.accuracy, 6),
            "chance": round(self.chance, 6),
            "chance_is": "the share of the commonest class (always answering it)",
            "p_value": float(f"{self.p_value:.4g}"),
            "alpha": self.alpha,
            "learned": self.learned,
        }

    def warning(self) -> str:
        return (
            f"{self.split} top-1 {self.accuracy:.3f} ({self.correct}/{self.images}) is not "
            f"clearly above chance {self.chance:.3f} (always answering the commonest class; "
            f"one-sided binomial p = {self.p_value:.2g}, needs < {self.alpha:g}): the model "
            "did not learn this set, so its disagreements say nothing about the labels."
        )


def judge(result: TrainResult) -> Learnability | None:
    """Test the final model's unseen predictions against chance; None when there are none."""
    used = [(s, p) for s, p in result.predictions.items() if s in ("val", "test") and len(p.cache)]
    if not used and result.held_out is not None and len(result.held_out.cache):
        used = [("train (held-out folds)", result.held_out)]
    if not used:
        return None
    labels = np.concatenate([p.cache.labels for _, p in used])
    correct = int(sum(int((p.probs.argmax(1) == p.cache.labels).sum()) for _, p in used))
    chance = float(np.bincount(labels).max() / len(labels))
    p_value = float(binomtest(correct, len(labels), chance, alternative="greater").pvalue)
    return Learnability("+".join(s for s, _ in used), len(labels), correct, chance, p_value)
