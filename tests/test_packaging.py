"""The framework's folders install under `orchestrator.*`: a user's own `tools.py` or `agents/`
next to their script never shadows them, for an editable install and for a wheel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import REPO

USER_SCRIPT = """\
import json, sys
import tools, agents, specialists          # the user's own modules
import orchestrator
from orchestrator.tools import InProcessToolset
from orchestrator.agents import LocalPlanner
from orchestrator.specialists import default_registry
from orchestrator.graphs import shipped_graph

result = orchestrator.Orchestrator.from_file(
    shipped_graph("support_triage"), checkpointer="none"
).run("The app crashes every time I open it")
print(json.dumps({
    "user": [tools.VALUE, agents.VALUE, specialists.VALUE],
    "framework": orchestrator.__file__,
    "tools": sys.modules["orchestrator.tools"].__file__,
    "intent": result.value("intent.label"),
}))
"""


def _user_project(root: Path) -> Path:
    root.mkdir()
    (root / "tools.py").write_text('VALUE = "user tools"\n')
    (root / "agents").mkdir()
    (root / "agents" / "__init__.py").write_text('VALUE = "user agents"\n')
    (root / "specialists.py").write_text('VALUE = "user specialists"\n')
    (root / "main.py").write_text(USER_SCRIPT)
    return root


def _run_user_script(project: Path, env: dict[str, str] | None = None) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "main.py"],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


@pytest.mark.slow
def test_user_modules_do_not_shadow_the_framework(tmp_path: Path) -> None:
    out = _run_user_script(_user_project(tmp_path / "project"))
    assert out["user"] == ["user tools", "user agents", "user specialists"]
    assert out["intent"] == "technical_issue"
    assert str(out["tools"]).startswith(str(REPO / "tools")), "editable install maps tools/"


def _pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", *args, "-q"], check=True, capture_output=True, timeout=300
    )


@pytest.mark.slow
def test_wheel_layout_imports_cleanly_next_to_user_modules(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    _pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(REPO))
    (wheel,) = wheels.glob("specialist_orchestrator-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for expected in (
        "orchestrator/tools/__init__.py",
        "orchestrator/agents/__init__.py",
        "orchestrator/specialists/intent.py",
        "orchestrator/graphs/support_triage.yaml",
        "orchestrator/graphs/graph.schema.json",
        "orchestrator/specialists/data/support_intents.yaml",
    ):
        assert expected in names, expected
    assert not any(n.startswith(("tools/", "agents/", "specialists/")) for n in names)
    target = tmp_path / "site"
    _pip("install", "--no-deps", "--target", str(target), str(wheel))
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = _run_user_script(_user_project(tmp_path / "project"), env)
    assert str(out["framework"]).startswith(str(target))
    assert str(out["tools"]).startswith(str(target / "orchestrator" / "tools"))
    assert out["user"] == ["user tools", "user agents", "user specialists"]
    assert out["intent"] == "technical_issue"
