"""Errors that carry a one-line message for the user instead of a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Bad input or an unusable environment: printed as one line, exit status 2."""

    exit_code = 2


class HostError(Exception):
    """A command or transfer on a host failed; names the host and what was attempted."""
