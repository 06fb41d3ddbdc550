"""Graph files at the limits: deep nesting, long expressions, huge literals and large graphs
end in one clear error with a line (or load), never in a RecursionError or MemoryError."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import GraphFileError, GraphSpec
from orchestrator.cli.main import ExitCode, main
from orchestrator.graph.expressions import ExpressionError, parse_expression
from orchestrator.graph.loader import MAX_GRAPH_CHARS
from orchestrator.graph.positions import MAX_DEPTH
from orchestrator.specialists import SpecialistRegistry


def _issue(text: str, registry: SpecialistRegistry) -> tuple[str, int | None]:
    with pytest.raises(GraphFileError) as info:
        GraphSpec.from_text(text, source="g.yaml", registry=registry)
    first = info.value.issues[0]
    return first.message, first.line


def _with_extra_key(graph: str, block: str) -> str:
    """The graph with a top-level key `x` holding `block` (indented under it)."""
    return graph.replace("policies:\n", f"x:\n{block}policies:\n", 1)


def test_flow_lists_nested_a_thousand_deep(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    text = scripted_graph_text.replace(
        "name: scripted\n", "name: scripted\nx: " + "[" * 1000 + "]" * 1000 + "\n"
    )
    message, line = _issue(text, registry)
    assert message == f"invalid YAML: values are nested more than {MAX_DEPTH} levels deep"
    assert line == 3


def test_block_mappings_nested_a_thousand_levels(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    block = "".join("  " * depth + "k:\n" for depth in range(1, 1001))
    message, line = _issue(_with_extra_key(scripted_graph_text, block), registry)
    assert message == f"invalid YAML: values are nested more than {MAX_DEPTH} levels deep"
    assert line is not None and line > MAX_DEPTH // 2


def test_aliases_cannot_nest_values_past_the_cap(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    # Each anchor is shallow, but every alias nests the previous one 40 levels further.
    deep = "[" * 40 + "]" * 40
    lines = [f"  a0: &a0 {deep}"]
    for i in range(1, 6):
        lines.append(f"  a{i}: &a{i} " + "[" * 40 + f"*a{i - 1}" + "]" * 40)
    message, _ = _issue(_with_extra_key(scripted_graph_text, "\n".join(lines) + "\n"), registry)
    assert message.startswith(f"invalid YAML: values are nested more than {MAX_DEPTH} levels")


def test_moderate_nesting_still_loads(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    text = scripted_graph_text.replace(
        "default: {label: other, confidence: 0.9}",
        "default: {label: other, confidence: 0.9, note: " + "[" * 20 + "]" * 20 + "}",
    )
    with pytest.raises(GraphFileError) as info:  # the option is unknown, but it is read
        GraphSpec.from_text(text, registry=registry)
    assert "nested" not in str(info.value)


def test_a_condition_of_twenty_thousand_nots(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    text = scripted_graph_text.replace(
        "when: \"a.label == 'refund' and a.verified\"", 'when: "' + "not " * 20000 + 'a.ok"'
    )
    message, line = _issue(text, registry)
    assert message == "invalid condition: expression is nested too deeply"
    assert line == next(i for i, ln in enumerate(text.splitlines(), 1) if "not not" in ln)


def test_deep_nesting_is_an_expression_error() -> None:
    for source in ("not " * 990 + "a", "-" * 3000 + "1", "(" * 1900 + "a" + ")" * 1900):
        with pytest.raises(ExpressionError) as info:
            parse_expression(source)
        assert info.value.message in (
            "expression is nested too deeply",
            "syntax error: too many nested parentheses",
        )


def test_hex_literal_of_five_thousand_digits_fails_validation(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    text = scripted_graph_text.replace('{{ a.label }}"}', "{{ 0x" + "f" * 5000 + ' }}"}')
    message, _ = _issue(text, registry)
    assert message == "invalid template: integer literal out of range: integers must fit in 64 bits"


def test_integer_literals_must_fit_in_64_bits() -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression("a.b == 0x" + "f" * 40)
    assert info.value.message == "integer literal out of range: integers must fit in 64 bits"
    assert info.value.column == 7  # 0-based, where the literal starts
    assert parse_expression("a == -9223372036854775808").evaluate({"a": -(2**63)}) is True


def test_yaml_integers_must_fit_in_64_bits(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    text = scripted_graph_text.replace(
        "set: {queue: general}", "set: {queue: 0x" + "f" * 5000 + "}"
    )
    message, line = _issue(text, registry)
    assert message == (
        "invalid YAML: integer out of range: values must fit in 64 bits "
        "(quote it to keep it as text)"
    )
    assert line == text.splitlines().index("    set: {queue: 0x" + "f" * 5000 + "}") + 1


def _long_chain(nodes: int) -> str:
    lines = ["version: 1", "name: chain", "specialists:", "  first: {uses: scripted}", "nodes:"]
    lines += ["  work:", "    kind: specialists", "    subtasks:"]
    lines += [
        f"      - {{id: s{i}, specialist: first, depends_on: [s{i - 1}]}}" for i in range(1, nodes)
    ]
    lines.insert(8, "      - {id: s0, specialist: first}")
    for i in range(nodes):
        lines += [f"  n{i}:", "    kind: set", f"    set: {{v: '{{{{ s{i}.label }}}}'}}"]
    lines += ["edges:", "  - {from: START, to: work}", "  - {from: work, to: n0}"]
    lines += [f"  - {{from: n{i}, to: n{i + 1}}}" for i in range(nodes - 1)]
    return "\n".join(lines) + "\n"


def test_long_chains_of_nodes_and_dependencies_load(registry: SpecialistRegistry) -> None:
    # Dependency cycles and graph cycles were found recursively: 3,000 levels overflowed.
    spec = GraphSpec.from_text(_long_chain(3000), registry=registry)
    assert len(spec.nodes) == 3001


def test_a_long_dependency_cycle_is_found(registry: SpecialistRegistry) -> None:
    text = _long_chain(3000).replace(
        "{id: s0, specialist: first}", "{id: s0, specialist: first, depends_on: [s2999]}"
    )
    message, _ = _issue(text, registry)
    assert message.startswith("dependency cycle: s0 -> s2999 -> s2998")


def test_a_long_cycle_with_no_exit_is_found(registry: SpecialistRegistry) -> None:
    text = _long_chain(3000) + "  - {from: n2999, to: n1000}\n"
    with pytest.raises(GraphFileError) as info:
        GraphSpec.from_text(text, registry=registry)
    messages = [i.message for i in info.value.issues]
    assert len(messages) == 2000
    assert messages[0] == "node 'n1000' is in a cycle with no exit: no path from it reaches END"


def test_a_node_looping_on_itself_with_no_exit(
    scripted_graph_text: str, registry: SpecialistRegistry
) -> None:
    text = scripted_graph_text + "  - {from: other_route, to: other_route}\n"
    message, _ = _issue(text, registry)
    assert message == "node 'other_route' is in a cycle with no exit: no path from it reaches END"


def test_the_cli_exits_3_with_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("version: 1\nname: deep\nnodes: " + "[" * 1000 + "]" * 1000 + "\n")
    assert main(["graph", "validate", str(deep)]) == ExitCode.INVALID
    err = capsys.readouterr().err
    assert "deep.yaml:3:" in err and "nested more than" in err
    assert "Traceback" not in err


def test_a_file_over_the_size_cap(tmp_path: Path, registry: SpecialistRegistry) -> None:
    with pytest.raises(GraphFileError) as info:
        GraphSpec.from_text("#" * (MAX_GRAPH_CHARS + 1), registry=registry)
    assert info.value.issues[0].message == (
        f"the file has {MAX_GRAPH_CHARS + 1:,} characters; graph files may hold at most "
        f"{MAX_GRAPH_CHARS:,} characters"
    )
    huge = tmp_path / "huge.yaml"
    with huge.open("wb") as handle:  # sparse: nothing is written, nothing is read
        handle.truncate(4 * MAX_GRAPH_CHARS + 1)
    with pytest.raises(GraphFileError) as info:
        GraphSpec.from_file(huge, registry=registry)
    assert "bytes; graph files may hold at most" in info.value.issues[0].message
