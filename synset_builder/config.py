"""One settings object for the whole toolkit.

Read from ``SYNSET_*`` environment variables and an optional ``synset.toml`` in the
working directory; built once at the edge (CLI, web app factory) and passed down
explicitly, so stages never read globals and tests can hand in their own.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from synset_builder.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///./synset.db"


class Settings(BaseSettings):
    """Everything configurable, with the embedded defaults (SQLite + ./data)."""

    model_config = SettingsConfigDict(
        env_prefix="SYNSET_", toml_file="synset.toml", extra="ignore", frozen=True
    )

    database_url: str = DEFAULT_DATABASE_URL
    data_dir: Path = Path("./data")
    # Where NLTK looks for WordNet first; a folder we build from Debian's files if needed.
    nltk_data: Path | None = None
    # Debian's wordnet-base files, used when NLTK has no corpus of its own.
    wordnet_dir: Path = Path("/usr/share/wordnet")
    secret_key: str | None = None

    # Image sources (tests point these at 127.0.0.1).
    openverse_url: str = "https://api.openverse.org"
    openverse_client_id: str | None = None
    openverse_client_secret: str | None = None
    wikimedia_url: str = "https://commons.wikimedia.org/w/api.php"
    flickr_url: str = "https://api.flickr.com/services/rest/"
    flickr_key: str | None = None
    contact: str = Field(default="https://github.com/synset-builder/synset-builder")
    # Opens private and loopback ranges to the crawler (an intranet image server);
    # link-local and cloud metadata addresses stay refused (synset_builder/crawl/guard.py).
    allow_private_networks: bool = False
    # Wall-clock seconds one image download may take, redirects included; a host
    # dripping bytes is cut off here (reason "timeout", tried again by --retry-failed).
    download_deadline: float = Field(default=60.0, gt=0.0)

    # Clean stage (synset clean): quality thresholds and near-duplicate search.
    clean_min_side: int = Field(default=100, ge=0)
    clean_max_aspect: float = Field(default=4.0, ge=1.0)
    clean_min_sharpness: float = Field(default=1.5, ge=0.0)
    clean_min_spread: float = Field(default=12.0, ge=0.0)
    clean_placeholder_synsets: int = Field(default=3, ge=2)
    # A flat background over this share of a picture makes it a placeholder.
    clean_placeholder_background: float = Field(default=0.9, gt=0.5, le=1.0)
    # Known placeholder pictures (synset clean --placeholder adds to them).
    clean_placeholders: list[Path] = Field(default_factory=list)
    clean_max_distance: int = Field(default=8, ge=0, le=31)
    clean_hash: str = "phash"
    clean_workers: int | None = None

    # Annotator web app (synset serve).
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    web_grid_size: int = Field(default=24, ge=1, le=200)
    web_gold_fraction: float = Field(default=0.1, ge=0.0, le=1.0)
    web_lease_seconds: int = Field(default=600, ge=5)
    web_max_body_bytes: int = Field(default=1_000_000, ge=1024)
    # Failed logins per account in the window (an address gets four times as many);
    # wrong study keys on /join count against an address the same way.
    web_login_attempts: int = Field(default=5, ge=1)
    web_login_window_seconds: int = Field(default=900, ge=1)
    # Reverse proxies (comma-separated addresses) whose X-Forwarded-For and
    # X-Forwarded-Proto are believed; from anyone else those headers are ignored.
    web_trusted_proxies: str = ""
    # Secure on cookies: unset, when the request came over HTTPS (directly or as a
    # trusted proxy says); true or false to force it.
    web_secure_cookies: bool | None = None
    # Reports ("report this image") one annotator may file per hour: each takes an
    # image out of every queue until a curator looks.
    web_reports_per_hour: int = Field(default=20, ge=1)
    web_workers: int = Field(default=1, ge=1)
    # Threads per worker, each with one database connection: requests beyond wait
    # for a thread (queued, costing nothing) rather than for the CPU.
    web_threads: int = Field(default=16, ge=1, le=256)
    # How long a worker reuses a synset's "below its goal" answer (annotator_web/goals.py);
    # 0 counts on every task fetch.
    web_goal_recheck_seconds: float = Field(default=5.0, ge=0.0)
    # How long after a submit an annotator may undo that page (POST /api/undo); 0: never.
    web_undo_seconds: int = Field(default=60, ge=0, le=3600)
    # Consensus stopping rule, shared by `synset consensus` and the web app's live
    # updates so both decide by the same rule (see consensus/dynamic.py).
    consensus_threshold: float = Field(default=0.95, gt=0.5, lt=1.0)
    consensus_max_votes: int = Field(default=20, ge=1)
    consensus_initial_size: int = Field(default=10, ge=0)
    consensus_initial_votes: int = Field(default=10, ge=1)
    # An unmeasured annotator's skill (0 chance, 1 perfect) and how many votes' worth of
    # it every record starts with (consensus/model.py).
    consensus_newcomer_skill: float = Field(default=0.3, gt=0.0, lt=1.0)
    consensus_shrink: float = Field(default=2.0, ge=0.0)
    # Kappa (0 chance, 1 perfect) below which an annotator is excluded after
    # consensus_exclusion_votes decided votes (spammers, random clickers).
    consensus_skill_floor: float = Field(default=0.1, ge=0.0, lt=1.0)
    consensus_exclusion_votes: int = Field(default=20, ge=1)
    consensus_requeue_votes: int = Field(default=3, ge=1)
    # The web app refits the model by itself (a `synset consensus` in a child process,
    # one at a time across all its processes) once this many votes arrived since the
    # last refit (and a tenth as many as it saw); 0 never. 5,000 refits a small team's
    # project every few hundred pages while skills and priors still move; at ImageNet
    # scale a refit takes minutes and at most one runs, at most half the time.
    consensus_refit_votes: int = Field(default=5000, ge=0)
    # Crowd platforms: /join?worker=ID&study=KEY works only when the key is set.
    crowd_study_key: str | None = None
    crowd_pages: int = Field(default=10, ge=1)
    # New crowd accounts one client address may open per hour.
    crowd_join_limit: int = Field(default=10, ge=1)

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
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def trusted_proxies(self) -> list[str]:
        return [part.strip() for part in self.web_trusted_proxies.split(",") if part.strip()]

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


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, turning validation errors into one line."""
    from pydantic import ValidationError

    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "settings"
        msg = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"Setting SYNSET_{field.upper()} is invalid: {msg}.") from exc
