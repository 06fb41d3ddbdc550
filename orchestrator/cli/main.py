"""The ``orchestrator`` command line: the root group and ``main(argv) -> int``.

Each command lives in its own module and is imported only when it runs; the table below names
them, in the order ``--help`` lists them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from orchestrator._errors import GraphFileError, OrchestratorError, UsageError
from orchestrator._version import __version__
from orchestrator.cli._exit import ExitCode
from orchestrator.cli._lazy import Lazy, command_group
from orchestrator.cli._output import err, out, utf8

__all__ = ["ExitCode", "app", "entrypoint", "main"]

COMMANDS = {
    "run": Lazy(
        "orchestrator.cli.run:run",
        "Run a graph on one request and print the result with provenance and timings.",
    ),
    "resume": Lazy(
        "orchestrator.cli.run:resume",
        "Resume a thread: after a crash, or with a person's review of a paused run.",
    ),
    "submit": Lazy(
        "orchestrator.cli.queue:submit",
        "Put a run in the graph's queue for a worker to take; print its thread.",
    ),
    "worker": Lazy(
        "orchestrator.cli.queue:worker",
        "Take the graph's runs from the queue and run them, until stopped (Ctrl-C or SIGTERM\n"
        "let the runs under way finish).",
    ),
    "batch": Lazy(
        "orchestrator.cli.queue:batch",
        "Run every request of a JSONL file through the run queue and write one result line per\n"
        "request; rerun it after a stop to finish the rest.",
    ),
    "serve": Lazy(
        "orchestrator.cli.serve:serve",
        "Serve specialists as MCP tools (stdio for desktop assistants, HTTP for remote use).",
    ),
    "eval-cascade": Lazy(
        "orchestrator.cli.evaluation:eval_cascade",
        # The docstring's first paragraph, line breaks included: rich help keeps them.
        "The specialist-then-frontier cascade on a test split: for a range of thresholds, the\n"
        "share escalated and the accuracy of the answers kept (and, with ANTHROPIC_API_KEY, of "
        "the\ncombined answers and their cost).",
    ),
    "eval": Lazy(
        "orchestrator.cli.evaluation:evaluate",
        "Evaluate a trained artifact: quality, calibration, risk-coverage, latency.",
    ),
    "eval-distill": Lazy(
        "orchestrator.cli.distill:eval_distill",
        "Replay a dataset's training split as traffic: escalations get the teacher's label, a\n"
        "candidate is distilled after each round, and every round is scored on the test split.",
    ),
    "distill": Lazy(
        "orchestrator.cli.distill:distill",
        "Train a candidate from the base data plus the teacher labels in the trace store,\n"
        "compare it with the current version, and promote it only if it is better.",
    ),
    "traces": Lazy(
        "orchestrator.cli.distill:traces_app", "The trace store: what each subtask asked and got."
    ),
    "graph": Lazy("orchestrator.cli.graph:app", "Validate, draw and list graph files."),
    "specialists": Lazy("orchestrator.cli.specialists:app", "The registered specialists."),
    "mcp": Lazy(
        "orchestrator.cli.mcp_clients:app", "Attach orchestrator's MCP servers to MCP clients."
    ),
}

app = command_group(
    "Specialist-first agent graphs: run, validate and inspect them.",
    COMMANDS,
    name="orchestrator",
    pretty_exceptions_enable=False,
)


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
    specialists: Annotated[
        list[str] | None,
        typer.Option(
            "--specialists",
            metavar="MODULE",
            help="Import this module (a name from the current folder, or a .py file) before "
            "the command, so the specialists it registers can be run, served and listed "
            "without an entry point. Repeatable.",
        ),
    ] = None,
) -> None:
    # Imported here: structlog is half the start-up time of `--version` and `--help`.
    from orchestrator._logging import configure_logging

    configure_logging(level=log_level, json=True if log_json else None)
    if specialists:
        from orchestrator.cli._user_modules import import_user_modules

        import_user_modules(specialists)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with `argv` (default: sys.argv[1:]) and return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        for index, arg in enumerate(args):
            utf8(arg, _argument_name(args, index))
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
    except UsageError as exc:
        err.print(f"error: {exc}", markup=False)
        return ExitCode.INVALID
    except OrchestratorError as exc:
        err.print(f"run failed: {exc}", markup=False)
        return ExitCode.ERROR
    except OSError as exc:
        if exc.filename is None:
            raise
        # A path the command was given that the system refuses: too long, not a folder, ...
        shown = str(exc.filename)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        err.print(f"error: cannot use {shown!r}: {exc.strerror}", markup=False)
        return ExitCode.INVALID
    return int(rv) if isinstance(rv, int) else ExitCode.OK


def _argument_name(args: list[str], index: int) -> str:
    """How an error names argument `index`: by its option when it is one's value."""
    arg = args[index]
    if arg.startswith("--") and "=" in arg:
        return f"{arg.split('=', 1)[0]}: the value"
    if index and args[index - 1].startswith("-") and args[index - 1] != "-":
        return f"{args[index - 1]}: the value"
    return f"argument {index + 1}"


def entrypoint() -> None:
    sys.exit(main())
