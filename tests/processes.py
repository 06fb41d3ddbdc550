"""Looking at the processes a test started: is one alive, which ones run a given file, where
one serves."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; only its parent has not reaped it yet.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


def running_with(path: Path) -> list[int]:
    """Pids of the live processes whose command line names `path`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if str(path).encode() in cmdline:
            found.append(int(proc.name))
    return found


def served_url(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    """The URL a server started with ``--transport http --port 0`` announces on stderr."""
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    while True:
        assert time.monotonic() < deadline and proc.poll() is None, "server did not start"
        found = re.search(r"on (http://127\.0\.0\.1:\d+/mcp)", proc.stderr.readline())
        if found:
            return found.group(1)
