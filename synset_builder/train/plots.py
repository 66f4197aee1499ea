"""The trainer's charts: learning curves, the confusion matrix, the most-confused pairs.

Each chart is built by a ``*_figure`` function that returns the figure (so tests
read what it shows: ticks, cells, labels) and saved by :func:`save`. They are
for a person reading a run, so the rules favour reading: whole-epoch ticks, a
matrix whose rows are shares of each true class (a small class's errors are as
visible as a big one's) and, with many classes, only those most involved in
confusions, the rest of each row summed in an "other" column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

OUT_OF_SAMPLE = ("val", "test")
# Cells are labelled with their share up to this many classes; beyond, colour only.
_ANNOTATE_UP_TO = 15


def save(fig: Figure, path: Path) -> None:
    fig.savefig(path, dpi=100)
    plt.close(fig)


def curves_figure(history: list[dict[str, Any]]) -> Figure:
    """Loss and top-1 per epoch; the epoch axis has whole-number ticks only."""
    epochs = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    ax_acc.plot(epochs, [h["train_top1"] for h in history], "o-", label="train (augmented)")
    for split in OUT_OF_SAMPLE:
        pts = [
            (h["epoch"], h[f"{split}_loss"], h[f"{split}_top1"])
            for h in history
            if f"{split}_loss" in h
        ]
        if pts:
            ax_loss.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label=split)
            ax_acc.plot([p[0] for p in pts], [p[2] for p in pts], "o-", label=split)
    ax_loss.set(title="loss", xlabel="epoch")
    ax_acc.set(title="top-1 accuracy", xlabel="epoch", ylim=(0, 1))
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def shown_classes(matrix: np.ndarray, top: int) -> list[int]:
    """All classes when there are at most ``top``; else those most involved in confusions.

    Involvement is the class's wrong answers both ways (as the truth and as the
    guess); ties go to the larger class, then to class order. Returned in class order.
    """
    n = len(matrix)
    if n <= top:
        return list(range(n))
    off = matrix - np.diag(np.diag(matrix))
    involved = off.sum(0) + off.sum(1)
    order = sorted(range(n), key=lambda i: (-int(involved[i]), -int(matrix[i].sum()), i))
    return sorted(order[:top])


def confusion_figure(
    matrix: np.ndarray, names: list[str], split: str, top: int = 20
) -> tuple[Figure, dict[str, Any]]:
    """The row-normalised confusion matrix (rows: true class) and what it shows."""
    keep = shown_classes(matrix, top)
    rows = matrix[keep].astype(np.float64)
    cells = rows[:, keep]
    if len(keep) < len(matrix):
        cells = np.concatenate([cells, (rows.sum(1) - cells.sum(1))[:, None]], axis=1)
    totals = rows.sum(1, keepdims=True)
    shares = np.divide(cells, totals, out=np.zeros_like(cells), where=totals > 0)
    ylabels = [names[i] for i in keep]
    xlabels = ylabels + (["other classes"] if len(keep) < len(matrix) else [])
    side = 2.5 + 0.45 * len(xlabels)
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(xlabels)), xlabels, rotation=90)
    ax.set_yticks(range(len(ylabels)), ylabels)
    ax.set(xlabel="predicted class", ylabel="true class")
    if len(xlabels) <= _ANNOTATE_UP_TO:
        for (r, c), v in np.ndenumerate(shares):
            colour = "white" if v > 0.5 else "black"
            ax.text(c, r, f"{v:.2f}", ha="center", va="center", color=colour, fontsize=8)
    subset = (
        f"; {len(keep)} of {len(matrix)} classes, most confused" if len(keep) < len(matrix) else ""
    )
    ax.set_title(f"confusion matrix ({split}; each row sums to 1{subset})")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    fig.tight_layout()
    shown = {"classes": ylabels, "columns": xlabels, "rows": np.round(shares, 4).tolist()}
    return fig, shown


def confused_pairs(matrix: np.ndarray, names: list[str], top: int = 20) -> list[dict[str, Any]]:
    """The ``top`` (true -> predicted) pairs with the most images, most first."""
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:top]
    return [
        {"true": names[t], "predicted": names[p], "count": int(off[t, p])}
        for t, p in zip(*np.unravel_index(order, off.shape), strict=True)
        if off[t, p] > 0
    ]


def pairs_figure(pairs: list[dict[str, Any]], split: str) -> Figure:
    """Bar chart of the most-confused pairs (counts, not shares: where the errors are)."""
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
    return fig
