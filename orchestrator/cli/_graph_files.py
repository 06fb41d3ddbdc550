"""Finding a graph file from what a command was given: a path, or a shipped graph's name."""

from __future__ import annotations

import difflib
from pathlib import Path

from orchestrator._errors import ConfigurationError
from orchestrator.graphs import shipped_graph, shipped_graphs

__all__ = ["resolve_graph"]


def resolve_graph(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.exists():
        return path
    shipped = shipped_graph(name_or_path)
    if shipped is not None:
        return shipped
    known = list(shipped_graphs())
    close = difflib.get_close_matches(name_or_path, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigurationError(
        f"no graph file {name_or_path!r}{hint} Give a path to a .yaml file or the name of a "
        f"shipped graph ({', '.join(known) or 'none'})"
    )
