"""The documentation site: it builds with ``mkdocs build --strict``, its API reference covers
the public API, and the reference pages keep up with the code they describe."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import orchestrator

from .conftest import REPO

DOCS = REPO / "docs"


def _schema_keys(node: object) -> set[str]:
    """Every property name anywhere in a JSON Schema."""
    found: set[str] = set()
    if isinstance(node, dict):
        properties = node.get("properties")
        if isinstance(properties, dict):
            found |= set(properties)
        for value in node.values():
            found |= _schema_keys(value)
    elif isinstance(node, list):
        for value in node:
            found |= _schema_keys(value)
    return found


def test_the_graph_files_page_names_every_key_of_the_schema() -> None:
    schema = json.loads((REPO / "graphs" / "graph.schema.json").read_text())
    page = (DOCS / "graph-files.md").read_text()
    missing = sorted(k for k in _schema_keys(schema) if f"`{k}`" not in page)
    assert not missing, f"docs/graph-files.md does not describe: {missing}"


def test_the_files_the_pages_cite_exist() -> None:
    cited = {
        (page.relative_to(REPO), path)
        for page in [REPO / "README.md", *DOCS.rglob("*.md")]
        for path in re.findall(
            r"`((?:tests|benchmarks|graphs|orchestrator|specialists)/[\w/.-]+\.\w+)`",
            page.read_text(),
        )
    }
    assert cited, "the pages cite no file of the repository"
    missing = sorted(f"{page}: {path}" for page, path in cited if not (REPO / path).exists())
    assert not missing, missing


def test_every_page_is_in_the_navigation() -> None:
    nav = (REPO / "mkdocs.yml").read_text()
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert pages
    assert [p for p in pages if f" {p}" not in nav] == []


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None, reason="the `docs` extra is not installed"
)
def test_the_site_builds_strict_with_the_whole_public_api(tmp_path: Path) -> None:
    layout = tmp_path / "docs-src"
    # mkdocstrings reads the installed layout, where the folders are orchestrator.*
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(layout),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    site = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO,
        env={**os.environ, "ORCHESTRATOR_DOCS_SRC": str(layout), "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    reference = (site / "api" / "index.html").read_text()
    documented = set(re.findall(r'id="orchestrator\.(\w+)"', reference))
    assert sorted(set(orchestrator.__all__) - documented) == []
