"""Graph files: the shipped ones load, and every kind of mistake is caught at load time."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from orchestrator import GraphFileError, GraphSpec, graph_json_schema
from orchestrator.graphs import SCHEMA_FILE, shipped_graphs
from orchestrator.specialists import SpecialistRegistry

from .conftest import GRAPHS


def _errors(text: str, registry: SpecialistRegistry) -> GraphFileError:
    with pytest.raises(GraphFileError) as info:
        GraphSpec.from_text(text, source="g.yaml", registry=registry)
    return info.value


def test_schema_file_matches_the_spec() -> None:
    shipped = json.loads(SCHEMA_FILE.read_text())
    assert shipped == graph_json_schema(), "graphs/graph.schema.json is stale: run `make schema`"


@pytest.mark.parametrize("path", sorted(GRAPHS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_graphs_validate_against_the_schema_and_load(path: Path) -> None:
    text = path.read_text()
    assert text.startswith("# yaml-language-server: $schema=./graph.schema.json"), (
        "shipped graphs carry the schema line for editors"
    )
    jsonschema.Draft202012Validator(graph_json_schema()).validate(yaml.safe_load(text))
    spec = GraphSpec.from_file(path)
    assert spec.name == path.stem


def test_package_ships_the_graphs() -> None:
    assert "support_triage" in shipped_graphs()


def test_scripted_graph_loads(scripted_graph_text: str, registry: SpecialistRegistry) -> None:
    spec = GraphSpec.from_text(scripted_graph_text, registry=registry)
    assert set(spec.subtasks()) == {"a", "b"}
    assert spec.edges[1].source == "work"
    assert spec.min_confidence("first") == 0.5


def test_from_dict_matches_from_text(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    data = yaml.safe_load(scripted_graph_text)
    assert GraphSpec.from_dict(data, registry=registry) == GraphSpec.from_text(
        scripted_graph_text, registry=registry
    )


def test_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(GraphFileError, match="file not found"):
        GraphSpec.from_file(tmp_path / "nope.yaml")


def test_unknown_key_has_line_column_and_did_you_mean(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    text = scripted_graph_text.replace("policies:\n  retries: 1", "policies:\n  retires: 1")
    exc = _errors(text, registry)
    (issue,) = exc.issues
    assert issue.message == "unknown key 'retires'"
    assert issue.hint is not None and "did you mean 'retries'?" in issue.hint
    lines = text.splitlines()
    assert lines[issue.line - 1].strip().startswith("retires")  # type: ignore[operator]
    assert issue.column == 3
    assert f"g.yaml:{issue.line}:3: unknown key 'retires'" in str(exc)


def test_unknown_key_inside_a_node_and_a_subtask(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    text = scripted_graph_text.replace(
        "- {id: a, specialist: first}", "- {id: a, specialst: first}"
    )
    exc = _errors(text, registry)
    messages = {i.message for i in exc.issues}
    assert "unknown key 'specialst'" in messages
    assert "missing required key 'specialist'" in messages
    unknown = next(i for i in exc.issues if i.message == "unknown key 'specialst'")
    assert unknown.path == ("nodes", "work", "subtasks", 0, "specialst")
    assert "did you mean 'specialist'?" in (unknown.hint or "")
    assert unknown.line == text.splitlines().index("      - {id: a, specialst: first}") + 1


def test_wrong_type_points_at_the_value(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    text = scripted_graph_text.replace("retries: 1", "retries: lots")
    (issue,) = _errors(text, registry).issues
    assert issue.path == ("policies", "retries")
    assert "integer" in issue.message and "'lots'" in issue.message
    assert issue.column == len("  retries: ") + 1


def test_out_of_range_policy(scripted_graph_text: str, registry: SpecialistRegistry) -> None:
    text = scripted_graph_text.replace("retries: 1", "retries: 99")
    (issue,) = _errors(text, registry).issues
    assert "less than or equal to 10" in issue.message


def test_unknown_node_kind(scripted_graph_text: str, registry: SpecialistRegistry) -> None:
    text = scripted_graph_text.replace(
        "kind: set\n    set: {queue: general}", "kind: sett\n    set: {queue: general}"
    )
    (issue,) = _errors(text, registry).issues
    assert issue.message == "unknown node kind"
    assert issue.path == ("nodes", "other_route", "kind")
    assert "kind: specialists" in (issue.hint or "")


def test_edge_to_nowhere(scripted_graph_text: str, registry: SpecialistRegistry) -> None:
    text = scripted_graph_text.replace(
        "- {from: work, to: other_route}", "- {from: work, to: other_rout}"
    )
    exc = _errors(text, registry)
    nowhere = next(i for i in exc.issues if "nowhere" in i.message)
    assert nowhere.message == "edge to nowhere: no node named 'other_rout'"
    assert nowhere.hint == "did you mean 'other_route'?"
    assert nowhere.path == ("edges", 2, "to")
    assert nowhere.line == text.splitlines().index("  - {from: work, to: other_rout}") + 1


def test_unknown_specialist_binding(scripted_graph_text: str, registry: SpecialistRegistry) -> None:
    text = scripted_graph_text.replace(
        "  first:\n    uses: scripted", "  first:\n    uses: scriptd"
    )
    (issue,) = _errors(text, registry).issues
    assert "unknown specialist 'scriptd'" in issue.message
    assert "did you mean 'scripted'?" in issue.message
    assert issue.path == ("specialists", "first", "uses")


def test_subtask_names_an_undeclared_specialist(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    text = scripted_graph_text.replace("{id: a, specialist: first}", "{id: a, specialist: frist}")
    (issue,) = _errors(text, registry).issues
    assert issue.message == "unknown specialist 'frist'"
    assert issue.hint == "did you mean 'first'?"


def test_unknown_specialist_option(scripted_graph_text: str, registry: SpecialistRegistry) -> None:
    text = scripted_graph_text.replace("      labels: [refund, other]", "      lables: [refund]")
    (issue,) = _errors(text, registry).issues
    assert issue.message == "unknown option 'lables' for specialist 'scripted'"
    assert issue.path == ("specialists", "first", "options", "lables")


def test_unreachable_node(scripted_graph_text: str, registry: SpecialistRegistry) -> None:
    text = scripted_graph_text.replace(
        "  other_route:\n", "  orphan:\n    kind: set\n    set: {x: 1}\n  other_route:\n"
    )
    (issue,) = _errors(text, registry).issues
    assert issue.message == "node 'orphan' is unreachable from START"
    assert issue.line == text.splitlines().index("  orphan:") + 1


def test_cycle_with_no_exit(scripted_graph_text: str, registry: SpecialistRegistry) -> None:
    text = scripted_graph_text + (
        "  - {from: refund_route, to: other_route}\n  - {from: other_route, to: refund_route}\n"
    )
    exc = _errors(text, registry)
    messages = sorted(i.message for i in exc.issues)
    assert messages == [
        "node 'other_route' is in a cycle with no exit: no path from it reaches END",
        "node 'refund_route' is in a cycle with no exit: no path from it reaches END",
    ]


def test_a_cycle_with_an_exit_is_allowed(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    text = scripted_graph_text + (
        "  - {from: refund_route, to: work, when: \"fields.queue == 'again'\"}\n"
        "  - {from: refund_route, to: END}\n"
    )
    GraphSpec.from_text(text, registry=registry)


def test_conditional_edges_need_a_default(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    text = scripted_graph_text.replace(
        "  - {from: work, to: other_route}\n", '  - {from: work, to: other_route, when: "a.ok"}\n'
    )
    (issue,) = _errors(text, registry).issues
    assert "every edge out of 'work' has a `when`" in issue.message
    assert issue.hint == "add a default edge: `- {from: work, to: END}`"


def test_condition_syntax_error_has_the_column(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    text = scripted_graph_text.replace(
        "a.label == 'refund' and a.verified", "a.label = 'refund' and a.verified"
    )
    (issue,) = _errors(text, registry).issues
    assert issue.message.startswith("invalid condition")
    assert issue.path == ("edges", 1, "when")
    line = text.splitlines()[issue.line - 1]  # type: ignore[operator]
    assert line[issue.column - 1 :].startswith("= 'refund'")  # type: ignore[operator]


def test_condition_may_not_call_functions(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    text = scripted_graph_text.replace(
        "a.label == 'refund' and a.verified", "__import__('os').system('true')"
    )
    (issue,) = _errors(text, registry).issues
    assert issue.message.startswith("invalid condition")


def test_condition_names_are_checked(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    text = scripted_graph_text.replace(
        "a.label == 'refund' and a.verified", "aa.label == 'refund' and a.lable == 'x'"
    )
    exc = _errors(text, registry)
    messages = sorted(i.message for i in exc.issues)
    assert messages[0].startswith("'a' has no attribute 'lable'")
    assert messages[1].startswith("unknown name 'aa'")
    hints = {i.hint for i in exc.issues}
    assert "did you mean 'label'?" in hints and "did you mean 'a'?" in hints


def test_template_errors_and_names(scripted_graph_text: str, registry: SpecialistRegistry) -> None:
    text = scripted_graph_text.replace('"previous said {{ a.label }}"', '"said {{ zz.label }"')
    (issue,) = _errors(text, registry).issues
    assert issue.message.startswith("invalid template")


def test_dependencies_are_checked(scripted_graph_text: str, registry: SpecialistRegistry) -> None:
    unknown = scripted_graph_text.replace("depends_on: [a]", "depends_on: [x]")
    (issue,) = _errors(unknown, registry).issues
    assert issue.message == "'b' depends on unknown subtask 'x'"
    cyclic = scripted_graph_text.replace(
        "- {id: a, specialist: first}", "- {id: a, specialist: first, depends_on: [b]}"
    )
    (issue,) = _errors(cyclic, registry).issues
    assert issue.message in ("dependency cycle: a -> b -> a", "dependency cycle: b -> a -> b")


def test_duplicate_subtask_ids(scripted_graph_text: str, registry: SpecialistRegistry) -> None:
    text = scripted_graph_text.replace("      - id: b\n", "      - id: a\n").replace(
        "depends_on: [a]", "depends_on: []"
    )
    (issue,) = _errors(text, registry).issues
    assert issue.message == "subtask id 'a' is already used in node 'work'"


def test_unknown_input_for_specialist(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    text = scripted_graph_text.replace(
        'input: {text: "previous said {{ a.label }}"}', 'input: {txt: "x"}'
    )
    messages = {i.message for i in _errors(text, registry).issues}
    assert messages == {
        "unknown input 'txt' for specialist 'second'",
        "missing input 'text' for specialist 'second'",
    }


def test_invalid_yaml_has_a_position(registry: SpecialistRegistry) -> None:
    (issue,) = _errors("name: x\nnodes: [a\n", registry).issues
    assert issue.message.startswith("invalid YAML")
    assert issue.line is not None


def test_duplicate_yaml_keys_are_rejected(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    text = scripted_graph_text.replace("name: scripted\n", "name: scripted\nname: again\n")
    (issue,) = _errors(text, registry).issues
    assert "duplicate key 'name'" in issue.message and issue.line == 3


def test_not_a_mapping(registry: SpecialistRegistry) -> None:
    (issue,) = _errors("- just\n- a list\n", registry).issues
    assert "must be a mapping" in issue.message


def test_all_problems_are_reported_at_once(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    text = scripted_graph_text.replace("retries: 1", "retries: -1").replace(
        "name: scripted", "name: scripted\ncolour: blue"
    )
    assert len(_errors(text, registry).issues) == 2


def test_error_inside_a_folded_condition_points_into_the_block(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    text = scripted_graph_text.replace(
        "  - {from: work, to: refund_route, when: \"a.label == 'refund' and a.verified\"}\n",
        "  - from: work\n    to: refund_route\n    when: >\n      a.label == 'refund'\n"
        "      and a.verifed\n",
    )
    (issue,) = _errors(text, registry).issues
    assert issue.message.startswith("'a' has no attribute 'verifed'")
    # Name problems point at the condition; a syntax error points at the exact character.
    broken = text.replace("and a.verifed", "and a.verified)")
    (issue,) = _errors(broken, registry).issues
    assert issue.message.startswith("invalid condition")
    line = broken.splitlines()[issue.line - 1]  # type: ignore[operator]
    assert line.strip() == "and a.verified)"
    assert line[issue.column - 1] == ")"  # type: ignore[operator]
