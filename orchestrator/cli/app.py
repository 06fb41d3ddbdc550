"""The ``orchestrator`` command line. ``main(argv) -> int`` is the testable entry point."""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import json
import os
import sys
from collections.abc import Sequence
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.console import Console
from rich.table import Table

from orchestrator._checkpointers import CheckpointerKind
from orchestrator._contracts import RunLedger, RunResult
from orchestrator._errors import ConfigurationError, GraphFileError, OrchestratorError
from orchestrator._logging import configure_logging
from orchestrator._orchestrator import DEFAULT_STATE_DIR, Orchestrator
from orchestrator._version import __version__
from orchestrator.graph.bindings import specialist_for_binding
from orchestrator.graph.mermaid import spec_mermaid
from orchestrator.graph.spec import GraphSpec, graph_json_schema
from orchestrator.graphs import shipped_graph, shipped_graphs
from orchestrator.specialists._registry import default_registry
from orchestrator.tools.server import ServerLimits, run_server

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
mcp_app = typer.Typer(
    help="Attach orchestrator's MCP servers to MCP clients.", no_args_is_help=True
)
app.add_typer(graph_app, name="graph")
app.add_typer(specialists_app, name="specialists")
app.add_typer(mcp_app, name="mcp")

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
    configure_logging(level=log_level, json=True if log_json else None)


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
    inprocess: Annotated[
        bool, typer.Option(help="Run registered specialists in this process, not over MCP.")
    ] = False,
    prices: Annotated[
        Path | None, typer.Option(help="Price table for the cost ledger (YAML).")
    ] = None,
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
        inprocess=inprocess,
        prices=prices,
    )
    result = asyncio.run(_run_with_progress(orc, text, thread, show=not as_json))
    if as_json:
        out.print_json(result.model_dump_json())
    else:
        render_result(result, out)
    return ExitCode.RUN_FAILED if result.status == "failed" else ExitCode.OK


