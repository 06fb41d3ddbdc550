"""Graph files shipped with orchestrator, and the JSON Schema they follow."""

from __future__ import annotations

from pathlib import Path

__all__ = ["SCHEMA_FILE", "shipped_graph", "shipped_graphs"]

_HERE = Path(__file__).parent
SCHEMA_FILE = _HERE / "graph.schema.json"


def shipped_graphs() -> dict[str, Path]:
    """Name -> path of every graph file that ships with the package."""
    return {p.stem: p for p in sorted(_HERE.glob("*.yaml"))}


def shipped_graph(name: str) -> Path | None:
    return shipped_graphs().get(name)
