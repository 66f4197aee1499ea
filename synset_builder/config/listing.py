"""Every setting as a user looks it up: ``SYNSET_*`` name, default, value and description.

``synset config`` prints this list and the options' help takes its defaults from
here, so neither repeats a default the models already hold. Secrets (keys,
client secrets) are listed as set or unset, never shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from synset_builder.config.flat import entries
from synset_builder.config.settings import Settings

SECRET_ENDINGS = ("_key", "_secret")


@dataclass(frozen=True)
class Row:
    """One line of ``synset config``."""

    env: str
    default: str
    value: str
    description: str

    def as_json(self) -> dict[str, str]:
        return {"env": self.env, "default": self.default, "value": self.value,
                "description": self.description}  # fmt: skip


def _text(value: Any) -> str:
    """A value as it would be written in the environment."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(f'"{v}"' for v in value) + "]"
    if isinstance(value, Path):
        return str(value)
    return str(value)


def _secret(name: str) -> bool:
    return name.endswith(SECRET_ENDINGS)


def default_of(section: str, name: str) -> str:
    """The default of ``section.name`` as help shows it (``consensus.threshold`` -> 0.9)."""
    model: type[BaseModel] = Settings.model_fields[section].annotation  # type: ignore[assignment]
    return _text(model.model_fields[name].get_default(call_default_factory=True))


def rows(settings: Settings) -> list[Row]:
    """Every setting of ``settings``, top-level first, then section by section."""
    out = []
    for entry in entries(Settings):
        holder: Any = settings if entry.section is None else getattr(settings, entry.section)
        default = entry.info.get_default(call_default_factory=True)
        value = getattr(holder, entry.name)
        if _secret(entry.name):
            shown = "unset" if value is None else "set"
            default_shown = "unset" if default is None else "set"
        else:
            shown, default_shown = _text(value), _text(default)
        out.append(Row(entry.env, default_shown, shown, entry.info.description or ""))
    return out
