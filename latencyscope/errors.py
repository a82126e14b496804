"""The one exception type users can cause, with the exit code it maps to."""
from __future__ import annotations

EXIT_PASS = 0
EXIT_WARN = 1
EXIT_VIOLATION = 2
EXIT_ERROR = 3


def first_line(exc: BaseException) -> str:
    """An exception's message cut to its first line (libraries' messages can
    run to many), for the one-line errors and warnings users see."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class LatencyScopeError(Exception):
    """An expected failure: bad input, environment, permissions.

    The CLI prints ``message`` as one line on stderr and exits with
    ``exit_code``; no traceback unless ``--debug``.
    """

    def __init__(self, message: str, exit_code: int = EXIT_ERROR):
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
