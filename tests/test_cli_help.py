"""Snapshots of every command's ``--help``: the commands, arguments, flags and defaults users see.

Regenerate with ``ORCHESTRATOR_UPDATE_SNAPSHOTS=1 pytest tests/test_cli_help.py`` when a change is
wanted, and read the diff.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SNAPSHOTS = Path(__file__).parent / "snapshots" / "help"

COMMANDS = [
    [],
    ["run"],
    ["resume"],
    ["submit"],
    ["worker"],
    ["batch"],
    ["serve"],
    ["eval-cascade"],
    ["eval"],
    ["eval-distill"],
    ["distill"],
    ["traces"],
    ["traces", "export"],
    ["graph"],
    ["graph", "validate"],
    ["graph", "show"],
    ["graph", "schema"],
    ["graph", "list"],
    ["specialists"],
    ["specialists", "list"],
    ["specialists", "train"],
    ["specialists", "build-pack"],
    ["specialists", "versions"],
    ["specialists", "promote"],
    ["specialists", "rollback"],
    ["specialists", "serve-command"],
    ["mcp"],
    ["mcp", "config"],
]

# One process renders them all; the environment fixes what the rendering depends on (the width,
# colour, and the home folder that `mcp config --help` names).
RENDER = """\
import json, sys
from orchestrator.cli.main import main

for argv in json.loads(sys.argv[1]):
    print("=== " + " ".join(["orchestrator", *argv]), flush=True)
    main([*argv, "--help"])
    sys.stdout.flush()
"""

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _render_all(tmp_path: Path) -> dict[str, str]:
    forced = ("FORCE_COLOR", "PY_COLORS", "GITHUB_ACTIONS", "TERMINAL_WIDTH", "TTY_COMPATIBLE")
    env = {key: value for key, value in os.environ.items() if key not in forced}
    env.update({"COLUMNS": "100", "HOME": "/home/user", "NO_COLOR": "1"})
    done = subprocess.run(
        [sys.executable, "-c", RENDER, json.dumps(COMMANDS)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    pages: dict[str, str] = {}
    for block in done.stdout.split("=== ")[1:]:
        title, _, body = block.partition("\n")
        lines = [_ANSI.sub("", line).rstrip() for line in body.splitlines()]
        pages[title] = "\n".join(lines).strip("\n") + "\n"
    return pages


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="the pages are snapshotted as Linux renders")
def test_every_commands_help_matches_its_snapshot(tmp_path: Path) -> None:
    pages = _render_all(tmp_path)
    assert list(pages) == [" ".join(["orchestrator", *argv]) for argv in COMMANDS]
    if os.environ.get("ORCHESTRATOR_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOTS.mkdir(parents=True, exist_ok=True)
        for title, page in pages.items():
            (SNAPSHOTS / f"{title.replace(' ', '_')}.txt").write_text(page, encoding="utf-8")
        pytest.skip("help snapshots written")
    for title, page in pages.items():
        expected = (SNAPSHOTS / f"{title.replace(' ', '_')}.txt").read_text(encoding="utf-8")
        assert page == expected, f"`{title} --help` changed; see the module docstring to update"
