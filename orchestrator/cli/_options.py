"""Options that ``specialists train``, ``specialists build-pack`` and ``eval`` share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrator.specialists.evaluation.datasets import FORMATS

__all__ = ["CacheOpt", "DataOpt", "FormatOpt", "JsonOpt", "StoreOpt"]

DataOpt = Annotated[Path, typer.Option("--data", help="Data file or folder.")]
FormatOpt = Annotated[
    str,
    typer.Option(
        "--format",
        help=f"One of: {', '.join(FORMATS)}, cuad (clauses), bfcl or assistant (function_call).",
    ),
]
StoreOpt = Annotated[
    Path, typer.Option("--store", help="Artifact store: artifacts are <store>/<name>.")
]
CacheOpt = Annotated[Path, typer.Option("--cache-dir", help="Embedding cache directory.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print as JSON.")]
