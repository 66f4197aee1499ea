"""Settings: :class:`Settings` with one frozen section per stage, and :func:`load_settings`."""

from synset_builder.config.settings import DEFAULT_DATABASE_URL, Settings, load_settings

__all__ = ["DEFAULT_DATABASE_URL", "Settings", "load_settings"]
