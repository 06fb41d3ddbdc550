"""The framework's exceptions, in three kinds.

- :class:`ConfigurationError`: the developer's mistake (a bad graph file, an unknown
  specialist, a wrong argument). Raised before anything runs; the message says how to fix it.
- :class:`RunError`: something failed while running (a timeout, a dead server). Inside a run
  these are recorded as events on the subtask, never raised past the graph.
- :class:`ModelRetry`: a message meant for a model (a planner) telling it what to correct.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ConfigurationError",
    "GraphFileError",
    "GraphIssue",
    "ModelRetry",
    "OrchestratorError",
    "RunError",
    "SpecialistError",
    "ToolTimeoutError",
    "ToolTransportError",
    "UnknownSpecialistError",
]


class OrchestratorError(Exception):
    """Base of every exception the framework raises on purpose."""


class ConfigurationError(OrchestratorError):
    """The developer's mistake: fix the code, the file or the argument named in the message."""


class UnknownSpecialistError(ConfigurationError, KeyError):
    """A specialist name that no registry entry provides."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        from difflib import get_close_matches

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


class GraphFileError(ConfigurationError):
    """A graph file that cannot be loaded. Holds every issue found, each with line and column."""

    def __init__(self, issues: Sequence[GraphIssue], file: str | Path | None = None) -> None:
        self.issues = tuple(issues)
        self.file = str(file) if file is not None else None
        count = len(self.issues)
        head = f"{self.file or 'graph'}: {count} problem{'s' if count != 1 else ''} found"
        super().__init__(head + "\n" + "\n".join(i.render(self.file) for i in self.issues))


class RunError(OrchestratorError):
    """A failure while running: recorded on the run, recoverable."""


class SpecialistError(RunError):
    """A specialist raised or returned something outside its contract."""


class ToolTransportError(RunError):
    """The tool could not be reached (a dead server, a broken connection). Retried."""


class ToolTimeoutError(RunError):
    """A tool call took longer than its policy's timeout."""


class ModelRetry(OrchestratorError):
    """A message for a model: what was wrong with its answer and how to correct it."""
