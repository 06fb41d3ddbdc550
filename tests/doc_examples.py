"""The code examples of README.md and docs/: found, checked for a reason when they cannot run,
and run.

The rules a page follows:

- A fenced block is an example when its language is Python (``python``) or a shell (``sh``,
  ``bash``, ``shell``, ``console``). Other languages (``yaml``, ``json``, ``text``) are shown,
  not run.
- The only option an info string takes is ``title="..."``. A title that is a file name
  (``title="triage.yaml"``) writes the block to that file in the page's working directory, for
  the examples after it. A title that starts with ``Not run here:`` says why the block cannot
  run in the tests (it needs a GPU, an API key, the network or a long training run); the
  reason is shown to readers as the block's caption.
- The blocks of one page run in order in one fresh temporary directory, like a reader
  following the page. Consecutive Python blocks share one interpreter (a later block may use
  an earlier one's names); a comment line ``#> text`` after a ``print`` states a line the
  block prints, and it is checked.
- A shell block runs when each of its commands is ``orchestrator ...`` (optionally after
  ``VAR=value`` assignments); a trailing ``# exit code N`` says that the command exits with N.
  Wildcards expand as in a shell, and ``> FILE`` writes what the command prints to a file.
  Any other command (``make``, ``pip``, ``npx``) needs the ``Not run here:`` title.
- ``orchestrator serve`` runs until it announces that it serves, then stops; over HTTP it
  takes a free port of 127.0.0.1 instead of the page's, and a server on any other address
  needs the ``Not run here:`` title.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "NOT_RUN",
    "Block",
    "Command",
    "doc_pages",
    "page_blocks",
    "problems",
    "shell_commands",
]

NOT_RUN = "Not run here:"
PYTHON = frozenset({"python", "py"})
SHELL = frozenset({"sh", "bash", "shell", "console"})

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_OPTION = re.compile(r'\s*(?P<key>[A-Za-z_][\w-]*)="(?P<value>[^"]*)"')
_FILE_NAME = re.compile(r"^[\w.-]+(/[\w.-]+)*\.\w+$")
_ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*=")
_EXIT_CODE = re.compile(r"#\s*exit code (\d+)\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown page."""

    page: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    options: dict[str, str] = field(default_factory=dict)
    info_error: str | None = None

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"

    @property
    def title(self) -> str | None:
        return self.options.get("title")

    @property
    def not_run_reason(self) -> str | None:
        title = self.title
        if title is None or not title.startswith(NOT_RUN):
            return None
        return title[len(NOT_RUN) :].strip()

    @property
    def file_name(self) -> str | None:
        title = self.title
        return title if title is not None and _FILE_NAME.match(title) else None

    @property
    def is_example(self) -> bool:
        return self.lang in PYTHON or self.lang in SHELL

    @property
    def runs(self) -> bool:
        return self.is_example and self.not_run_reason is None and self.file_name is None

    @property
    def expected_output(self) -> list[str]:
        """The lines a Python block says it prints (``#> text`` comments)."""
        return [
            line.strip()[2:].strip()
            for line in self.code.splitlines()
            if line.strip().startswith("#>")
        ]


@dataclass(frozen=True)
class Command:
    """One command of a shell block: its environment assignments, arguments and exit code."""

    line: int
    env: dict[str, str]
    argv: list[str]
    exit_code: int = 0


def doc_pages(repo: Path) -> list[Path]:
    """README.md and every Markdown page of docs/, relative to the repository."""
    docs = sorted(p.relative_to(repo) for p in (repo / "docs").rglob("*.md"))
    return [Path("README.md"), *docs]


def _parse_info(info: str) -> tuple[str, dict[str, str], str | None]:
    info = info.strip()
    lang, _, rest = info.partition(" ")
    options: dict[str, str] = {}
    rest = rest.strip()
    while rest:
        found = _OPTION.match(rest)
        if found is None:
            return lang, options, f'cannot read {rest!r}: options are key="value"'
        options[found["key"]] = found["value"]
        rest = rest[found.end() :].strip()
    unknown = sorted(set(options) - {"title"})
    if unknown:
        return lang, options, f'unknown option(s) {", ".join(unknown)}: only title="..."'
    return lang, options, None


def page_blocks(page: Path, text: str) -> list[Block]:
    """The fenced code blocks of a page, in order (nested fences are not examples)."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None or "`" in opening["info"]:
            i += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        lang, options, error = _parse_info(opening["info"])
        body: list[str] = []
        j = i + 1
        while j < len(lines):
            closing = _FENCE.match(lines[j])
            if (
                closing is not None
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
            ):
                break
            line = lines[j]
            # A block inside a list item is indented; its code is not.
            body.append(line[indent:] if not line[:indent].strip() else line.lstrip())
            j += 1
        blocks.append(Block(page, i + 1, lang, "\n".join(body) + "\n", options, error))
        i = j + 1
    return blocks


def shell_commands(block: Block) -> list[Command]:
    """The commands of a shell block; comments and blank lines dropped, ``\\`` joined."""
    commands: list[Command] = []
    pending = ""
    start = 0
    for offset, raw in enumerate(block.code.splitlines(), start=1):
        stripped = raw.strip()
        if not pending:
            start = block.line + offset
            if not stripped or stripped.startswith("#"):
                continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        line, pending = pending + stripped, ""
        code = _EXIT_CODE.search(line)
        words = shlex.split(line, comments=True)
        env: dict[str, str] = {}
        while words and _ASSIGNMENT.match(words[0]):
            key, _, value = words.pop(0).partition("=")
            env[key] = value
        commands.append(Command(start, env, words, int(code[1]) if code else 0))
    return commands


def problems(block: Block) -> list[str]:
    """Why a block breaks the rules above (an empty list when it follows them)."""
    found: list[str] = []
    if block.info_error is not None:
        found.append(f"{block.where}: {block.info_error}")
    title = block.title
    if title is not None and block.is_example:
        if title.startswith(NOT_RUN) and not block.not_run_reason:
            found.append(f'{block.where}: say why after "{NOT_RUN}"')
        elif not title.startswith(NOT_RUN) and block.file_name is None:
            found.append(
                f'{block.where}: title {title!r} is neither a file name nor "{NOT_RUN} REASON"'
            )
    if block.lang in SHELL and block.runs:
        try:
            commands = shell_commands(block)
        except ValueError as exc:
            return [*found, f"{block.where}: cannot split the commands: {exc}"]
        for command in commands:
            if not command.argv or command.argv[0] != "orchestrator":
                found.append(
                    f"{block.where}: line {command.line} runs {' '.join(command.argv[:2])!r}, "
                    f'not an orchestrator command; give the block title="{NOT_RUN} REASON"'
                )
    return found
