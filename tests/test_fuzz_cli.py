"""Fuzzing the command line in process: `main(argv)` on random commands, options and values
(undecodable bytes, files in other encodings, out-of-range numbers, huge and invisible
inputs) ends with a documented exit code and never lets an exception or a traceback out.
A normal run tries a few dozen argument lists; `make fuzz` runs thousands (RELIABILITY.md).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.cli import serve as serve_command
from orchestrator.cli._exit import ExitCode
from orchestrator.cli.main import main
from orchestrator.specialists import SpecialistRegistry, _registry
from orchestrator.specialists.testing import ScriptedSpecialist

from .conftest import SCRIPTED_GRAPH

pytestmark = pytest.mark.fuzz

#: The exit codes README and --help document (130, interrupted, needs a real Ctrl-C).
DOCUMENTED = {code.value for code in ExitCode} - {ExitCode.INTERRUPTED}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder with the files the arguments name, as the working directory; the default
    registry holds the scripted specialist, and `serve` records instead of serving."""
    root = tmp_path_factory.mktemp("cli-fuzz")
    (root / "good.yaml").write_text(SCRIPTED_GRAPH.replace("name: scripted", "name: good"))
    (root / "bad.yaml").write_text("name: [\n")
    (root / "latin1.txt").write_bytes("café crème".encode("latin-1"))
    (root / "utf8.txt").write_text("I was charged twice", encoding="utf-8")
    (root / "empty.txt").write_text("")
    (root / "big.txt").write_text("x" * 100_001)  # over the specialists' 100,000 characters
    (root / "folder").mkdir()
    registry = SpecialistRegistry(load_entry_points=False)
    registry.register(ScriptedSpecialist)

    async def recorded(*args: Any, **kwargs: Any) -> None:
        return None

    previous = Path.cwd()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_registry, "_default", registry)
        patch.setattr(serve_command, "run_server", recorded)
        patch.setenv("FUZZ_TOKEN", "s3cret")
        patch.delenv("ANTHROPIC_API_KEY", raising=False)
        os.chdir(root)
        try:
            yield root
        finally:
            os.chdir(previous)


VALUES = st.one_of(
    st.sampled_from(
        [
            "good.yaml", "bad.yaml", "missing.yaml", "folder", "support_triage", "scripted",
            "@latin1.txt", "@utf8.txt", "@empty.txt", "@missing.txt", "@folder", "@-", "@",
            "caf\udce9", "\udcff\udcfe", "\u200b", " ", "", "refund please", "@big.txt", "x" * 300,
            "0", "-1", "1", "65535", "65536", "99999", "1e9", "nan", "abc", "0.5",
            "127.0.0.1", "0.0.0.0", "::1", "stdio", "http", "tcp", "sqlite", "memory", "none",
            "FUZZ_TOKEN", "UNSET_TOKEN", "--", "-", "--json",
        ]
    ),
    st.text(max_size=12),
)  # fmt: skip
COMMANDS: dict[tuple[str, ...], list[str]] = {
    ("run",): ["--input", "-i", "--thread", "--checkpointer", "--state-dir", "--prices"],
    ("graph", "validate"): [],
    ("graph", "show"): [],
    ("graph", "schema"): [],
    ("graph", "list"): [],
    ("serve",): [
        "--graph", "--transport", "--host", "--port", "--token-env", "--max-input-chars",
        "--max-batch", "--allowed-host",
    ],
    ("specialists", "list"): [],
}  # fmt: skip
FLAGS = {("run",): ["--json", "--inprocess"], ("graph", "show"): ["--compiled"]}


@st.composite
def argument_lists(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(sorted(COMMANDS)))
    argv = list(command)
    options = COMMANDS[command]
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["option", "value", "flag"]))
        if kind == "option" and options:
            argv += [draw(st.sampled_from(options)), draw(VALUES)]
        elif kind == "flag" and FLAGS.get(command):
            argv.append(draw(st.sampled_from(FLAGS[command])))
        else:
            argv.append(draw(VALUES))
    return argv


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=argument_lists())
def test_every_argument_list_ends_with_a_documented_exit_code(
    argv: list[str],
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code = main(argv)
    out, err = capsys.readouterr()
    assert code in DOCUMENTED, (argv, code, err)
    assert "Traceback" not in err + out, (argv, err)
    if code == ExitCode.INVALID:  # on stderr, or in the JSON asked for with --json
        assert (err + out).strip(), "an invalid argument is explained"
