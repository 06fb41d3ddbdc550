"""Tests for the position-keeping YAML loader."""

from __future__ import annotations

import math
import textwrap

import pytest
import yaml

from orchestrator.graph.positions import LoadedYaml, Position, YamlSyntaxError, load_yaml

GRAPH = textwrap.dedent(
    """\
    name: support
    nodes:
      triage:
        subtasks:
          - specialist: intent
            timeout: 2.5
          - specialist: sentiment
            args: {lang: en, strict: true}
      done: null
    """
)


def _error(text: str) -> YamlSyntaxError:
    with pytest.raises(YamlSyntaxError) as info:
        load_yaml(text)
    return info.value


def test_nested_key_and_value_positions() -> None:
    loaded = load_yaml(GRAPH)
    first = ("nodes", "triage", "subtasks", 0)
    assert loaded.key_positions[("name",)] == Position(1, 1)
    assert loaded.value_positions[("name",)] == Position(1, 7)
    assert loaded.key_positions[("nodes", "triage")] == Position(3, 3)
    assert loaded.value_positions[("nodes", "triage", "subtasks")] == Position(5, 7)
    assert loaded.value_positions[first] == Position(5, 9)
    assert loaded.key_positions[(*first, "specialist")] == Position(5, 9)
    assert loaded.value_positions[(*first, "specialist")] == Position(5, 21)
    assert loaded.key_positions[(*first, "timeout")] == Position(6, 9)
    assert loaded.value_positions[(*first, "timeout")] == Position(6, 18)
    second_args = ("nodes", "triage", "subtasks", 1, "args")
    assert loaded.value_positions[second_args] == Position(8, 15)
    assert loaded.key_positions[(*second_args, "strict")] == Position(8, 26)
    assert loaded.value_positions[(*second_args, "strict")] == Position(8, 34)
    assert loaded.value_positions[()] == Position(1, 1)
    assert loaded.data["nodes"]["triage"]["subtasks"][1]["args"] == {"lang": "en", "strict": True}


def test_position_prefers_value_then_key_then_ancestor() -> None:
    loaded = load_yaml(GRAPH)
    path = ("nodes", "triage", "subtasks", 1, "specialist")
    assert loaded.position(path) == loaded.value_positions[path]
    assert loaded.key_position(path) == loaded.key_positions[path]
    # A missing field inside the first subtask points at that subtask's mapping.
    assert loaded.position(("nodes", "triage", "subtasks", 0, "missing")) == Position(5, 9)
    assert loaded.position(["nodes", "nope", "deeper", 3]) == loaded.value_positions[("nodes",)]
    assert loaded.key_position(("nodes", "nope")) == loaded.value_positions[("nodes",)]
    assert loaded.position(("elsewhere",)) == Position(1, 1)
    assert loaded.position(()) == Position(1, 1)


def test_position_never_raises() -> None:
    loaded = load_yaml(GRAPH)
    assert loaded.position(("nodes", ["unhashable"])) == loaded.value_positions[("nodes",)]  # type: ignore[arg-type]
    empty = LoadedYaml(data=None, key_positions={}, value_positions={})
    assert empty.position(("a", 0)) is None
    assert empty.key_position(("a",)) is None


SCALARS = textwrap.dedent(
    """\
    plain: hello world
    quoted_true: "true"
    single: 'null'
    yes_word: yes
    bools: [true, false, True, FALSE, on, off]
    nulls: [null, ~, Null, '']
    empty:
    ints: [0, -7, +3, 0o17, 0x1F, 1_000, 012]
    floats: [1.5, -0.25, 1e3, 6.02e+23, .inf, -.Inf]
    version_string: "1.0"
    version_float: 1.0
    date: 2024-05-01
    stamp: 2024-05-01T10:20:30Z
    colon_text: "a: b"
    literal: |
      line one
      line two
    folded: >
      folded
      text
    explicit: !!str 123
    explicit_float: !!float 3
    binary: !!binary aGVsbG8=
    nested: {a: [1, {b: null}], "c d": 'x'}
    7: int key
    1.5: float key
    null: null key
    """
)


def test_scalar_typing_matches_safe_load() -> None:
    loaded = load_yaml(SCALARS)
    expected = yaml.safe_load(SCALARS)
    assert loaded.data == expected
    assert type(loaded.data["quoted_true"]) is str
    assert type(loaded.data["version_float"]) is float
    assert loaded.data[7] == "int key"
    # Non-str, non-int keys keep their constructed value in the data and their source text
    # in paths.
    assert loaded.key_positions[(7,)] == Position(25, 1)
    assert loaded.key_positions[("1.5",)] == Position(26, 1)
    assert loaded.key_positions[("null",)] == Position(27, 1)


