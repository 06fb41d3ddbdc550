"""``orchestrator run`` and ``orchestrator resume``: run a graph on one request, or resume a
thread, and print the result with provenance, timings and the cost ledger."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.console import Console
from rich.table import Table

from orchestrator._checkpointers import CheckpointerKind
from orchestrator._contracts import FieldProvenance, RunLedger, RunResult
from orchestrator._errors import ConfigurationError
from orchestrator._orchestrator import DEFAULT_STATE_DIR, Orchestrator
from orchestrator._visible_text import has_visible_text
from orchestrator.cli._database import CheckpointerOpt, DatabaseUrlOpt, check_checkpointer
from orchestrator.cli._exit import ExitCode
from orchestrator.cli._graph_files import resolve_graph
from orchestrator.cli._output import err, out, utf8

__all__ = ["field_source", "parse_answer", "render_ledger", "render_result", "resume", "run"]


def _read_input(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.startswith("@"):
        return value  # main() has checked that the arguments are UTF-8
    source = value[1:]
    try:
        if source == "-":
            return utf8(sys.stdin.read(), "--input @-: standard input")
        return Path(source).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigurationError(
            f"--input {value}: {source or 'standard input'} is not UTF-8 text (byte "
            f"0x{exc.object[exc.start]:02x} at offset {exc.start}); convert it first, e.g. "
            f"`iconv -f latin1 -t utf-8 {source or 'FILE'}`"
        ) from None
    except OSError as exc:
        raise ConfigurationError(f"--input {value}: cannot read {source}: {exc.strerror}") from None


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
    checkpointer: CheckpointerOpt = "sqlite",
    database_url: DatabaseUrlOpt = None,
    inprocess: Annotated[
        bool, typer.Option(help="Run registered specialists in this process, not over MCP.")
    ] = False,
    prices: Annotated[
        Path | None, typer.Option(help="Price table for the cost ledger (YAML).")
    ] = None,
    otel: Annotated[
        bool,
        typer.Option(
            "--otel",
            help="Export OpenTelemetry spans of the run (OTLP/HTTP, configured by the OTEL_* "
            "variables), with those of the specialists it serves itself.",
        ),
    ] = False,
) -> int:
    """Run a graph on one request and print the result with provenance and timings."""
    check_checkpointer(checkpointer)
    text = _read_input(input)
    if text is not None and not has_visible_text(text):
        raise ConfigurationError(
            "--input is empty or only whitespace and invisible characters: give the text of "
            "the request"
        )
    if text is None and thread is None:
        raise ConfigurationError("give --input TEXT (or --thread ID to resume an unfinished run)")
    orc = Orchestrator.from_file(
        resolve_graph(graph),
        state_dir=state_dir,
        checkpointer=cast(CheckpointerKind, checkpointer),
        database_url=database_url,
        inprocess=inprocess,
        prices=prices,
        tracing=True if otel else None,
    )
    result = asyncio.run(_run_with_progress(orc, text, thread, show=not as_json))
    if as_json:
        out.print_json(result.model_dump_json())
    else:
        render_result(result, out, graph)
    return ExitCode.RUN_FAILED if result.status == "failed" else ExitCode.OK


def resume(
    graph: Annotated[str, typer.Argument(help="The graph file the thread ran (or its name).")],
    thread: Annotated[str, typer.Option(help="The thread to resume.")],
    approve: Annotated[
        bool, typer.Option(help="Accept the specialists' answers waiting for review.")
    ] = False,
    reject: Annotated[bool, typer.Option(help="Leave them unverified.")] = False,
    answer: Annotated[
        list[str] | None,
        typer.Option(
            help="The correct output: KEY=VALUE (repeatable, e.g. label=billing), or JSON: "
            '{"label": "billing"} when one subtask waits, or {"SUBTASK": {...}, ...}. Fields '
            "left out are completed from the specialist's own answer.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    state_dir: Annotated[
        Path, typer.Option(help="Where checkpoints are kept.")
    ] = DEFAULT_STATE_DIR,
    checkpointer: CheckpointerOpt = "sqlite",
    database_url: DatabaseUrlOpt = None,
) -> int:
    """Resume a thread: after a crash, or with a person's review of a paused run."""
    chosen = sum([approve, reject, bool(answer)])
    if chosen > 1:
        raise ConfigurationError("give one of --approve, --reject or --answer")
    review: dict[str, Any] | None = None
    parsed: dict[str, Any] | None = None
    if approve:
        review = {"*": {"action": "approve"}}
    elif reject:
        review = {"*": {"action": "reject"}}
    elif answer:
        parsed = parse_answer(answer)
    check_checkpointer(checkpointer)
    orc = Orchestrator.from_file(
        resolve_graph(graph),
        state_dir=state_dir,
        checkpointer=cast(CheckpointerKind, checkpointer),
        database_url=database_url,
    )
    result = asyncio.run(_resume(orc, thread, review, parsed, show=not as_json))
    if as_json:
        out.print_json(result.model_dump_json())
    else:
        render_result(result, out, graph)
    return ExitCode.RUN_FAILED if result.status == "failed" else ExitCode.OK


