"""The command line's exit codes."""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitCode"]


class ExitCode(IntEnum):
    OK = 0  # the run finished (status ok or partial), or the command succeeded
    RUN_FAILED = 1  # the run finished but no specialist produced a result
    USAGE = 2  # bad command-line usage
    INVALID = 3  # an invalid graph file, argument or configuration
    ERROR = 4  # an unexpected failure
    INTERRUPTED = 130