def test_nan_matches_safe_load() -> None:
    value = load_yaml("x: .nan").data["x"]
    assert math.isnan(value)


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n"])
def test_empty_document(text: str) -> None:
    loaded = load_yaml(text)
    assert loaded.data is None
    assert loaded.position(("anything",)) is None


def test_explicit_empty_document_is_null() -> None:
    assert load_yaml("---\n").data is None


def test_scalar_root() -> None:
    loaded = load_yaml("  just text\n")
    assert loaded.data == "just text"
    assert loaded.position(()) == Position(1, 3)


def test_duplicate_key_reported_at_duplicate() -> None:
    error = _error("nodes:\n  a: 1\n  b: 2\n  a: 3\n")
    assert error.position == Position(4, 3)
    assert error.message == "duplicate key 'a' (first at line 2)"
    assert str(error) == "line 4, column 3: duplicate key 'a' (first at line 2)"
    assert isinstance(error, ValueError)


def test_duplicate_key_in_flow_mapping() -> None:
    error = _error("x: {k: 1, k: 2}\n")
    assert error.position == Position(1, 11)


def test_bad_indentation_position() -> None:
    error = _error("nodes:\n  triage:\n    kind: agent\n   model: x\n")
    assert error.position is not None
    assert error.position.line == 4
    assert "expected <block end>" in error.message


def test_mapping_value_in_wrong_place() -> None:
    error = _error("a: 1\n b: 2\n")
    assert error.position == Position(2, 3)
    assert "mapping values are not allowed here" in error.message


def test_unclosed_quote_points_at_opening_quote() -> None:
    error = _error('name: ok\nprompt: "never closed\nother: 1\n')
    assert error.position == Position(2, 9)
    assert "quoted scalar" in error.message


def test_unclosed_flow_sequence() -> None:
    error = _error("a: 1\nitems: [1, 2\n")
    assert error.position == Position(2, 8)


def test_tab_indentation_hint() -> None:
    error = _error("a:\n\t- b\n")
    assert error.position == Position(2, 1)
    assert "tabs" in error.message


def test_multiple_documents_rejected() -> None:
    error = _error("a: 1\n---\nb: 2\n")
    assert error.message.startswith("expected one document")
    assert error.position == Position(2, 1)


def test_merge_keys_rejected() -> None:
    error = _error("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n")
    assert "merge keys" in error.message
    assert error.position == Position(3, 3)


def test_aliases_are_expanded() -> None:
    text = "defaults: &d\n  retries: 3\n  tags: [a, b]\nfirst: *d\nsecond: *d\n"
    loaded = load_yaml(text)
    assert loaded.data == yaml.safe_load(text)
    assert loaded.data["first"] == {"retries": 3, "tags": ["a", "b"]}
    # Each use is its own copy, so changing one does not change the others.
    loaded.data["first"]["tags"].append("c")
    assert loaded.data["second"]["tags"] == ["a", "b"]
    assert loaded.key_positions[("second",)] == Position(5, 1)
    # Values reached through the alias are positioned at the anchored original.
    assert loaded.value_positions[("second", "retries")] == Position(2, 12)


def test_recursive_alias_rejected() -> None:
    error = _error("a: &x [1, *x]\n")
    assert "alias" in error.message


def test_non_scalar_key_rejected() -> None:
    error = _error("? [a, b]\n: 1\n")
    assert error.position == Position(1, 3)


def test_unknown_tag_rejected_with_position() -> None:
    error = _error("a: 1\nb: !custom value\n")
    assert error.position == Position(2, 4)
    assert error.message == "could not determine a constructor for the tag '!custom'"


def test_unconstructible_scalar_rejected() -> None:
    error = _error("a: !!int twelve\n")
    assert error.position == Position(1, 4)
    assert "twelve" in error.message


def test_collection_tag_rejected() -> None:
    error = _error("s: !!set {a, b}\n")
    assert error.position == Position(1, 4)
    assert "unsupported tag" in error.message


def test_special_character_rejected() -> None:
    error = _error("a: 1\nb: x\x07\n")
    assert error.position == Position(2, 5)
