"""The exception tree. Each class carries the exit code the CLI turns it into.

    RovoError (1)
    ├── UsageError (64)         bad command line, missing file, nothing to do
    ├── PolicyInvalid (1)       a validation report with errors
    ├── ApiError (1)            the Admin API failed
    └── GuardRefused (3)        a safety guard said no

`NormalizeError` is not a RovoError: it is the value-level complaint raised by
`normalize` and turned into a located `Problem` by the loader.

Exactly one place (`cli.main`) turns these into messages and exit codes.
"""

from __future__ import annotations

__all__ = [
    "EXIT_CHANGES",
    "EXIT_ERROR",
    "EXIT_GUARD",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "GuardRefused",
    "NormalizeError",
    "PolicyInvalid",
    "RovoError",
    "UsageError",
]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_GUARD = 3
EXIT_USAGE = 64
EXIT_INTERRUPTED = 130
"""Ctrl-C, as shells report a process ended by SIGINT (128 + 2)."""


class RovoError(Exception):
    """Base of every error the tool reports to a user."""

    exit_code = EXIT_ERROR


class UsageError(RovoError):
    exit_code = EXIT_USAGE


class PolicyInvalid(RovoError):
    exit_code = EXIT_ERROR


class GuardRefused(RovoError):
    exit_code = EXIT_GUARD


class NormalizeError(ValueError):
    """A domain pattern or address that cannot be made canonical.

    `code` is a stable identifier (`address.host-bits`), `hint` an optional
    suggestion shown to the user ("did you mean 10.0.0.0/8?").
    """

    def __init__(self, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
