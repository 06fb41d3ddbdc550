"""What every command prints through: the two consoles, progress bars, and the command line
that reproduces a run."""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from orchestrator._errors import UsageError

if TYPE_CHECKING:
    from orchestrator.specialists.training.train import StepProgress

__all__ = ["command_line", "err", "out", "progress_bars", "utf8"]

out = Console(highlight=False, soft_wrap=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # never wrap error messages


def utf8(text: str, what: str) -> str:
    """`text` if it is valid Unicode, else a UsageError naming `what`. Bytes that are not
    UTF-8 reach argv (and stdin in the C locale) as lone surrogates, which no request may
    hold and no console can print."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        shown = f"byte 0x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"U+{code:04X}"
        raise UsageError(
            f"{what} is not valid UTF-8 ({shown} at offset {exc.start}); pass UTF-8 text, "
            "or convert the file and give it as @FILE"
        ) from None
    return text


@contextmanager
def progress_bars(enabled: bool) -> Iterator[StepProgress]:
    """Rich progress bars on stderr (stdout stays clean for --json)."""
    if not enabled:
        yield lambda description, total: lambda n: None
        return
    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )

    def task(description: str, total: int) -> Callable[[int], None]:
        task_id = bars.add_task(description, total=total)
        return lambda n: bars.advance(task_id, n)

    with bars:
        yield task


def command_line(*parts: str, **flags: object) -> str:
    """The command that reproduces a run (flags left at their defaults are omitted)."""
    words = ["orchestrator", *parts]
    for key, value in flags.items():
        if value is True:
            words.append(f"--{key.replace('_', '-')}")
        elif value not in (None, False):
            words += [f"--{key.replace('_', '-')}", str(value)]
    return shlex.join(words)