@app.command()
def resume(
    graph: Annotated[str, typer.Argument(help="The graph file the thread ran (or its name).")],
    thread: Annotated[str, typer.Option(help="The thread to resume.")],
    approve: Annotated[
        bool, typer.Option(help="Accept the specialists' answers waiting for review.")
    ] = False,
    reject: Annotated[bool, typer.Option(help="Leave them unverified.")] = False,
    answer: Annotated[
        str | None,
        typer.Option(
            help='Correct output as JSON: {"label": "billing"} when one subtask waits, '
            'or {"SUBTASK": {...}, ...}.'
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    state_dir: Annotated[
        Path, typer.Option(help="Where checkpoints are kept.")
    ] = DEFAULT_STATE_DIR,
) -> int:
    """Resume a thread: after a crash, or with a person's review of a paused run."""
    chosen = sum([approve, reject, answer is not None])
    if chosen > 1:
        raise ConfigurationError("give one of --approve, --reject or --answer")
    review: dict[str, Any] | None = None
    parsed: dict[str, Any] | None = None
    if approve:
        review = {"*": {"action": "approve"}}
    elif reject:
        review = {"*": {"action": "reject"}}
    elif answer is not None:
        try:
            parsed = json.loads(answer)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"--answer is not JSON: {exc.msg} (column {exc.colno})"
            ) from None
        if not isinstance(parsed, dict):
            raise ConfigurationError("--answer must be a JSON object")
    orc = Orchestrator.from_file(resolve_graph(graph), state_dir=state_dir)
    result = asyncio.run(_resume(orc, thread, review, parsed, show=not as_json))
    if as_json:
        out.print_json(result.model_dump_json())
    else:
        render_result(result, out)
    return ExitCode.RUN_FAILED if result.status == "failed" else ExitCode.OK


async def _resume(
    orc: Orchestrator,
    thread: str,
    review: dict[str, Any] | None,
    answer: dict[str, Any] | None,
    *,
    show: bool,
) -> RunResult:
    # One open orchestrator (one set of MCP servers) both reads the pending review and runs.
    async with orc:
        if answer is not None:
            review = await _answer_review(orc, thread, answer)
        return await _run_with_progress(orc, None, thread, show=show, review=review)


async def _answer_review(orc: Orchestrator, thread: str, answer: dict[str, Any]) -> dict[str, Any]:
    """Turn --answer into per-subtask decisions, using what the paused run waits for."""
    pending = await orc.pending_review(thread)
    if not pending:
        raise ConfigurationError(f"thread {thread!r} is not waiting for a review")
    ids = [p["subtask_id"] for p in pending]
    if set(answer) <= set(ids) and answer:
        return {sid: {"action": "answer", "output": out} for sid, out in answer.items()}
    if len(ids) == 1:
        return {ids[0]: {"action": "answer", "output": answer}}
    raise ConfigurationError(
        f"several subtasks wait ({', '.join(ids)}): give --answer as {{SUBTASK: output, ...}}"
    )


async def _run_with_progress(
    orc: Orchestrator,
    text: str | None,
    thread: str | None,
    *,
    show: bool,
    review: dict[str, Any] | None = None,
) -> RunResult:
    result: RunResult | None = None
    with err.status("loading specialists…", spinner="dots") as status:
        if not show or not err.is_terminal:
            status.stop()
        async for event in orc.astream(text, thread_id=thread, review=review):
            if event.result is not None:
                result = event.result
            elif event.kind == "resumed":
                err.print(f"resuming thread {event.thread_id}")
            elif event.kind == "called":
                d = event.detail
                mark = f"conf {d['confidence']:.2f}" if d["ok"] else f"failed: {d['error']}"
                status.update(f"{event.node}: {d['subtask']} done ({mark})")
            elif event.kind in ("planned", "merged", "set", "composed"):
                status.update(f"{event.node}: {event.kind}")
            elif event.kind == "awaiting_human" and show:
                for item in event.detail["pending"]:
                    err.print(
                        f"review needed: {item['subtask_id']} ({item['specialist']}) said "
                        f"{json.dumps(item['output'])} with confidence {item['confidence']}: "
                        f"{item['reason']}",
                        markup=False,
                    )
    assert result is not None
    return result


def _format_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def render_result(result: RunResult, console: Console) -> None:
    colour = {"ok": "green", "partial": "yellow", "failed": "red", "awaiting_human": "cyan"}[
        result.status
    ]
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
        tried = (
            "; ".join(
                f"{step.rung}: {step.detail or ('passed' if step.passed else 'failed')}"
                for step in e.steps
            )
            or "no escalation ladder"
        )
        console.print(
            f"[yellow]escalation[/yellow] {e.subtask_id}: {e.reason} -> {tried} ({e.outcome})",
            markup=True,
            highlight=False,
        )
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
    if result.ledger is not None:
        render_ledger(result.ledger, console)
    for note in result.notes:
        console.print(f"[yellow]note[/yellow] {note}")
    if result.error:
        console.print(f"[red]error[/red] {result.error}", markup=True)
    if result.pending_review:
        console.print(
            f"[cyan]waiting for a person[/cyan] on {', '.join(result.pending_review)}: "
            f"orchestrator resume --thread {result.thread_id} --approve | --reject | "
            "--answer JSON"
        )


def _usd(value: float) -> str:
    if value == 0:
        return "$0"
    return f"${value:.2e}" if value < 0.0001 else f"${value:.4f}"


def render_ledger(ledger: RunLedger, console: Console) -> None:
    table = Table(title="Cost ledger", title_justify="left")
    for column in ("call", "tokens in/out", "cache read/write", "model ms", "cost"):
        table.add_column(column, justify="left" if column == "call" else "right")
    for e in ledger.entries:
        name = f"{e.role} {e.subtask_id}" if e.subtask_id else e.role
        if e.kind == "frontier":
            name += f" ({e.model})"
        table.add_row(
            name,
            f"{e.input_tokens}/{e.output_tokens}",
            f"{e.cache_read_tokens}/{e.cache_write_tokens}" if e.kind == "frontier" else "",
            f"{e.compute_ms:.1f}" if e.kind == "specialist" else "",
            _usd(e.cost_usd) if e.priced else "no price",
        )
    console.print(table)
    ratio = ledger.all_frontier_usd / ledger.total_usd if ledger.total_usd else float("inf")
    console.print(
        f"cost    {_usd(ledger.total_usd)}: specialists {_usd(ledger.specialist_usd)}, frontier "
        f"{_usd(ledger.frontier_usd)} ({ledger.frontier_share:.0%} of the cost, "
        f"{ledger.frontier_calls} calls)"
    )
    console.print(
        f"        with {ledger.frontier_model} doing every subtask: about "
        f"{_usd(ledger.all_frontier_usd)} ({ratio:,.0f}x) - {ledger.all_frontier_basis}"
    )


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


def _served_specialists(names: list[str], graph: str | None) -> dict[str, Any]:
    registry = default_registry()
    if graph is not None:
        spec = GraphSpec.from_file(resolve_graph(graph))
        known = set(registry.names())
        chosen = {
            key: specialist_for_binding(registry, spec.specialist_name(key), binding)
            for key, binding in spec.specialists.items()
            if spec.specialist_name(key) in known and (not names or key in names)
        }
        if not chosen:
            raise ConfigurationError(f"graph {graph!r} binds no registered specialist to serve")
        return chosen
    for name in names:
        registry.get(name)  # an unknown name fails here, with a did-you-mean
    if names:
        return {name: registry.create(name) for name in names}
    # "Everything registered": a specialist that cannot load here (no trained artifact, an
    # extra not installed) is left out with its reason, rather than stopping the others.
    ready: dict[str, Any] = {}
    for name in registry.names():
        specialist = registry.create(name)
        try:
            specialist.ensure_loaded()
        except ConfigurationError as exc:
            err.print(f"not serving {name}: {exc}", markup=False)
            continue
        ready[name] = specialist
    if not ready:
        raise ConfigurationError("no registered specialist can load here")
    return ready


@app.command()
def serve(
    specialists: Annotated[
        list[str] | None, typer.Argument(help="Specialists to serve (default: all registered).")
    ] = None,
    graph: Annotated[
        str | None,
        typer.Option(help="Serve the specialists a graph file binds, with its options."),
    ] = None,
    transport: Annotated[str, typer.Option(help="stdio or http (streamable HTTP).")] = "stdio",
    host: Annotated[str, typer.Option(help="HTTP: address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP: port (0 picks a free one).")] = 8765,
    token_env: Annotated[
        str | None,
        typer.Option(help="HTTP: environment variable holding the bearer token clients must send."),
    ] = None,
    max_input_chars: Annotated[
        int, typer.Option(help="Longest string argument accepted.")
    ] = ServerLimits().max_input_chars,
    max_batch: Annotated[
        int, typer.Option(help="Most items in one batch call.")
    ] = ServerLimits().max_batch,
) -> int:
    """Serve specialists as MCP tools (stdio for desktop assistants, HTTP for remote use)."""
    if transport not in ("stdio", "http"):
        raise ConfigurationError(f"--transport {transport!r}: use stdio or http")
    token = None
    if token_env is not None:
        token = os.environ.get(token_env)
        if not token:
            raise ConfigurationError(
                f"--token-env {token_env}: that environment variable is not set"
            )
    if transport == "http" and token is None and host not in ("127.0.0.1", "::1", "localhost"):
        err.print(
            f"warning: serving on {host} without --token-env: anyone who can reach it may "
            "call the models",
            markup=False,
        )
    served = _served_specialists(list(specialists or []), graph)
    limits = ServerLimits(max_input_chars=max_input_chars, max_batch=max_batch)

    def announce(line: str) -> None:
        err.print(line, markup=False)  # stderr: in stdio mode stdout carries the protocol

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            run_server(
                served,
                transport=transport,
                host=host,
                port=port,
                token=token,
                limits=limits,
                announce=announce,
            )
        )
    return ExitCode.OK


