"""The trainer's settings: one frozen object passed into :func:`train.loop.train`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from synset_builder.errors import InvalidInput


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of the baseline; defaults suit a few thousand images on one GPU."""

    arch: str = "resnet18"
    epochs: int = 16
    device: str = "auto"
    seed: int = 0
    image_size: int = 160
    batch_size: int = 128
    # Channels of the first stage (64 in the paper); narrower nets make quick CPU checks.
    width: int = 64
    # None: 0.1 per 256 images of batch (Goyal et al.), the usual SGD recipe.
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float = 5e-5
    label_smoothing: float = 0.1
    warmup_epochs: float = 1.0
    compile: bool = False
    # Threads decoding JPEGs into the cache (Pillow releases the GIL).
    workers: int = 4
    max_suspects: int = 200
    # Write suspects even when the run did not beat chance (see train.learnable).
    force_suspects: bool = False
    # Classes drawn in confusion.png; with more, the most confused ones.
    confusion_classes: int = 20
    # K > 1: also predict the training split with K held-out-fold models (K more trainings).
    folds: int = 0
    export_format: str | None = None
    init: Path | None = None
    cache_dir: Path | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        from synset_builder.train.resnet import ARCHS

        if self.arch not in ARCHS:
            raise InvalidInput(
                f"Unknown architecture {self.arch!r}; choose one of {', '.join(ARCHS)}."
            )
        if self.device not in {"auto", "cpu", "cuda"}:
            raise InvalidInput(f"Unknown device {self.device!r}; choose auto, cpu or cuda.")
        for name in ("epochs", "batch_size", "width"):
            if getattr(self, name) < 1:
                raise InvalidInput(f"--{name.replace('_', '-')} must be at least 1.")
        if self.folds == 1 or self.folds < 0:
            raise InvalidInput("--folds must be 0 (off) or at least 2.")
        if self.batch_size < 2:
            raise InvalidInput("--batch-size must be at least 2 (BatchNorm needs two images).")
        if self.confusion_classes < 2:
            raise InvalidInput("--confusion-classes must be at least 2.")
        if self.image_size < 32:
            raise InvalidInput("--image-size must be at least 32 pixels.")

    @property
    def base_lr(self) -> float:
        return self.lr if self.lr is not None else 0.1 * self.batch_size / 256

    def as_json(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}

    # What a checkpoint must agree on to be resumed.
    def shape_key(self) -> dict[str, Any]:
        return {"arch": self.arch, "width": self.width, "image_size": self.image_size}