def parse_answer(values: Sequence[str]) -> dict[str, Any]:
    """--answer as given: one JSON object, or KEY=VALUE pairs (a VALUE that reads as JSON,
    such as 3 or true, is taken as that; anything else is text)."""
    if len(values) == 1 and values[0].lstrip().startswith("{"):
        try:
            parsed = json.loads(values[0])
        except json.JSONDecodeError as exc:
            raise ConfigurationError(
                f"--answer is not JSON: {exc.msg} (column {exc.colno})"
            ) from None
        if not isinstance(parsed, dict):
            raise ConfigurationError("--answer must be a JSON object")
        return parsed
    pairs: dict[str, Any] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key.strip():
            raise ConfigurationError(
                f"--answer {value!r}: give KEY=VALUE (e.g. --answer label=refund) or a JSON object"
            )
        try:
            pairs[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            pairs[key.strip()] = text
    return pairs


async def _resume(
    orc: Orchestrator,
    thread: str,
    review: dict[str, Any] | None,
    answer: dict[str, Any] | None,
    *,
    show: bool,
) -> RunResult:
    # The pending review is read from the checkpoints alone; servers and models start only
    # when the run goes on (never for a thread that has finished).
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
        # Closed here, in this task: a generator left to the garbage collector would close
        # the MCP sessions from another task and leave their servers running.
        events = orc.astream(text, thread_id=thread, review=review)
        async with contextlib.aclosing(events):
            async for event in events:
                if event.result is not None:
                    result = event.result
                elif event.kind == "resumed":
                    err.print(f"resuming thread {event.thread_id}")
                elif event.kind == "called":
                    d = event.detail
                    mark = _confidence(d["confidence"]) if d["ok"] else f"failed: {d['error']}"
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


def _confidence(value: float | None) -> str:
    # A third-party MCP tool reports no confidence.
    return "no confidence" if value is None else f"conf {value:.2f}"


def _format_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def field_source(p: FieldProvenance) -> str:
    """Who produced a field, as the result table shows it."""
    if p.source == "specialist":
        return p.specialist or ""
    if p.source in ("vote", "human"):
        return f"{p.source} ({p.specialist})" if p.specialist else p.source
    if p.source == "frontier":
        return f"frontier {p.model or ''}".rstrip()
    if p.source == "request":
        return f"request ({p.node})"
    return f"rule {p.node} <- {', '.join(p.derived_from) or 'no result'}"


def render_result(result: RunResult, console: Console, graph: str | None = None) -> None:
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
        source = field_source(p)
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
        said = [
            f"{step.rung}: {step.detail or ('passed' if step.passed else 'failed')}"
            for step in e.steps
        ]
        if e.outcome == "awaiting_human":
            said.append("human: waiting for a person")
        tried = "; ".join(said) or "no escalation ladder"
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
            f"orchestrator resume {shlex.quote(graph or result.graph)} --thread "
            f"{shlex.quote(result.thread_id)} --approve (or --reject, or --answer KEY=VALUE)",
            soft_wrap=True,
        )


def _usd(value: float) -> str:
    if value == 0:
        return "$0"
    return f"${value:.2e}" if value < 0.0001 else f"${value:.4f}"


def render_ledger(ledger: RunLedger, console: Console) -> None:
    if not ledger.entries:
        console.print("cost    $0: no model was called")
        return
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
    # Nothing spent (free specialists) has no ratio to give.
    ratio = f" ({ledger.all_frontier_usd / ledger.total_usd:,.0f}x)" if ledger.total_usd else ""
    console.print(
        f"cost    {_usd(ledger.total_usd)}: specialists {_usd(ledger.specialist_usd)}, frontier "
        f"{_usd(ledger.frontier_usd)} ({ledger.frontier_share:.0%} of the cost, "
        f"{ledger.frontier_calls} calls)"
    )
    console.print(
        f"        with {ledger.frontier_model} doing every subtask: about "
        f"{_usd(ledger.all_frontier_usd)}{ratio} - {ledger.all_frontier_basis}"
    )
