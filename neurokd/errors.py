"""Errors neurokd reports to a user as one line, and the CLI exit codes that go with them.

Library code raises these; the CLI prints ``neurokd: error: <message>`` on stderr and exits with
the code (no traceback unless ``--debug``). A message says what is wrong, where, and what to do.
"""

from __future__ import annotations


class NeurokdError(Exception):
    """Bad input or usage: a missing file, a malformed graph, an option out of range (exit 2)."""

    exit_code = 2


class CheckFailed(NeurokdError):
    """A check the user asked for did not pass, e.g. PyTorch vs Lava agreement below 100 % (exit 1)."""

    exit_code = 1
