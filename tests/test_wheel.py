"""The sdist and the wheel that ``python -m build`` makes: ``twine check`` passes, and the wheel,
installed into a fresh virtual environment outside the source tree, runs the demo graph and
serves a specialist to the official MCP Inspector.

The fresh environment gets the wheel with ``--no-deps``; its dependencies come from this test
environment's site-packages, appended to the fresh one's path by a ``.pth`` file. Reinstalling
the dependencies (torch, onnxruntime, langgraph, ...) would take minutes and the network. A
directory named in a ``.pth`` file is added to ``sys.path`` without running the ``.pth`` files
inside it, so this environment's editable install never activates there: every
``orchestrator`` module comes from the wheel, which the test checks.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import pytest

from .conftest import REPO
from .test_inspector import _inspect, needs_npx

pytestmark = pytest.mark.slow

DISTRIBUTION = "specialist_orchestrator"


def _run(*command: str | Path, cwd: Path, timeout: float = 600) -> str:
    done = subprocess.run(
        [str(c) for c in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist, and the wheel built from it, as ``python -m build`` makes them."""
    out = tmp_path_factory.mktemp("dist")
    # Without build isolation: the build backend (setuptools) is in the dev extra, and an
    # isolated build would fetch it from the network.
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, REPO, cwd=out)
    return out


@pytest.fixture(scope="module")
def venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment, outside the source tree, with the wheel installed."""
    root = tmp_path_factory.mktemp("venv")
    _run(sys.executable, "-m", "venv", "--without-pip", root, cwd=root)
    python = root / "bin" / "python"
    site = Path(
        _run(
            python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=root
        ).strip()
    )
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (wheel,) = dist.glob(f"{DISTRIBUTION}-*.whl")
    _run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "-q",
        "--no-deps",
        wheel,
        cwd=root,
    )
    return root


def test_build_makes_an_sdist_and_a_wheel_that_twine_accepts(dist: Path) -> None:
    (sdist,) = dist.glob(f"{DISTRIBUTION}-*.tar.gz")
    (wheel,) = dist.glob(f"{DISTRIBUTION}-*-py3-none-any.whl")
    report = _run(sys.executable, "-m", "twine", "check", "--strict", sdist, wheel, cwd=dist)
    assert report.count("PASSED") == 2, report
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = HeaderParser().parsestr(archive.read(metadata_name).decode())
    assert metadata["Name"] == "specialist-orchestrator"
    assert metadata["License-Expression"] == "Apache-2.0"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    urls = dict(u.split(", ", 1) for u in metadata.get_all("Project-URL") or [])
    assert {"Homepage", "Documentation", "Repository", "Issues", "Changelog"} <= set(urls)
    assert "Typing :: Typed" in (metadata.get_all("Classifier") or [])
    assert "orchestrator/graphs/support_triage.yaml" in names


def test_the_installed_wheel_runs_the_demo_graph_outside_the_source_tree(
    venv: Path, tmp_path: Path
) -> None:
    located = _run(
        venv / "bin" / "python",
        "-c",
        "import orchestrator, orchestrator.tools, orchestrator.specialists.intent as m; "
        "print(orchestrator.__file__); print(m.__file__)",
        cwd=tmp_path,
    )
    for line in located.splitlines():
        assert line.startswith(str(venv)), f"{line} is not from the installed wheel"
    result = json.loads(
        _run(
            venv / "bin" / "orchestrator",
            "run",
            "support_triage",
            "--input",
            "I was charged twice and nobody answers my emails",
            "--json",
            "--checkpointer",
            "none",
            cwd=tmp_path,
        )
    )
    assert result["status"] == "ok"
    assert result["fields"]["queue"]["value"] == "billing"
    assert {s["id"] for s in result["subtasks"]} == {"intent", "sentiment"}


@needs_npx
def test_the_installed_wheel_serves_to_the_mcp_inspector(venv: Path, tmp_path: Path) -> None:
    listing = _inspect(
        [str(venv / "bin" / "orchestrator"), "serve", "sentiment"],
        "--method",
        "tools/list",
        cwd=tmp_path,
    )
    tools = {t["name"]: t for t in listing["tools"]}
    assert set(tools) == {"sentiment", "sentiment_batch"}
    assert tools["sentiment"]["inputSchema"]["required"] == ["text"]
