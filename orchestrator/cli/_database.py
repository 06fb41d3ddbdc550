"""Options of the commands that keep runs: the checkpointer and its PostgreSQL database."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator._checkpointers import CHECKPOINTER_KINDS
from orchestrator._errors import ConfigurationError

__all__ = ["CheckpointerOpt", "DatabaseUrlOpt", "check_checkpointer"]

CheckpointerOpt = Annotated[
    str,
    typer.Option(
        help="sqlite (resumable), postgres (resumable by any worker of one database), memory "
        "or none."
    ),
]
DatabaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        metavar="URL",
        show_default=False,
        help="The PostgreSQL database (postgresql://USER:PASSWORD@HOST:PORT/DB); default: the "
        "ORCHESTRATOR_DATABASE_URL variable.",
    ),
]


def check_checkpointer(kind: str) -> None:
    if kind not in CHECKPOINTER_KINDS:
        raise ConfigurationError(f"--checkpointer {kind!r}: use {', '.join(CHECKPOINTER_KINDS)}")
