"""Domain errors.

Every error a user can cause or fix subclasses :class:`SynsetError`. The CLI turns
them into one line on stderr and a non-zero exit, so stages raise them instead of
printing, and tests can assert on the type. An OSError that reaches the CLI (a
full disk, a read-only folder) is no domain error, but it gets the same one line
(:func:`os_error_line`).
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


def os_error_line(exc: OSError) -> str:
    """The one line a failed file operation becomes at the command line's edge.

    A full disk, a read-only mount or a missing folder is something the user can
    fix once told where and why; the traceback around it tells them neither.
    ``filename`` is what the failing call named (``writing_to`` in the CLI lends
    one to ``write()`` failures, which name none).
    """
    reason = exc.strerror or str(exc) or type(exc).__name__
    where = [str(name) for name in (exc.filename, exc.filename2) if name is not None]
    return f"error: {' -> '.join(where)}: {reason}." if where else f"error: {reason}."
