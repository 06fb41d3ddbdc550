"""Every third-party module the project imports is declared in pyproject.toml.

A module-level import in the library needs a ``[project] dependencies`` entry; an import inside
a function, under ``TYPE_CHECKING`` or guarded by ``except ImportError`` may come from an extra
(it runs only when that feature is used). The tests may use the ``dev`` extra too. Import names
map to distributions through ``importlib.metadata``, as installed here.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib.metadata import distribution, packages_distributions

import pytest

from .conftest import REPO

PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
FIRST_PARTY = {"orchestrator", "tests"}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(requirements: list[str]) -> set[str]:
    names = set()
    for requirement in requirements:
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
        assert match, requirement
        names.add(_normalise(match.group()))
    return names


CORE = _declared(PROJECT["project"]["dependencies"])
EXTRAS = {
    extra: _declared(requirements)
    for extra, requirements in PROJECT["project"]["optional-dependencies"].items()
}


@dataclass(frozen=True)
class Import:
    module: str
    where: str
    deferred: bool  # inside a function, under TYPE_CHECKING, or guarded by except ImportError


def _guards_import_error(node: ast.Try) -> bool:
    return any(
        handler.type is not None
        and any(name in ast.unparse(handler.type) for name in ("ImportError", "ModuleNotFound"))
        for handler in node.handlers
    )


def _imports(source: str, where: str) -> Iterator[Import]:
    def walk(node: ast.AST, deferred: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            inner = deferred or (
                isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
                or (isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test))
                or (isinstance(child, ast.Try) and _guards_import_error(child))
            )
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield Import(alias.name, f"{where}:{child.lineno}", inner)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                yield Import(child.module, f"{where}:{child.lineno}", inner)
            yield from walk(child, inner)

    yield from walk(ast.parse(source), False)


def _third_party(folders: list[str]) -> Iterator[Import]:
    for folder in folders:
        # Modules next to each other in a folder of scripts import each other by name.
        local = {p.stem for p in (REPO / folder).glob("*.py")}
        for path in sorted((REPO / folder).rglob("*.py")):
            source = path.read_text(encoding="utf-8")
            for found in _imports(source, str(path.relative_to(REPO))):
                top = found.module.split(".")[0]
                if top not in sys.stdlib_module_names and top not in FIRST_PARTY | local:
                    yield found


@cache
def _distributions(module: str) -> frozenset[str]:
    """The installed distributions that provide ``module``: for a namespace shared by several
    (``langgraph.checkpoint.sqlite``), the one whose files hold it."""
    candidates = packages_distributions().get(module.split(".")[0], [])
    folder = module.replace(".", "/") + "/"
    holding = [
        name
        for name in candidates
        if any(str(file).startswith(folder) for file in distribution(name).files or [])
    ]
    return frozenset(_normalise(name) for name in holding or candidates)


def _problems(found: Iterator[Import], allowed: set[str], deferred_allowed: set[str]) -> list[str]:
    problems = []
    for imp in found:
        provided = _distributions(imp.module)
        if not provided:
            problems.append(
                f"{imp.where}: {imp.module} is not installed here; declare it in pyproject.toml "
                "and install the extras (make install-dev)"
            )
        elif not provided & (deferred_allowed if imp.deferred else allowed):
            needs = (
                "an extra or [project] dependencies"
                if imp.deferred
                else (
                    "[project] dependencies (a module-level import runs on every import; import an "
                    "extra's module inside the function that needs it)"
                )
            )
            problems.append(
                f"{imp.where}: imports {imp.module} ({', '.join(sorted(provided))}), "
                f"which is not declared in {needs}"
            )
    return sorted(set(problems))


def test_the_library_imports_only_what_it_declares() -> None:
    folders = sorted(set(PROJECT["tool"]["setuptools"]["package-dir"].values()))
    extras = set().union(*(names for extra, names in EXTRAS.items() if extra != "dev"))
    assert _problems(_third_party(folders), CORE, CORE | extras) == []


def test_the_tests_import_only_what_the_extras_declare() -> None:
    everything = CORE.union(*EXTRAS.values())
    assert _problems(_third_party(["tests"]), everything, everything) == []


@pytest.mark.parametrize(
    ("source", "deferred"),
    [
        ("import numpy", [False]),
        ("def f():\n    import torch", [True]),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch", [False, True]),
        ("try:\n    import torch\nexcept ImportError:\n    torch = None", [True]),
        ("try:\n    import torch\nfinally:\n    pass", [False]),
    ],
)
def test_imports_are_classified_by_where_they_run(source: str, deferred: list[bool]) -> None:
    assert [found.deferred for found in _imports(source, "example.py")] == deferred
