"""What a training run leaves behind: report.json, the charts and suspects.csv.

Suspects come only from out-of-sample predictions (the val and test splits, and
with ``--folds`` the training split predicted by models trained without it): the
model never trained on those images, so a confident disagreement with the given
label points at the label, not at memorisation. They are ranked by the
probability the model gives the label it was given, lowest first. A run that did
not beat chance (:mod:`.learnable`) writes none unless ``force_suspects`` is set:
its disagreements are noise, and ``--requeue`` would send them to the crowd.
Top-5 is reported only with more than five classes (with five or fewer it is 1).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from synset_builder.train import plots
from synset_builder.train.learnable import judge
from synset_builder.train.loop import Predictions, TrainResult

OUT_OF_SAMPLE = plots.OUT_OF_SAMPLE
# The k of top-k, reported only when it is below the number of classes.
TOP_K = 5
# Read by name (``synset requeue``, spreadsheets): new columns may come anywhere, and
# the names sit beside their wnids because a curator reads "tench", not "n01440764".
SUSPECT_COLUMNS = [
    "path",
    "sha256",
    "given_wnid",
    "given_name",
    "predicted_wnid",
    "predicted_name",
    "p_given",
    "p_predicted",
    "split",
]


def topk(probs: np.ndarray, labels: np.ndarray, k: int) -> float:
    if len(labels) == 0:
        return 0.0
    k = min(k, probs.shape[1])
    top = np.argsort(-probs, axis=1)[:, :k]
    return float((top == labels[:, None]).any(axis=1).mean())


def per_class(pred: Predictions, wnids: list[str]) -> dict[str, dict[str, float | int]]:
    hits = pred.probs.argmax(1) == pred.cache.labels
    out: dict[str, dict[str, float | int]] = {}
    for i, wnid in enumerate(wnids):
        mask = pred.cache.labels == i
        n = int(mask.sum())
        out[wnid] = {"images": n, "top1": float(hits[mask].mean()) if n else None}  # type: ignore[dict-item]
    return out


def confusion(pred: Predictions, n_classes: int) -> np.ndarray:
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (pred.cache.labels, pred.probs.argmax(1)), 1)
    return m


def suspects(result: TrainResult) -> list[dict[str, Any]]:
    wnids = result.export.wnids
    names = [c.name for c in result.export.classes]
    rows: list[dict[str, Any]] = []
    sources = [(s, result.predictions.get(s)) for s in OUT_OF_SAMPLE]
    for split, pred in [*sources, ("train", result.held_out)]:
        if pred is None:
            continue
        guess = pred.probs.argmax(1)
        for i, given in enumerate(pred.cache.labels):
            if guess[i] == given:
                continue
            rows.append(
                {
                    "path": pred.cache.paths[i],
                    "sha256": pred.cache.sha256[i],
                    "given_wnid": wnids[given],
                    "given_name": names[given],
                    "predicted_wnid": wnids[guess[i]],
                    "predicted_name": names[guess[i]],
                    "p_given": round(float(pred.probs[i, given]), 6),
                    "p_predicted": round(float(pred.probs[i, guess[i]]), 6),
                    "split": split,
                }
            )
    rows.sort(key=lambda r: (r["p_given"], r["sha256"]))
    return rows[: result.config.max_suspects]


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _scores(result: TrainResult) -> dict[str, Any]:
    """The run's settings and its scores per split: the head of report.json."""
    cfg, wnids = result.config, result.export.wnids
    preds = result.predictions
    report: dict[str, Any] = {
        "export": str(result.export.root),
        "format": result.export.format.name,
        "arch": cfg.arch,
        "width": cfg.width,
        "device": result.device,
        "device_name": result.device_name,
        "epochs": len(result.history),
        "image_size": cfg.image_size,
        "batch_size": cfg.batch_size,
        "seed": cfg.seed,
        "images_per_second": round(result.images_per_second, 2),
        "classes": len(wnids),
        "images": {s: len(p.cache) for s, p in preds.items()},
        "top1": {s: topk(p.probs, p.cache.labels, 1) for s, p in preds.items()},
        "loss": {s: p.loss for s, p in preds.items()},
        "per_class": {s: per_class(p, wnids) for s, p in preds.items()},
        "history": result.history,
        "skipped": [row for p in preds.values() for row in p.cache.skipped],
        "resumed_from_epoch": result.resumed_from,
        "init_skipped": result.init_skipped,
        "config": cfg.as_json(),
    }
    if len(wnids) > TOP_K:
        report["top5"] = {s: topk(p.probs, p.cache.labels, TOP_K) for s, p in preds.items()}
    return report


def _held_out(held: Predictions, folds: int, n_classes: int) -> dict[str, Any]:
    """Scores of the held-out fold models on the train split (``--folds``)."""
    scores: dict[str, Any] = {
        "folds": folds,
        "images": len(held.cache),
        "top1": topk(held.probs, held.cache.labels, 1),
    }
    if n_classes > TOP_K:
        scores["top5"] = topk(held.probs, held.cache.labels, TOP_K)
    return scores


def _write_suspects(path: Path, rows: list[dict[str, Any]]) -> None:
    """suspects.csv, replaced whole so a reader never sees half a file."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=SUSPECT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


def write_reports(result: TrainResult, out: Path) -> dict[str, Any]:
    """Write the report files into ``out`` and return the report as a dict."""
    cfg, wnids = result.config, result.export.wnids
    names = [c.name for c in result.export.classes]
    preds = result.predictions
    report = _scores(result)
    split = next((s for s in OUT_OF_SAMPLE if s in preds), "train")
    matrix = confusion(preds[split], len(wnids))
    fig, shown = plots.confusion_figure(matrix, names, split, cfg.confusion_classes)
    plots.save(fig, out / "confusion.png")
    pairs = plots.confused_pairs(matrix, names)
    plots.save(plots.pairs_figure(pairs, split), out / "confused_pairs.png")
    report["confusion"] = {"split": split, **shown, "pairs": pairs}
    verdict = judge(result)
    report["learnable"] = verdict.as_json() if verdict is not None else None
    withheld = verdict is not None and not verdict.learned and not cfg.force_suspects
    rows = [] if withheld else suspects(result)
    report["suspects"] = {
        "count": len(rows),
        "withheld": withheld,
        "from": [s for s in OUT_OF_SAMPLE if s in preds]
        + (["train (held-out folds)"] if result.held_out is not None else []),
    }
    if verdict is not None and not verdict.learned:
        report["warning"] = verdict.warning()
    if result.held_out is not None:
        report["held_out"] = _held_out(result.held_out, cfg.folds, len(wnids))
    plots.save(plots.curves_figure(result.history), out / "curves.png")
    _write_suspects(out / "suspects.csv", rows)
    _write_atomic(out / "report.json", json.dumps(report, indent=2, default=str))
    return report
