"""The declarative graph format: pydantic models that a YAML file loads into.

Loading is all-or-nothing: :meth:`GraphSpec.from_file` returns a spec that has passed both
the schema (types, unknown keys) and the graph checks (names, edges, reachability), or raises
one :class:`~orchestrator.GraphFileError` listing every problem with its line and column.

The sections are defined in :mod:`.model` and the checks in :mod:`.loader`; this module joins
them (the loader validates into the class it is given, so neither imports the other's user).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orchestrator.graph.loader import load_graph_data, load_graph_file, load_graph_text
from orchestrator.graph.model import (
    DEFAULT_INPUT,
    END,
    START,
    ComposeNodeSpec,
    EdgeSpec,
    FrontierRung,
    FrontierSpec,
    GraphModel,
    HumanRung,
    Identifier,
    LearnSpec,
    MCPServerSpec,
    NodeSpec,
    Policies,
    Rung,
    ServedEndpointSpec,
    SetNodeSpec,
    SpecialistBinding,
    SpecialistRung,
    SpecialistsNodeSpec,
    SubtaskSpec,
    VoteRung,
)

__all__ = [
    "DEFAULT_INPUT",
    "END",
    "START",
    "ComposeNodeSpec",
    "EdgeSpec",
    "FrontierRung",
    "FrontierSpec",
    "GraphSpec",
    "HumanRung",
    "Identifier",
    "LearnSpec",
    "MCPServerSpec",
    "NodeSpec",
    "Policies",
    "Rung",
    "ServedEndpointSpec",
    "SetNodeSpec",
    "SpecialistBinding",
    "SpecialistRung",
    "SpecialistsNodeSpec",
    "SubtaskSpec",
    "VoteRung",
    "graph_json_schema",
]


class GraphSpec(GraphModel):
    """A whole graph file."""

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> GraphSpec:
        return load_graph_file(cls, Path(path), **kwargs)

    @classmethod
    def from_text(cls, text: str, *, source: str | None = None, **kwargs: Any) -> GraphSpec:
        return load_graph_text(cls, text, source=source, **kwargs)

    @classmethod
    def from_dict(cls, data: Any, *, source: str | None = None, **kwargs: Any) -> GraphSpec:
        return load_graph_data(cls, data, source=source, **kwargs)


def graph_json_schema() -> dict[str, Any]:
    """The JSON Schema of graph files, as shipped in ``graphs/graph.schema.json``."""
    schema = GraphSpec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://orchestrator.dev/schemas/graph-v1.json"
    schema["title"] = "orchestrator graph file"
    return schema
