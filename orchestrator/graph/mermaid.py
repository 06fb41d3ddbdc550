"""A Mermaid drawing of a graph file: its nodes, its edges and their conditions."""

from __future__ import annotations

from orchestrator.graph.spec import END, START, ComposeNodeSpec, GraphSpec, SpecialistsNodeSpec

__all__ = ["spec_mermaid"]


def _label(text: str) -> str:
    return " ".join(text.split()).replace('"', "#quot;")


def spec_mermaid(spec: GraphSpec) -> str:
    lines = ["flowchart TD", f"    %% {spec.name}", f"    {START}([START])", f"    {END}([END])"]
    for name, node in spec.nodes.items():
        if isinstance(node, SpecialistsNodeSpec):
            calls = ", ".join(f"{s.id}: {s.specialist}" for s in node.subtasks)
            if node.planner == "frontier":
                calls = f"planned by the frontier model; {calls}".rstrip("; ")
            lines.append(f'    {name}[["{name}<br/>{_label(calls)}"]]')
        elif isinstance(node, ComposeNodeSpec):
            lines.append(f'    {name}>"{name}<br/>composes {node.output}"]')
        else:
            sets = ", ".join(f"{k}={v}" for k, v in node.set.items())
            lines.append(f'    {name}["{name}<br/>{_label(sets)}"]')
    for edge in spec.edges:
        if edge.when:
            lines.append(f'    {edge.source} -->|"{_label(edge.when)}"| {edge.to}')
        else:
            lines.append(f"    {edge.source} --> {edge.to}")
    return "\n".join(lines) + "\n"
