"""What a training run leaves behind: report.json, curves.png, confusion.png, suspects.csv.

Suspects come only from out-of-sample predictions (the val and test splits, and
with ``--folds`` the training split predicted by models trained without it): the
model never trained on those images, so a confident disagreement with the given
label points at the label, not at memorisation. They are ranked by the
probability the model gives the label it was given, lowest first.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from synset_builder.train.loop import Predictions, TrainResult  # noqa: E402

OUT_OF_SAMPLE = ("val", "test")
SUSPECT_COLUMNS = [
    "path",
    "sha256",
    "given_wnid",
    "predicted_wnid",
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
                    "predicted_wnid": wnids[guess[i]],
                    "p_given": round(float(pred.probs[i, given]), 6),
                    "p_predicted": round(float(pred.probs[i, guess[i]]), 6),
                    "split": split,
                }
            )
    rows.sort(key=lambda r: (r["p_given"], r["sha256"]))
    return rows[: result.config.max_suspects]


def plot_curves(history: list[dict[str, Any]], path: Path) -> None:
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    ax_acc.plot(epochs, [h["train_top1"] for h in history], "o-", label="train (augmented)")
    for split in OUT_OF_SAMPLE:
        if any(f"{split}_loss" in h for h in history):
            pts = [
                (h["epoch"], h[f"{split}_loss"], h[f"{split}_top1"])
                for h in history
                if f"{split}_loss" in h
            ]
            ax_loss.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=split)
            ax_acc.plot([p[0] for p in pts], [p[2] for p in pts], "o-", label=split)
    ax_loss.set(title="loss", xlabel="epoch")
    ax_acc.set(title="top-1 accuracy", xlabel="epoch", ylim=(0, 1))
    for ax in (ax_loss, ax_acc):
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion(
    matrix: np.ndarray, names: list[str], split: str, path: Path, top: int = 20
) -> list[dict[str, Any]]:
    """Bar chart of the most-confused (true -> predicted) pairs; returns them too."""
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:top]
    pairs = [
        {"true": names[t], "predicted": names[p], "count": int(off[t, p])}
        for t, p in zip(*np.unravel_index(order, off.shape), strict=True)
        if off[t, p] > 0
    ]
    fig, ax = plt.subplots(figsize=(8, 1.5 + 0.35 * max(1, len(pairs))))
    if pairs:
        labels = [f"{p['true']} -> {p['predicted']}" for p in pairs][::-1]
        ax.barh(labels, [p["count"] for p in pairs][::-1], color="tab:red")
        ax.set_xlabel("images")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    else:
        ax.text(0.5, 0.5, "no confusions", ha="center", va="center")
        ax.set_axis_off()
    ax.set_title(f"most-confused class pairs ({split})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return pairs


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_reports(result: TrainResult, out: Path) -> dict[str, Any]:
    """Write the four report files into ``out`` and return the report as a dict."""
    cfg, wnids = result.config, result.export.wnids
    names = [c.name for c in result.export.classes]
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
        "top5": {s: topk(p.probs, p.cache.labels, 5) for s, p in preds.items()},
        "loss": {s: p.loss for s, p in preds.items()},
        "per_class": {s: per_class(p, wnids) for s, p in preds.items()},
        "history": result.history,
        "skipped": [row for p in preds.values() for row in p.cache.skipped],
        "resumed_from_epoch": result.resumed_from,
        "init_skipped": result.init_skipped,
        "config": cfg.as_json(),
    }
    split = next((s for s in OUT_OF_SAMPLE if s in preds), "train")
    matrix = confusion(preds[split], len(wnids))
    report["confusion"] = {
        "split": split,
        "pairs": plot_confusion(matrix, names, split, out / "confusion.png"),
    }
    rows = suspects(result)
    report["suspects"] = {
        "count": len(rows),
        "from": [s for s in OUT_OF_SAMPLE if s in preds]
        + (["train (held-out folds)"] if result.held_out is not None else []),
    }
    if result.held_out is not None:
        held = result.held_out
        report["held_out"] = {
            "folds": cfg.folds,
            "images": len(held.cache),
            "top1": topk(held.probs, held.cache.labels, 1),
            "top5": topk(held.probs, held.cache.labels, 5),
        }
    plot_curves(result.history, out / "curves.png")
    tmp = out / "suspects.csv.tmp"
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=SUSPECT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, out / "suspects.csv")
    _write_atomic(out / "report.json", json.dumps(report, indent=2, default=str))
    return report
