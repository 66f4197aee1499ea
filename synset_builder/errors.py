"""Domain errors.

Every error a user can cause or fix subclasses :class:`SynsetError`. The CLI turns
them into one line on stderr and a non-zero exit, so stages raise them instead of
printing, and tests can assert on the type.
"""


class SynsetError(Exception):
    """A problem the user can fix; its message is one complete sentence."""

    exit_code = 1


class ConfigError(SynsetError):
    """A setting is malformed (bad URL, unwritable folder, ...)."""

    exit_code = 2


class DatabaseUnavailable(SynsetError):
    """The configured database cannot be reached or opened."""

    exit_code = 3


class NotFound(SynsetError):
    """A named thing (wnid, user, file) does not exist."""

    exit_code = 4


class InvalidInput(SynsetError):
    """An argument or input file is malformed or ambiguous."""

    exit_code = 2