@app.command("eval-cascade")
def eval_cascade(
    artifact: Annotated[str, typer.Argument(help="A trained intent artifact (name or path).")],
    data: Annotated[Path, typer.Option(help="The dataset (e.g. ../shared/data/clinc150).")],
    format: Annotated[str, typer.Option("--format", help="clinc150, banking77, csv, jsonl...")],
    split: Annotated[str, typer.Option(help="Which split to score.")] = "test",
    model: Annotated[str, typer.Option(help="Frontier model for escalated items.")] = (
        "claude-sonnet-5"
    ),
    frontier_limit: Annotated[
        int, typer.Option(help="Most escalated items sent to the frontier model.")
    ] = 200,
    plot: Annotated[Path | None, typer.Option(help="Write the curve as a PNG here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> int:
    """The specialist-then-frontier cascade on a test split: for a range of thresholds, the
    share escalated and the accuracy of the answers kept (and, with ANTHROPIC_API_KEY, of the
    combined answers and their cost)."""
    from orchestrator.agents._frontier import frontier_from_spec
    from orchestrator.agents.answerer import FrontierAnswerer
    from orchestrator.graph.spec import FrontierSpec
    from orchestrator.specialists.artifacts import load_artifact
    from orchestrator.specialists.evaluation.cascade import evaluate_cascade, plot_cascade
    from orchestrator.specialists.evaluation.datasets import load_dataset

    trained = load_artifact(artifact)
    dataset = load_dataset(data, format)
    frontier = frontier_from_spec(FrontierSpec(model=model))
    rows = dataset.split(split)
    with err.status(f"scoring {len(rows)} {split} items…"):
        report = evaluate_cascade(
            trained,
            rows,
            dataset=dataset.name,
            split_name=split,
            answerer=FrontierAnswerer(frontier) if frontier else None,
            frontier_limit=frontier_limit,
        )
    if plot is not None:
        plot_cascade(report, plot)
    if as_json:
        out.print_json(json.dumps(report.to_json()))
        return ExitCode.OK
    table = Table(
        title=f"Cascade: {trained.name} on {report.dataset} {split} "
        f"({report.items} items; {report.note})",
        title_justify="left",
    )
    for column in ("threshold", "escalated", "accepted", "accuracy of accepted"):
        table.add_column(column, justify="right")
    for point in report.points[::3]:
        table.add_row(
            f"{point.threshold:.2f}",
            f"{point.escalated_share:.1%}",
            str(point.accepted),
            "-" if point.accepted_accuracy is None else f"{point.accepted_accuracy:.2%}",
        )
    out.print(table)
    marks: list[tuple[str, Any]] = [
        ("stored threshold", report.at_stored_threshold),
        ("10% escalated", report.at_10_percent),
    ]
    for label, mark in marks:
        if mark is not None and mark.accepted_accuracy is not None:
            out.print(
                f"{label:<17} {mark.threshold:.3f}: {mark.escalated_share:.1%} escalated,"
                f" accepted answers {mark.accepted_accuracy:.2%} accurate"
            )
    frontier_info = report.frontier
    if frontier_info.get("reached"):
        out.print(
            f"frontier          {frontier_info['answered']} escalated items answered, "
            f"{frontier_info['frontier_accuracy']:.2%} accurate; combined "
            f"{frontier_info['combined_accuracy']:.2%}; cost ${frontier_info['cost_usd']:.4f}"
        )
    else:
        out.print(f"frontier          {frontier_info['note']}")
    if plot is not None:
        out.print(f"plot              {plot}")
    return ExitCode.OK


def claude_desktop_config_path() -> Path:
    """Where Claude Desktop keeps its configuration on this operating system."""
    home = Path.home()
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "Claude" / "claude_desktop_config.json"
    if sys.platform.startswith("win"):
        return Path(os.environ.get("APPDATA", home)) / "Claude" / "claude_desktop_config.json"
    return home / ".config" / "Claude" / "claude_desktop_config.json"


@mcp_app.command("config")
def mcp_config(
    client: Annotated[str, typer.Argument(help="The MCP client: claude-desktop.")],
    specialists: Annotated[
        list[str] | None, typer.Argument(help="Specialists to serve (default: all registered).")
    ] = None,
    name: Annotated[str, typer.Option(help="Key of the entry under mcpServers.")] = "orchestrator",
    merge: Annotated[
        Path | None,
        typer.Option(
            help=f"Merge the entry into this config file (Claude Desktop keeps it at "
            f"{claude_desktop_config_path()}); other entries are kept."
        ),
    ] = None,
) -> int:
    """Print (or merge into a file) the mcpServers entry that launches this installation."""
    if client != "claude-desktop":
        raise ConfigurationError(f"unknown MCP client {client!r}; supported: claude-desktop")
    for specialist in specialists or []:
        default_registry().get(specialist)
    entry = {
        "command": sys.executable,
        "args": ["-m", "orchestrator", "serve", *(specialists or [])],
    }
    if merge is None:
        out.print_json(json.dumps({"mcpServers": {name: entry}}))
        return ExitCode.OK
    config: dict[str, Any] = {}
    if merge.exists():
        try:
            config = json.loads(merge.read_text(encoding="utf-8") or "{}")
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"{merge}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg}); "
                "fix or move it first"
            ) from None
        if not isinstance(config, dict) or not isinstance(config.get("mcpServers", {}), dict):
            raise ConfigurationError(f"{merge}: expected a JSON object with an mcpServers object")
    config.setdefault("mcpServers", {})[name] = entry
    merge.parent.mkdir(parents=True, exist_ok=True)
    partial = merge.with_name(merge.name + ".tmp")
    partial.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    partial.replace(merge)  # atomic: the file is never half-written
    out.print(f"added mcpServers.{name} to {merge}; restart the client to load it")
    return ExitCode.OK


# Training, evaluation and pack commands live in their own module.
from orchestrator.cli.specialists import register as _register_specialist_commands  # noqa: E402

_register_specialist_commands(app, specialists_app)

from orchestrator.cli.serving import register as _register_serving_commands  # noqa: E402

_register_serving_commands(specialists_app)


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
