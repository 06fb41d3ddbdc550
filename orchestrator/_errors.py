"""The framework's exceptions: one tree under :class:`OrchestratorError`.

- :class:`UsageError`: the caller's mistake (a bad graph file, an unknown specialist, a wrong
  argument). Raised before anything runs; the message says how to fix it. Graph problems carry
  ``.file`` and ``.line``. (:data:`ConfigurationError` is the same class, by its earlier name.)
- :class:`RunError`: a run failed somewhere (a timeout, a dead server, a specialist that
  raised). Inside a run these are recorded on the subtask, never raised past the graph; they
  carry ``.subtask_id`` and ``.tool`` where known.

Anything else raised during a run is a bug in the framework or in the caller's code, and
propagates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError

from orchestrator._secrets import scrub_secrets

__all__ = [
    "ConfigurationError",
    "GraphFileError",
    "GraphIssue",
    "InvalidArgumentError",
    "OrchestratorError",
    "RunError",
    "SpecialistError",
    "ThreadBusyError",
    "ToolTimeoutError",
    "ToolTransportError",
    "UnknownSpecialistError",
    "UsageError",
    "one_line",
]


class OrchestratorError(Exception):
    """Base of every exception the framework raises on purpose."""


class UsageError(OrchestratorError):
    """The caller's mistake: fix the code, the file or the argument named in the message."""


#: The earlier name of :class:`UsageError`; ``except ConfigurationError`` catches every one.
ConfigurationError = UsageError


class InvalidArgumentError(UsageError, ValueError):
    """An argument with a value it does not take (also a ``ValueError``, as Python expects)."""


class UnknownSpecialistError(UsageError, KeyError):
    """A specialist name that no registry entry provides."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        from difflib import get_close_matches  # only when the error is raised

        self.name = name
        self.known = tuple(known)
        close = get_close_matches(name, self.known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        known_list = ", ".join(self.known) or "none"
        super().__init__(
            f"unknown specialist {name!r}{hint} Known specialists: {known_list}. "
            "Register new ones with `orchestrator.register_specialist` or the "
            "`orchestrator.specialists` entry point."
        )

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0])


@dataclass(frozen=True)
class GraphIssue:
    """One problem found in a graph file, with where it is and how to fix it."""

    message: str
    path: tuple[str | int, ...] = ()
    line: int | None = None
    column: int | None = None
    hint: str | None = None

    def render(self, file: str | None) -> str:
        where = file or "<graph>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        dotted = ".".join(str(p) for p in self.path)
        text = f"{where}: {self.message}"
        if dotted:
            text += f" (at {dotted})"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


class GraphFileError(UsageError):
    """A graph file that cannot be loaded. Holds every issue found, each with line and column;
    ``.line`` is the first one's."""

    def __init__(self, issues: Sequence[GraphIssue], file: str | Path | None = None) -> None:
        self.issues = tuple(issues)
        self.file = str(file) if file is not None else None
        self.line = next((i.line for i in self.issues if i.line is not None), None)
        count = len(self.issues)
        head = f"{self.file or 'graph'}: {count} problem{'s' if count != 1 else ''} found"
        super().__init__(head + "\n" + "\n".join(i.render(self.file) for i in self.issues))


class ThreadBusyError(OrchestratorError):
    """Another runner holds the thread (one thread, one runner): the run was not started."""

    def __init__(self, thread_id: str, holder: str, waited_s: float) -> None:
        self.thread_id = thread_id
        self.holder = holder
        waited = f" after waiting {waited_s:g} s" if waited_s else ""
        super().__init__(
            f"thread {thread_id!r} is being run by another runner ({holder}){waited}; "
            "resume it again once that run has returned (it then reads as finished), or "
            "let the runner wait for it with Orchestrator(lease_wait_s=...)"
        )


class RunError(OrchestratorError):
    """A failure while running: recorded on the run, recoverable.

    ``kind`` is what the run records as the error's kind: this class's name, or for a
    :class:`SpecialistError` that wraps the specialist's own exception, that exception's.
    """

    def __init__(
        self, message: str, *, subtask_id: str | None = None, tool: str | None = None
    ) -> None:
        # What a run records is never a secret, whatever the failing service echoed.
        super().__init__(scrub_secrets(message))
        self.subtask_id = subtask_id
        self.tool = tool
        self.kind = type(self).__name__


class SpecialistError(RunError):
    """A specialist failed: its own code raised, or its answer is outside its contract."""

    @classmethod
    def wrapping(cls, exc: Exception, *, tool: str) -> SpecialistError:
        """The specialist's own exception as a run failure of that tool (``raise ... from exc``)."""
        error = cls(str(exc) or type(exc).__name__, tool=tool)
        error.kind = type(exc).__name__
        return error


class ToolTransportError(RunError):
    """The tool could not be reached (a dead server, a broken connection). Retried."""


class ToolTimeoutError(RunError):
    """A tool call took longer than its policy's timeout. Retried."""


def one_line(exc: ValidationError) -> str:
    """pydantic's errors on one line, each with where and what (and a too-long value's
    length), without pydantic's help links: for messages shown in results and the CLI."""
    parts = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"]) or "input"
        value = error.get("input")
        size = ""
        if error["type"] in ("string_too_long", "too_long") and isinstance(value, str | list):
            size = f" (it has {len(value):,})"
        parts.append(f"{where}: {error['msg']}{size}")
    return "; ".join(parts)
