"""Fuzzing the graph loader and the expression language.

Every random YAML structure and every near-valid graph file (a working one with a few
characters or values changed) either loads or fails with one GraphFileError whose issues say
what is wrong; nothing else escapes. Every random expression either parses or fails with an
ExpressionError, and a parsed one evaluates against any context without raising. A normal
run tries a few dozen cases per property; `make fuzz` runs thousands (RELIABILITY.md).
"""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from orchestrator import GraphFileError, GraphSpec
from orchestrator.graph.expressions import ExpressionError, parse_expression, parse_template
from orchestrator.specialists import SpecialistRegistry
from orchestrator.specialists.testing import ScriptedSpecialist

from .conftest import GRAPHS, SCRIPTED_GRAPH

pytestmark = pytest.mark.fuzz

#: The built-in specialists (for the shipped graph) and the scripted one (for the tests' graph).
REGISTRY = SpecialistRegistry()
REGISTRY.register(ScriptedSpecialist)
BASES = [SCRIPTED_GRAPH, (GRAPHS / "support_triage.yaml").read_text()]
GRAPH_KEYS = [
    "version", "name", "description", "specialists", "servers", "nodes", "edges", "kind",
    "subtasks", "id", "specialist", "input", "depends_on", "set", "from", "to", "when",
    "policies", "escalation", "frontier", "uses", "via", "options", "min_confidence",
    "backend", "endpoint", "command", "args", "url", "planner", "tools", "START", "END",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["{{ a.label }}", "{{ request.text }}", "{{", "a.ok", "START", "END"]),
)
KEYS = st.sampled_from(GRAPH_KEYS) | st.text(max_size=8)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=25,
)
# Characters that change how YAML reads a line, with some plain ones.
YAML_PIECES = st.text(
    alphabet=st.sampled_from(list(":-[]{}&*!|>'\"#%@`,? \n\t") + list("ab01_") + ["é", "\u200b"]),
    max_size=8,
)


def loads_or_reports(text: str) -> None:
    """The property: a spec, or one GraphFileError listing issues that render."""
    try:
        GraphSpec.from_text(text, source="fuzz.yaml", registry=REGISTRY)
    except GraphFileError as exc:
        assert exc.issues, "a GraphFileError lists at least one issue"
        assert all(issue.message for issue in exc.issues)
        assert str(exc).startswith("fuzz.yaml")


@given(data=st.dictionaries(KEYS, VALUES, max_size=8))
def test_random_yaml_structures(data: dict[str, Any]) -> None:
    loads_or_reports(yaml.safe_dump(data, allow_unicode=True))


@given(
    base=st.sampled_from(BASES),
    edits=st.lists(
        st.tuples(st.sampled_from(["delete", "insert", "replace"]), st.floats(0, 1), YAML_PIECES),
        min_size=1,
        max_size=3,
    ),
)
def test_near_valid_graph_texts(base: str, edits: list[tuple[str, float, str]]) -> None:
    text = base
    for action, where, piece in edits:
        at = math.floor(where * len(text))
        if action == "delete":
            text = text[:at] + text[at + len(piece) + 1 :]
        elif action == "insert":
            text = text[:at] + piece + text[at:]
        else:
            text = text[:at] + piece + text[at + len(piece) :]
    loads_or_reports(text)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


@given(base=st.sampled_from(BASES), data=st.data())
def test_near_valid_graph_structures(base: str, data: st.DataObject) -> None:
    """One value of a working graph replaced (or removed): wrong types, names, shapes."""
    graph = yaml.safe_load(base)
    path = data.draw(st.sampled_from(_paths(graph)[1:]))
    parent = graph
    for step in path[:-1]:
        parent = parent[step]
    if data.draw(st.booleans()):
        parent[path[-1]] = data.draw(VALUES)
    else:
        del parent[path[-1]]
    loads_or_reports(yaml.safe_dump(graph, allow_unicode=True))


EXPRESSION_PIECES = st.sampled_from(
    [
        "a", "b.c", "a.label", "request.text", "request.metadata.k", "a['x']", "a[0]", "a[-1]",
        " == ", " != ", " < ", " >= ", " in ", " not in ", " and ", " or ", "not ", "-", "(",
        ")", "[", "]", ",", "'s'", '"t"', "1", "2.5", "0x10", "1e999", "true", "null", "none",
        "__class__", "f(", "lambda x: x", "#", "{{", "}}", ".", " ", " if ", " else ", "**",
        "+", " is ", "{}", "b'x'", "1j", "...", ":=", "\\", "\n", "9" * 30,
    ]
)  # fmt: skip
EXPRESSIONS = st.lists(EXPRESSION_PIECES, max_size=20).map("".join) | st.text(max_size=30)
CONTEXTS = st.dictionaries(st.sampled_from(["a", "b", "request", "fields"]), VALUES, max_size=4)


@given(source=EXPRESSIONS, context=CONTEXTS)
def test_expressions_parse_or_fail_clearly_and_evaluate_without_raising(
    source: str, context: dict[str, Any]
) -> None:
    try:
        expression = parse_expression(source)
    except ExpressionError as exc:
        assert exc.message and 0 <= exc.column <= len(source)
        return
    expression.evaluate(context)


@given(
    pieces=st.lists(st.sampled_from(["text ", "{{ ", " }}", "}}", "{{"]) | EXPRESSIONS, max_size=8),
    context=CONTEXTS,
)
def test_templates_parse_or_fail_clearly_and_render_without_raising(
    pieces: list[str], context: dict[str, Any]
) -> None:
    source = "".join(pieces)
    try:
        template = parse_template(source)
    except ExpressionError as exc:
        assert exc.message and 0 <= exc.column <= len(source)
        return
    template.render(context)
