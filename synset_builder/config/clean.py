"""The clean stage's config (``synset clean``, ``settings.clean``).

This model *is* the config the stage runs with (``run_clean(session, data_dir,
settings.clean)``), so its defaults, limits and descriptions are written once;
the command's options are applied with :meth:`CleanConfig.with_options`, which
validates them by the same limits. It lives beside :class:`Settings`, not in
``synset_builder/clean``, so that reading the settings never imports the stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from synset_builder.config.flat import Section


class CleanConfig(Section):
    """Quality thresholds, placeholder rules and the near-duplicate search."""

    flat_prefix = "clean_"

    min_side: int = Field(
        100, ge=0, description="Reject images whose shorter side is below this (px)."
    )
    max_aspect: float = Field(
        4.0,
        ge=1.0,
        description="Reject images whose long side exceeds the short side this many times.",
    )
    # Laplacian over gradient on the 1/8-scale grey copy; evidence in docs/benchmarks.md.
    min_sharpness: float = Field(
        1.5,
        ge=0.0,
        description="Reject images whose sharpness (variance of the Laplacian over the mean "
        "squared gradient, so independent of contrast) is below this: blurred.",
    )
    min_spread: float = Field(
        12.0,
        ge=0.0,
        description="Reject images whose pixel spread is below this: blank or uniform.",
    )
    placeholder_synsets: int = Field(
        3,
        ge=2,
        description="One host returning the same picture for this many synsets: a placeholder.",
    )
    placeholder_background: float = Field(
        0.9,
        gt=0.5,
        le=1.0,
        description="A flat background over this share of a picture makes it a placeholder.",
    )
    placeholders: tuple[Path, ...] = Field(
        (),
        description="Known placeholder pictures (a JSON list of files); their near duplicates are "
        "rejected. `synset clean --placeholder` adds to them.",
    )
    max_distance: int = Field(
        8,
        ge=0,
        le=31,
        description="Hamming distance (of 64 bits) within which two images are near duplicates.",
    )
    hash: str = Field("phash", description="Perceptual hash for near duplicates: phash or dhash.")
    search: Literal["auto", "brute", "mih"] = Field(
        "auto",
        description="Near-duplicate search: auto picks brute force for small sets and multi-index "
        "hashing for large ones.",
    )
    workers: int | None = Field(
        None, ge=0, description="Processes that hash images; unset or 0: one per CPU."
    )
