"""What ``import orchestrator`` and the CLI's start-up load, and the lazy tables behind them."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup

import orchestrator
from orchestrator.cli import main as cli_main
from orchestrator.cli._lazy import _Placeholder, load_command

# Model runtimes, provider SDKs, and the parts of the library only some commands need.
HEAVY = [
    "onnxruntime",
    "torch",
    "llama_cpp",
    "tokenizers",
    "anthropic",
    "openai",
    "orchestrator.specialists.training",
    "orchestrator.specialists.evaluation",
    "orchestrator.specialists.function_call",
]
# ... and the graph engine and the MCP SDK, which no command needs before it runs.
ENGINES = ["langgraph", "mcp"]


def _imported_by(*args: str) -> set[str]:
    """Every module a fresh interpreter imports to run ``python ARGS`` (from -X importtime)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and not line.rstrip().endswith("| package")
    }


def _loaded(modules: set[str], roots: list[str]) -> list[str]:
    return sorted(m for m in modules if any(m == r or m.startswith(r + ".") for r in roots))


@pytest.mark.slow
def test_import_orchestrator_loads_no_runtime_sdk_or_bench() -> None:
    modules = _imported_by("-c", "import orchestrator")
    assert "orchestrator" in modules
    assert _loaded(modules, HEAVY) == []


@pytest.mark.slow
@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_the_cli_answers_version_and_help_without_the_engines(flag: str) -> None:
    modules = _imported_by("-m", "orchestrator", flag)
    assert "orchestrator.cli.main" in modules
    assert _loaded(modules, HEAVY + ENGINES) == []
    commands = {m for m in modules if m.startswith("orchestrator.cli.")}
    assert commands <= {f"orchestrator.cli.{m}" for m in ("main", "_exit", "_lazy", "_output")}


def test_public_names_resolve_lazily_and_are_listed() -> None:
    assert orchestrator.Orchestrator.__name__ == "Orchestrator"
    assert set(orchestrator.__all__) <= set(dir(orchestrator))
    with pytest.raises(AttributeError, match="no attribute 'Nonexistent'"):
        orchestrator.Nonexistent  # noqa: B018


def test_the_type_checking_imports_match_the_lazy_table() -> None:
    # The names type checkers see and the names __getattr__ serves come from the same modules.
    tree = ast.parse(Path(orchestrator.__file__).read_text(encoding="utf-8"))
    (block,) = [
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    ]
    seen = {
        alias.name: node.module
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert seen == orchestrator._LOCATIONS
    assert sorted([*seen, "__version__"]) == orchestrator.__all__


def _placeholders(group: TyperGroup, path: str) -> Iterator[tuple[str, _Placeholder]]:
    for name, command in group.commands.items():
        if isinstance(command, _Placeholder):
            yield f"{path} {name}", command
            loaded = load_command(name, command.target)
            if isinstance(loaded, TyperGroup):
                yield from _placeholders(loaded, f"{path} {name}")


def test_every_lazy_summary_is_its_commands_first_paragraph() -> None:
    root = typer.main.get_group(cli_main.app)
    found = dict(_placeholders(root, "orchestrator"))
    assert sorted(found) == [
        "orchestrator batch",
        "orchestrator distill",
        "orchestrator eval",
        "orchestrator eval-cascade",
        "orchestrator eval-distill",
        "orchestrator graph",
        "orchestrator mcp",
        "orchestrator resume",
        "orchestrator run",
        "orchestrator serve",
        "orchestrator specialists",
        "orchestrator specialists build-pack",
        "orchestrator specialists promote",
        "orchestrator specialists rollback",
        "orchestrator specialists serve-command",
        "orchestrator specialists train",
        "orchestrator specialists versions",
        "orchestrator submit",
        "orchestrator traces",
        "orchestrator worker",
    ]
    for path, placeholder in found.items():
        loaded = load_command(path.rsplit(" ", 1)[1], placeholder.target)
        first = inspect.cleandoc(loaded.help or "").split("\n\n")[0]
        assert placeholder.help == first, f"{path}: the summary in the lazy table is stale"
