"""One settings object for the whole toolkit, one frozen section per stage.

Read from ``SYNSET_*`` environment variables and an optional ``synset.toml`` in the
working directory; built once at the edge (CLI, web app factory) and passed down
explicitly, so stages never read globals and tests can hand in their own. Each
stage receives its section (``settings.clean``) as its config; every setting's
default, limits and description are written once, in its section's model, and
``synset config`` lists them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from synset_builder.config.clean import CleanConfig
from synset_builder.config.consensus import DynamicConfig
from synset_builder.config.crawl import CrawlSettings
from synset_builder.config.flat import FlatEnvSource, FlatSource, flat_name, sections, unflatten
from synset_builder.config.web import CrowdConfig, WebConfig
from synset_builder.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///./synset.db"


class Settings(BaseSettings):
    """Everything configurable, with the embedded defaults (SQLite + ./data)."""

    model_config = SettingsConfigDict(env_prefix="SYNSET_", extra="ignore", frozen=True)

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="Database: sqlite:///FILE (embedded) or postgresql+psycopg://USER@HOST/DB.",
    )
    data_dir: Path = Field(Path("./data"), description="Where images, exports and caches go.")
    nltk_data: Path | None = Field(
        None,
        description="Where NLTK looks for WordNet first; a folder built from Debian's "
        "files if needed.",
    )
    wordnet_dir: Path = Field(
        Path("/usr/share/wordnet"),
        description="Debian's wordnet-base files, used when NLTK has no corpus of its own.",
    )
    secret_key: str | None = Field(
        None,
        description="Signs the web app's session cookies; unset: generated once into the data dir.",
    )
    contact: str = Field(
        "https://github.com/synset-builder/synset-builder",
        description="Where takedown requests go: the crawler's User-Agent and every export.",
    )

    # One frozen model per stage, handed to that stage as it is (config/flat.py
    # keeps the flat SYNSET_CLEAN_MIN_SIDE names working).
    crawl: CrawlSettings = Field(CrawlSettings(), description="The crawl (config/crawl.py).")
    clean: CleanConfig = Field(CleanConfig(), description="The clean stage (config/clean.py).")
    consensus: DynamicConfig = Field(
        DynamicConfig(), description="The consensus rule (config/consensus.py)."
    )
    web: WebConfig = Field(WebConfig(), description="The web app (config/web.py).")
    crowd: CrowdConfig = Field(CrowdConfig(), description="Crowd platforms (config/web.py).")

    @field_validator("database_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        # A plain SQLite file needs no parsing, and `synset status` on it no SQLAlchemy
        # (synset_builder/status_sqlite.py); any other URL is SQLAlchemy's to read.
        from synset_builder.status_sqlite import plain_file

        if plain_file(value) is not None:
            return value
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL: {value!r}") from exc
        if url.get_backend_name() not in {"sqlite", "postgresql"}:
            raise ValueError(
                f"unsupported database {url.get_backend_name()!r}: use sqlite:/// or "
                "postgresql+psycopg://"
            )
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file="synset.toml")
        return (
            FlatSource(settings_cls, init_settings, strict=True),
            FlatEnvSource(settings_cls),
            env_settings,
            FlatSource(settings_cls, toml),
        )

    def with_overrides(self, **flat: object) -> Settings:
        """These settings with some changed, by flat name (``web_grid_size=5``), validated.

        What tests and scripts use instead of ``model_copy(update=...)``, which would
        neither reach into the sections nor check the limits; an unknown name raises.
        """
        data = self.model_dump()
        for key, value in unflatten(type(self), flat, strict=True).items():
            data[key] = {**data[key], **value} if key in sections(type(self)) else value
        return _validated(lambda: type(self).model_validate(data))

    @property
    def images_dir(self) -> Path:
        return self.data_dir / "images"

    def ensure_data_dir(self) -> Path:
        """Create the data folder, or say in one sentence why it cannot be used."""
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"The data folder {self.data_dir} cannot be created: {exc.strerror}."
            ) from exc
        if not os.access(self.data_dir, os.W_OK):
            raise ConfigError(f"The data folder {self.data_dir} is not writable.")
        return self.data_dir


def _validated(build: Callable[[], Settings]) -> Settings:
    """Run ``build``, turning a validation error into one line with the flat name."""
    from pydantic import ValidationError

    try:
        return build()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = flat_name(Settings, first["loc"]) if first["loc"] else "SYNSET_SETTINGS"
        msg = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"Setting {name} is invalid: {msg}.") from exc


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, ``synset.toml`` and flat keyword overrides."""
    return _validated(lambda: Settings(**overrides))  # type: ignore[arg-type]
