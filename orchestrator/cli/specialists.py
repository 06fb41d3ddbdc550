"""``orchestrator specialists``: list the registered specialists; train, pack and host them.

``list`` is here; ``train`` and ``build-pack`` (``training``) and ``serve-command``
(``hosting``) load with their modules when they run.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from orchestrator.cli._exit import ExitCode
from orchestrator.cli._lazy import Lazy, command_group
from orchestrator.cli._output import out
from orchestrator.specialists._registry import default_registry

__all__ = ["app"]

app = command_group(
    "The registered specialists.",
    {
        "train": Lazy(
            "orchestrator.cli.training:train",
            "Train a specialist head on labelled data and write its artifact and model card.",
        ),
        "build-pack": Lazy(
            "orchestrator.cli.training:build_pack",
            "Train and evaluate the full pack (every artifact in PACK) from a data directory.",
        ),
        "versions": Lazy(
            "orchestrator.cli.distill:versions",
            "List an artifact's versions, which one is promoted, and each one's lineage.",
        ),
        "promote": Lazy(
            "orchestrator.cli.distill:promote",
            "Serve a version: bindings that name the artifact without a version follow it.",
        ),
        "rollback": Lazy(
            "orchestrator.cli.distill:rollback",
            "Serve the version promoted before the current one again.",
        ),
        "serve-command": Lazy(
            "orchestrator.cli.hosting:serve_command",
            "Print the command that hosts specialists, and the graph-file entries that use it.",
        ),
    },
)


@app.command("list")
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
