"""``orchestrator graph``: validate, draw and list graph files."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from orchestrator._errors import ConfigurationError, GraphFileError
from orchestrator.cli._exit import ExitCode
from orchestrator.cli._graph_files import resolve_graph
from orchestrator.cli._lazy import command_group
from orchestrator.cli._output import err, out
from orchestrator.graph.mermaid import spec_mermaid
from orchestrator.graph.spec import GraphSpec, graph_json_schema
from orchestrator.graphs import shipped_graphs

__all__ = ["app"]

app = command_group("Validate, draw and list graph files.")


@app.command("validate")
def graph_validate(
    files: Annotated[list[str], typer.Argument(help="Graph files (or shipped graph names).")],
    as_json: Annotated[bool, typer.Option("--json", help="Report as JSON.")] = False,
) -> int:
    """Check graph files without running them; every problem is shown with line and column."""
    report: list[dict[str, Any]] = []
    for name in files:
        try:
            spec = GraphSpec.from_file(resolve_graph(name))
        except GraphFileError as exc:
            report.append(
                {
                    "file": name,
                    "valid": False,
                    "issues": [
                        {
                            "line": i.line,
                            "column": i.column,
                            "message": i.message,
                            "hint": i.hint,
                            "path": list(i.path),
                        }
                        for i in exc.issues
                    ],
                }
            )
            if not as_json:
                err.print(str(exc), markup=False)
        except ConfigurationError as exc:
            report.append({"file": name, "valid": False, "issues": [{"message": str(exc)}]})
            if not as_json:
                err.print(f"{name}: {exc}", markup=False)
        else:
            report.append({"file": name, "valid": True, "graph": spec.name, "issues": []})
            if not as_json:
                out.print(
                    f"[green]ok[/green] {name} (graph {spec.name!r}, "
                    f"{len(spec.nodes)} nodes, {len(spec.subtasks())} subtasks)"
                )
    if as_json:
        out.print_json(json.dumps(report))
    return ExitCode.OK if all(r["valid"] for r in report) else ExitCode.INVALID


@app.command("show")
def graph_show(
    file: Annotated[str, typer.Argument(help="A graph file or a shipped graph's name.")],
    compiled: Annotated[
        bool, typer.Option(help="Draw the compiled LangGraph graph instead of the file's nodes.")
    ] = False,
) -> int:
    """Print the graph as a Mermaid flowchart."""
    spec = GraphSpec.from_file(resolve_graph(file))
    if compiled:
        from orchestrator.graph.compiler import build_state_graph

        drawing = build_state_graph(_drawing_context(spec)).compile().get_graph().draw_mermaid()
        sys.stdout.write(drawing)
    else:
        sys.stdout.write(spec_mermaid(spec))
    return ExitCode.OK


def _drawing_context(spec: GraphSpec) -> Any:
    from orchestrator.agents._planner import LocalPlanner
    from orchestrator.steps import StepContext
    from orchestrator.tools._toolset import InProcessToolset

    return StepContext(spec=spec, toolset=InProcessToolset({}), planner=LocalPlanner(), tools={})


@app.command("schema")
def graph_schema() -> int:
    """Print the JSON Schema of graph files (shipped as graphs/graph.schema.json)."""
    sys.stdout.write(json.dumps(graph_json_schema(), indent=2) + "\n")
    return ExitCode.OK


@app.command("list")
def graph_list() -> int:
    """List the graphs shipped with orchestrator."""
    table = Table("name", "file", "description")
    for name, path in shipped_graphs().items():
        spec = GraphSpec.from_file(path)
        table.add_row(name, str(path), spec.description.strip())
    out.print(table)
    return ExitCode.OK
