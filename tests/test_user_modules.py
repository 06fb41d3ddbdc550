"""`orchestrator --specialists MODULE`: the user's own specialists, registered by a module or a
.py file, are listed, run and served without an entry point; a module that is missing or broken
is one clear line with exit code 3."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from orchestrator.cli.main import ExitCode, main
from orchestrator.specialists import SpecialistRegistry, _registry

MODULE = '''
from collections.abc import Sequence

from pydantic import BaseModel

from orchestrator import Prediction, Specialist, register_specialist
from orchestrator.specialists import TextInput


class ShoutOutput(BaseModel):
    label: str


class Shout(Specialist[TextInput, ShoutOutput]):
    name = "shout_detector"
    description = "Says whether a message is written in capitals. Input: {text}."

    @property
    def labels(self) -> tuple[str, ...]:
        return ("shouting", "calm")

    def predict_batch(self, inputs: Sequence[TextInput]) -> list[Prediction[ShoutOutput]]:
        return [
            Prediction(ShoutOutput(label="shouting" if i.text.isupper() else "calm"), 0.9)
            for i in inputs
        ]


register_specialist(Shout)
'''

GRAPH = """\
version: 1
name: shouts
specialists:
  shout_detector: {min_confidence: 0.5}
nodes:
  read:
    kind: specialists
    subtasks:
      - {id: shout, specialist: shout_detector}
edges:
  - {from: START, to: read}
"""


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding the user's module, as the current folder, with a registry and module
    cache of its own."""
    (tmp_path / "shouting.py").write_text(MODULE, encoding="utf-8")
    (tmp_path / "shouts.yaml").write_text(GRAPH, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_registry, "_default", SpecialistRegistry())
    monkeypatch.delitem(sys.modules, "shouting", raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return tmp_path


def test_a_module_from_the_current_folder_is_listed_and_run(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--specialists", "shouting", "specialists", "list"]) == 0
    assert "shout_detector" in capsys.readouterr().out
    run = ["run", "shouts.yaml", "--input", "WHERE IS MY ORDER", "--inprocess", "--json"]
    assert main(["--specialists", "shouting", *run, "--checkpointer", "none"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["status"] == "ok"
    assert result["fields"]["shout.label"]["value"] == "shouting"


def test_a_py_file_is_imported_by_its_path(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(folder / "shouting.py")
    assert main(["--specialists", path, "specialists", "list"]) == 0
    assert "shout_detector" in capsys.readouterr().out


def test_without_the_option_the_graph_names_an_unknown_specialist(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "shouts.yaml", "--input", "hi", "--inprocess", "--checkpointer", "none"])
    assert code == ExitCode.INVALID
    assert "shout_detector" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("no_such_module", "--specialists no_such_module: no module 'no_such_module'"),
        ("missing.py", "--specialists missing.py: no such file"),
        ("broken", "--specialists broken: "),
        ("raising", "--specialists raising: importing it failed: RuntimeError: boom"),
    ],
)
def test_a_missing_or_broken_module_is_one_line_with_exit_3(
    folder: Path, capsys: pytest.CaptureFixture[str], name: str, said: str
) -> None:
    (folder / "broken.py").write_text("def f(:\n", encoding="utf-8")
    (folder / "raising.py").write_text("raise RuntimeError('boom')\n", encoding="utf-8")
    assert main(["--specialists", name, "specialists", "list"]) == ExitCode.INVALID
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_serve_publishes_the_users_specialist_over_stdio(folder: Path) -> None:
    command = str(Path(sys.executable).parent / "orchestrator")
    server = StdioServerParameters(
        command=command,
        args=["--specialists", "shouting", "serve", "shout_detector"],
        cwd=str(folder),
        env={**os.environ},
    )

    async def listing() -> tuple[list[str], str]:
        with open(os.devnull, "w") as quiet:
            async with Client(stdio_client(server, errlog=quiet)) as client:
                tools = await client.list_tools()
                called = await client.call_tool("shout_detector", {"text": "HELLO THERE"})
                assert called.structured_content is not None
                return sorted(t.name for t in tools.tools), called.structured_content["output"][
                    "label"
                ]

    names, label = asyncio.run(listing())
    assert names == ["shout_detector", "shout_detector_batch"]
    assert label == "shouting"
