"""The one error type mbnas raises for bad user input."""

from __future__ import annotations


class MbnasError(ValueError):
    """Bad input from a user: the message names the field and what is allowed.

    The command line prints it as one line on stderr and exits with status 2.
    """
