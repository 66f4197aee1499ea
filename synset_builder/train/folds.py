"""Out-of-fold predictions on the training split, so suspects can come from it too.

The val and test splits hold a fifth of an export; the labelling errors in the
other four fifths are invisible to a model that trained on them. With ``--folds K``
the training images are cut into K folds and K extra models are trained, each
without one fold, which it then predicts: every training image gets a prediction
from a model that never saw it (cross-validation, as in Northcutt et al.'s
"confident learning"). Each fold checkpoints under ``OUT/folds/<k>``, so an
interrupted run resumes fold by fold.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from synset_builder.errors import InvalidInput
from synset_builder.train.loop import Predictions, TrainResult, pick_device, predict, train


def add_held_out(result: TrainResult, out: Path, folds: int) -> TrainResult:
    """Train ``folds`` models on the rest of the training split; attach their predictions."""
    main = result.predictions.get("train")
    if main is None:
        raise InvalidInput("Held-out folds need the final model's training split predictions.")
    train_cache = main.cache
    if not 2 <= folds <= len(train_cache):
        raise InvalidInput(f"--folds must be between 2 and the {len(train_cache)} training images.")
    cfg = replace(result.config, cache_dir=result.config.cache_dir or out / "cache")
    device = pick_device(cfg.device)
    order = torch.randperm(
        len(train_cache), generator=torch.Generator().manual_seed(cfg.seed + 7919)
    ).numpy()
    probs = np.zeros_like(main.probs)
    loss = 0.0
    for k in range(folds):
        idx = np.sort(order[k::folds])
        held = train_cache.subset(idx)
        fold = train(
            result.export.root,
            out / "folds" / str(k),
            replace(cfg, seed=cfg.seed + k + 1),
            resume=True,
            exclude=frozenset(held.sha256),
            evaluate=False,
        )
        assert fold.model is not None
        pred = predict(fold.model, held, cfg, device)
        probs[idx] = pred.probs
        loss += pred.loss * len(idx)
    result.held_out = Predictions(train_cache, probs, loss / len(train_cache))
    return result
