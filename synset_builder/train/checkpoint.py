"""Checkpoints of a training run: saved after every epoch, read by ``--resume`` and
``--init``.

A run that was stopped must resume to the same weights as one that was not, so
a checkpoint holds the optimizer's state and the history with the weights, is
written atomically (an interrupted save leaves the previous one whole), and is
refused when it belongs to another model, export or image size.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from synset_builder.errors import InvalidInput, NotFound
from synset_builder.train.config import TrainConfig
from synset_builder.train.export_reader import Export
from synset_builder.train.resnet import ResNet, build_model
from synset_builder.train.resnet import load_init as load_state

CHECKPOINT = "checkpoint.pt"


class CheckpointMismatch(InvalidInput):
    """--resume found a checkpoint of another model, export or image size."""


def out_folder(out: Path, resume: bool) -> Path:
    """The checkpoint's path in ``out``, refusing to overwrite another run's."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(f"The output folder {out} cannot be created: {exc.strerror}.") from exc
    ckpt_path = out / CHECKPOINT
    if ckpt_path.exists() and not resume:
        raise InvalidInput(
            f"{out} already holds a checkpoint; pass --resume to continue it or pick another --out."
        )
    return ckpt_path


def _save_atomic(obj: dict[str, Any], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def save(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    history: list[dict[str, Any]],
    cfg: TrainConfig,
    export: Export,
    path: Path,
) -> None:
    """Everything ``--resume`` needs after ``epochs`` epochs."""
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": epochs,
        "history": history,
        "shape": cfg.shape_key(),
        "wnids": export.wnids,
        "config": cfg.as_json(),
    }
    _save_atomic(state, path)


def restore(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    ckpt_path: Path,
    cfg: TrainConfig,
    export: Export,
) -> tuple[list[dict[str, Any]], int]:
    """History and epochs done from a checkpoint of the same model, export and size."""
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    if ckpt["shape"] != cfg.shape_key() or ckpt["wnids"] != export.wnids:
        raise CheckpointMismatch(
            f"The checkpoint in {ckpt_path.parent} was trained with {ckpt['shape']} on other "
            "classes or settings; resume with the same --arch, --image-size and export."
        )
    model.load_state_dict(ckpt["model"])
    optimizer.load_state_dict(ckpt["optimizer"])
    return ckpt["history"], ckpt["epoch"]


def load_init(model: nn.Module, path: Path) -> list[str]:
    """Start from the weights of ``--init`` (a checkpoint or a bare state dict); the
    names of the layers skipped because their shape differs (a new classifier)."""
    if not path.is_file():
        raise NotFound(f"The --init checkpoint {path} does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for a bad file
        raise InvalidInput(f"The --init file {path} is not a torch checkpoint: {exc}.") from exc
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise InvalidInput(f"The --init file {path} holds no state dict.")
    return load_state(model, state)


def load_model(path: Path) -> tuple[ResNet, list[str]]:
    """The trained network of a run's checkpoint, in eval mode on the CPU, and the wnids
    its outputs stand for: what ``synset train`` points users at, so using the model
    needs neither the run's options nor the export (the checkpoint records both)."""
    if not Path(path).is_file():
        raise NotFound(f"The checkpoint {path} does not exist.")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        shape, wnids = ckpt["shape"], list(ckpt["wnids"])
        model = build_model(shape["arch"], len(wnids), int(shape["width"]))
        model.load_state_dict(ckpt["model"])
    except Exception as exc:  # torch raises several unrelated types for a bad file
        raise InvalidInput(f"The file {path} is not a synset train checkpoint: {exc}.") from exc
    return model.eval(), wnids
