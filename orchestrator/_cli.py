"""The ``orchestrator`` command line. ``main(argv) -> int`` is the testable entry point."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.console import Console
from rich.table import Table

from orchestrator._checkpointers import CheckpointerKind
from orchestrator._contracts import RunResult
from orchestrator._errors import ConfigurationError, GraphFileError, OrchestratorError
from orchestrator._graphspec import GraphSpec, SpecialistsNodeSpec, graph_json_schema
from orchestrator._logging import configure_logging
from orchestrator._mermaid import spec_mermaid
from orchestrator._orchestrator import DEFAULT_STATE_DIR, Orchestrator
from orchestrator._version import __version__
from orchestrator.graphs import shipped_graph, shipped_graphs
from orchestrator.specialists._registry import default_registry

__all__ = ["ExitCode", "entrypoint", "main"]


class ExitCode(IntEnum):
    OK = 0  # the run finished (status ok or partial), or the command succeeded
    RUN_FAILED = 1  # the run finished but no specialist produced a result
    USAGE = 2  # bad command-line usage
    INVALID = 3  # an invalid graph file, argument or configuration
    ERROR = 4  # an unexpected failure
    INTERRUPTED = 130


app = typer.Typer(
    name="orchestrator",
    help="Specialist-first agent graphs: run, validate and inspect them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
graph_app = typer.Typer(help="Validate, draw and list graph files.", no_args_is_help=True)
specialists_app = typer.Typer(help="The registered specialists.", no_args_is_help=True)
app.add_typer(graph_app, name="graph")
app.add_typer(specialists_app, name="specialists")

out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # never wrap error messages


def _version(value: bool) -> None:
    if value:
        out.print(f"orchestrator {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
    log_level: Annotated[
        str, typer.Option(help="DEBUG, INFO, WARNING or ERROR (logs go to stderr).")
    ] = "WARNING",
    log_json: Annotated[bool, typer.Option(help="Logs as JSON lines even on a terminal.")] = False,
) -> None:
    configure_logging(level=log_level, json=True if log_json else None, stream=sys.stderr)


def resolve_graph(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.exists():
        return path
    shipped = shipped_graph(name_or_path)
    if shipped is not None:
        return shipped
    names = ", ".join(shipped_graphs()) or "none"
    raise ConfigurationError(
        f"no graph file {name_or_path!r}: give a path to a .yaml file or the name of a shipped "
        f"graph ({names})"
    )


def _read_input(value: str | None) -> str | None:
    if value is None or not value.startswith("@"):
        return value
    source = value[1:]
    if source == "-":
        return sys.stdin.read()
    try:
        return Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"--input {value}: cannot read {source}: {exc.strerror}") from None


@app.command()
def run(
    graph: Annotated[str, typer.Argument(help="A graph file, or a shipped graph's name.")],
    input: Annotated[
        str | None,
        typer.Option("--input", "-i", help="The request text, @FILE to read it, @- for stdin."),
    ] = None,
    thread: Annotated[
        str | None,
        typer.Option(help="Thread id: resumes that thread's unfinished run, or names a new one."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    state_dir: Annotated[
        Path, typer.Option(help="Where checkpoints are kept.")
    ] = DEFAULT_STATE_DIR,
    checkpointer: Annotated[
        str, typer.Option(help="sqlite (resumable), memory or none.")
    ] = "sqlite",
) -> int:
    """Run a graph on one request and print the result with provenance and timings."""
    if checkpointer not in ("sqlite", "memory", "none"):
        raise ConfigurationError(f"--checkpointer {checkpointer!r}: use sqlite, memory or none")
    text = _read_input(input)
    if text is not None and not text.strip():
        raise ConfigurationError("--input is empty: give the text of the request")
    if text is None and thread is None:
        raise ConfigurationError("give --input TEXT (or --thread ID to resume an unfinished run)")
    orc = Orchestrator.from_file(
        resolve_graph(graph),
        state_dir=state_dir,
        checkpointer=cast(CheckpointerKind, checkpointer),
    )
    result = asyncio.run(_run_with_progress(orc, text, thread, show=not as_json))
    if as_json:
        out.print_json(result.model_dump_json())
    else:
        render_result(result, out)
    return ExitCode.RUN_FAILED if result.status == "failed" else ExitCode.OK


async def _run_with_progress(
    orc: Orchestrator, text: str | None, thread: str | None, *, show: bool
) -> RunResult:
    result: RunResult | None = None
    with err.status("loading specialists…", spinner="dots") as status:
        if not show or not err.is_terminal:
            status.stop()
        async for event in orc.astream(text, thread_id=thread):
            if event.result is not None:
                result = event.result
            elif event.kind == "resumed":
                err.print(f"resuming thread {event.thread_id}")
            elif event.kind == "called":
                d = event.detail
                mark = f"conf {d['confidence']:.2f}" if d["ok"] else f"failed: {d['error']}"
                status.update(f"{event.node}: {d['subtask']} done ({mark})")
            elif event.kind in ("planned", "merged", "set"):
                status.update(f"{event.node}: {event.kind}")
    assert result is not None
    return result


def _format_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def render_result(result: RunResult, console: Console) -> None:
    colour = {"ok": "green", "partial": "yellow", "failed": "red"}[result.status]
    console.print(
        f"[bold]{result.graph}[/bold]  status [{colour}]{result.status}[/{colour}]  "
        f"planner {result.planner}"
    )
    console.print(f"thread  {result.thread_id}")
    console.print(f"request {_format_value(result.request.text)}")
    fields = Table(title="Result", title_justify="left")
    for column in ("field", "value", "from", "conf", "verified"):
        fields.add_column(column, overflow="fold")
    for name, f in result.fields.items():
        p = f.provenance
        if p.source == "specialist":
            source = p.specialist or ""
        else:
            source = f"rule {p.node} <- {', '.join(p.derived_from) or 'request'}"
        fields.add_row(
            name,
            _format_value(f.value),
            source,
            "" if p.confidence is None else f"{p.confidence:.2f}",
            "[green]yes[/green]" if p.verified else "[yellow]no[/yellow]",
        )
    console.print(fields)
    calls = Table(title="Specialist calls", title_justify="left")
    for column in ("subtask", "ok", "verified", "conf", "ms", "model ms", "tokens", "note"):
        calls.add_column(
            column,
            justify="right" if "ms" in column or column == "tokens" else "left",
            overflow="fold",
        )
    for s in result.subtasks:
        note = s.error or "; ".join(s.reasons)
        if s.attempts > 1:
            note = f"{s.attempts} attempts; {note}".rstrip("; ")
        calls.add_row(
            s.id,
            "yes" if s.ok else "[red]no[/red]",
            "yes" if s.verified else "[yellow]no[/yellow]",
            "" if s.confidence is None else f"{s.confidence:.2f}",
            f"{s.latency_ms:.1f}",
            f"{s.compute_ms:.1f}",
            str(s.tokens),
            note,
        )
    console.print(calls)
    for sid, why in result.skipped.items():
        console.print(f"skipped {sid}: {why}")
    for e in result.escalations:
        console.print(f"[yellow]escalation[/yellow] {e.subtask_id}: {e.reason} ({e.outcome})")
    t = result.timings_ms
    parts = [f"{k} {v:.1f}" for k, v in t.items() if k not in ("total", "startup")]
    models = sorted({s.model for s in result.subtasks if s.model})
    console.print(f"path    {' -> '.join(result.path)}")
    console.print(f"models  {', '.join(models) or '-'}")
    console.print(
        f"time    {t['total']:.1f} ms in all ({', '.join(parts)}); model compute "
        f"{result.compute_ms:.1f} ms; {result.tokens} tokens"
    )
    if "startup" in t:
        console.print(f"startup {t['startup']:.0f} ms (loading models, once per process)")


@graph_app.command("validate")
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


@graph_app.command("show")
def graph_show(
    file: Annotated[str, typer.Argument(help="A graph file or a shipped graph's name.")],
    compiled: Annotated[
        bool, typer.Option(help="Draw the compiled LangGraph graph instead of the file's nodes.")
    ] = False,
) -> int:
    """Print the graph as a Mermaid flowchart."""
    spec = GraphSpec.from_file(resolve_graph(file))
    if compiled:
        from orchestrator._compiler import build_state_graph

        drawing = build_state_graph(_drawing_context(spec)).compile().get_graph().draw_mermaid()
        sys.stdout.write(drawing)
    else:
        sys.stdout.write(spec_mermaid(spec))
    return ExitCode.OK


def _drawing_context(spec: GraphSpec) -> Any:
    from orchestrator._nodes import NodeContext
    from orchestrator.agents._planner import LocalPlanner
    from orchestrator.tools._toolset import InProcessToolset

    return NodeContext(spec=spec, toolset=InProcessToolset({}), planner=LocalPlanner(), tools={})


@graph_app.command("schema")
def graph_schema() -> int:
    """Print the JSON Schema of graph files (shipped as graphs/graph.schema.json)."""
    sys.stdout.write(json.dumps(graph_json_schema(), indent=2) + "\n")
    return ExitCode.OK


@graph_app.command("list")
def graph_list() -> int:
    """List the graphs shipped with orchestrator."""
    table = Table("name", "file", "description")
    for name, path in shipped_graphs().items():
        spec = GraphSpec.from_file(path)
        table.add_row(name, str(path), spec.description.strip())
    out.print(table)
    return ExitCode.OK


@specialists_app.command("list")
def specialists_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> int:
    """List registered specialists (built-ins and plugins)."""
    registry = default_registry()
    rows: list[dict[str, Any]] = []
    for name in registry.names():
        cls = registry.get(name)
        rows.append(
            {
                "name": name,
                "description": cls.description,
                "input": list(cls.input_model.model_fields),
                "output": list(cls.output_model.model_fields),
            }
        )
    if as_json:
        out.print_json(json.dumps(rows))
        return ExitCode.OK
    table = Table("name", "input", "output", "description")
    for r in rows:
        table.add_row(r["name"], ", ".join(r["input"]), ", ".join(r["output"]), r["description"])
    out.print(table)
    return ExitCode.OK


def _uses_specialists(spec: GraphSpec) -> bool:
    return any(isinstance(n, SpecialistsNodeSpec) for n in spec.nodes.values())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with `argv` (default: sys.argv[1:]) and return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        rv = app(args=args, prog_name="orchestrator", standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.TyperException as exc:  # usage errors: unknown option, missing argument
        show = getattr(exc, "show", None)
        if show is not None:
            show(file=sys.stderr)
        else:
            err.print(f"error: {exc.format_message()}", markup=False)
        return ExitCode.USAGE
    except (typer.Abort, KeyboardInterrupt):
        err.print("interrupted")
        return ExitCode.INTERRUPTED
    except GraphFileError as exc:
        err.print(str(exc), markup=False)
        return ExitCode.INVALID
    except ConfigurationError as exc:
        err.print(f"error: {exc}", markup=False)
        return ExitCode.INVALID
    except OrchestratorError as exc:
        err.print(f"run failed: {exc}", markup=False)
        return ExitCode.ERROR
    return int(rv) if isinstance(rv, int) else ExitCode.OK


def entrypoint() -> None:
    sys.exit(main())
