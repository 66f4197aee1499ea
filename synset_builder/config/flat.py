"""Flat ``SYNSET_*`` names over the nested stage configs.

Each stage reads its own frozen model (``settings.clean``, ``settings.web``...),
but users, ``synset.toml`` files, scripts and error messages keep the flat names
they always had (``SYNSET_CLEAN_MIN_SIDE``, ``clean_min_side = 50``): a section's
flat name is its ``flat_prefix`` plus the field's name. pydantic-settings can read
nested models only under a delimiter (``SYNSET_CLEAN__MIN_SIDE``), so the flat
names are folded in here, once per source, before the sources are merged: a flat
key from the command line still beats the same setting from the environment.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self, get_args, get_origin

from pydantic import BaseModel, ConfigDict
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

PREFIX = "SYNSET_"


class Section(BaseModel):
    """A stage's config: frozen, unknown keys refused, flat names ``flat_prefix + field``."""

    # allow_inf_nan: "nan" fails every bound test, and pydantic then named the
    # wrong one ("should be less than 1"); now it says "a finite number".
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    # Crawl settings had no prefix before they were grouped (SYNSET_FLICKR_KEY).
    flat_prefix: ClassVar[str] = ""

    def with_options(self, **options: Any) -> Self:
        """This config with a command's options (None: not given), validated again.

        ``model_copy(update=...)`` would skip validation, and a command-line value
        must meet the same limits as the setting it overrides.
        """
        given = {key: value for key, value in options.items() if value is not None}
        return type(self).model_validate({**self.model_dump(), **given})


@dataclass(frozen=True)
class Entry:
    """One setting as a user sees it: where it lives, its flat name and its field."""

    section: str | None
    name: str
    flat: str
    info: FieldInfo

    @property
    def env(self) -> str:
        return PREFIX + self.flat.upper()


def sections(settings_cls: type[BaseModel]) -> dict[str, type[Section]]:
    """The nested stage models of the settings class, by attribute name."""
    found = {}
    for name, info in settings_cls.model_fields.items():
        kind = info.annotation
        if isinstance(kind, type) and issubclass(kind, Section):
            found[name] = kind
    return found


def entries(settings_cls: type[BaseModel]) -> Iterator[Entry]:
    """Every setting, top-level ones first, in the order the classes declare them."""
    nested = sections(settings_cls)
    for name, info in settings_cls.model_fields.items():
        if name not in nested:
            yield Entry(None, name, name, info)
    for section, model in nested.items():
        for name, info in model.model_fields.items():
            yield Entry(section, name, model.flat_prefix + name, info)


def flat_name(settings_cls: type[BaseModel], loc: tuple[int | str, ...]) -> str:
    """The ``SYNSET_*`` name of a validation error's location (nested or flat)."""
    nested = sections(settings_cls)
    if len(loc) >= 2 and loc[0] in nested:
        return PREFIX + (nested[str(loc[0])].flat_prefix + str(loc[1])).upper()
    return PREFIX + ".".join(str(p) for p in loc).upper()


def unflatten(
    settings_cls: type[BaseModel], values: Mapping[str, Any], *, strict: bool = False
) -> dict[str, Any]:
    """Fold flat keys (``clean_min_side``) into their section (``clean.min_side``).

    Keys that are already nested or top-level pass through; with ``strict`` an
    unknown key raises instead of being ignored (a typo in a test or a call).
    """
    by_flat = {e.flat: e for e in entries(settings_cls) if e.section is not None}
    out: dict[str, Any] = {}
    folded: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        entry = by_flat.get(key)
        if entry is not None and entry.section is not None:
            folded.setdefault(entry.section, {})[entry.name] = value
        elif strict and key not in settings_cls.model_fields:
            raise TypeError(f"unknown setting {key!r}")
        else:
            out[key] = value
    for section, fields in folded.items():
        given = out.get(section)
        if isinstance(given, BaseModel):
            given = given.model_dump()
        out[section] = {**(given or {}), **fields}
    return out


class FlatSource(PydanticBaseSettingsSource):
    """Another source's values with their flat keys folded into sections."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        inner: PydanticBaseSettingsSource,
        *,
        strict: bool = False,
    ) -> None:
        super().__init__(settings_cls)
        self.inner, self.strict = inner, strict

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ does the work

    def __call__(self) -> dict[str, Any]:
        return unflatten(self.settings_cls, self.inner(), strict=self.strict)


def _complex(info: FieldInfo) -> bool:
    kinds = [info.annotation, *get_args(info.annotation)]
    return any(get_origin(k) in (list, tuple, dict) or k in (list, tuple, dict) for k in kinds)


class FlatEnvSource(PydanticBaseSettingsSource):
    """``SYNSET_<FLAT NAME>`` variables of the nested settings (names case-insensitive).

    Lists are JSON, as pydantic-settings reads them (``'["a.gif"]'``); a value that
    is not JSON is handed on as text, so validation names the variable.
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # __call__ does the work

    def __call__(self) -> dict[str, Any]:
        env = {key.upper(): value for key, value in os.environ.items()}
        out: dict[str, dict[str, Any]] = {}
        for entry in entries(self.settings_cls):
            if entry.section is None or entry.env not in env:
                continue
            value: Any = env[entry.env]
            if _complex(entry.info):
                with contextlib.suppress(ValueError):
                    value = json.loads(value)
            out.setdefault(entry.section, {})[entry.name] = value
        return out
