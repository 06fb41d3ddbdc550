"""Tests for the safe condition and template language in orchestrator._expressions."""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import pytest

from orchestrator.graph.expressions import (
    Expression,
    ExpressionError,
    Template,
    is_template,
    parse_expression,
    parse_template,
)


def ev(source: str, context: Mapping[str, Any] | None = None) -> Any:
    return parse_expression(source).evaluate(context or {})


def error_of(source: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as info:
        parse_expression(source)
    return info.value


@dataclass
class Sentiment:
    label: str
    confidence: float
    scores: dict[str, float] | None = None


@dataclass
class Result:
    sentiment: Sentiment | None


CONTEXT: dict[str, Any] = {
    "sentiment": {"label": "negative", "confidence": 0.85},
    "intent": {"label": "billing", "tags": ["urgent", "vip"], "meta": {"lang": "en"}},
    "request": {"text": "my invoice is wrong", "count": 3},
    "obj": Result(Sentiment("positive", 0.6, {"positive": 0.6})),
}


# --- literals and keywords -----------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("'text'", "text"),
        ('"text"', "text"),
        ("42", 42),
        ("0.5", 0.5),
        ("-3", -3),
        ("-2.5", -2.5),
        ("- 1", -1),
        ("True", True),
        ("False", False),
        ("None", None),
        ("true", True),
        ("false", False),
        ("null", None),
        ("none", None),
        ("[1, 'a', true, null]", [1, "a", True, None]),
        ("(1, 2)", (1, 2)),
        ("[]", []),
        ("[-1, [2]]", [-1, [2]]),
    ],
)
def test_literals(source: str, expected: Any) -> None:
    value = ev(source)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize("keyword", ["true", "false", "null", "none"])
def test_keywords_are_constants_not_names(keyword: str) -> None:
    expression = parse_expression(f"a == {keyword}")
    assert expression.names == frozenset({"a"})
    assert expression.paths == (("a",),)
    # A context entry with the keyword's spelling is never read.
    assert parse_expression(keyword).evaluate({keyword: "shadow"}) != "shadow"


def test_list_literal_is_fresh_per_evaluation() -> None:
    expression = parse_expression("[1, 2]")
    first = expression.evaluate({})
    first.append(3)
    assert expression.evaluate({}) == [1, 2]


def test_list_of_names_is_evaluated() -> None:
    assert ev("[a, b.c, 1]", {"a": 1, "b": {"c": 2}}) == [1, 2, 1]
    assert ev("(a, b)", {"a": 1}) == (1, None)


# --- names, attributes, subscripts ----------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("sentiment", {"label": "negative", "confidence": 0.85}),
        ("sentiment.label", "negative"),
        ("intent.meta.lang", "en"),
        ("intent['label']", "billing"),
        ("intent['meta']['lang']", "en"),
        ("intent.tags[0]", "urgent"),
        ("intent.tags[-1]", "vip"),
        ("intent.tags[5]", None),
        ("intent.tags[-5]", None),
        ("intent.missing", None),
        ("intent.missing.deeper.still", None),
        ("missing", None),
        ("missing.a.b", None),
        ("missing[0]['x']", None),
        ("request.text[3]", "i"),
        ("request.count.real", 3),
        ("request.count[0]", None),
        ("intent.tags.something", None),
    ],
)
def test_lookup_on_dicts(source: str, expected: Any) -> None:
    assert ev(source, CONTEXT) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("obj.sentiment.label", "positive"),
        ("obj.sentiment.confidence", 0.6),
        ("obj.sentiment['label']", "positive"),
        ("obj.sentiment.scores.positive", 0.6),
        ("obj.sentiment.nothing", None),
        ("obj.sentiment.label[0]", "p"),
        ("obj[0]", None),
    ],
)
def test_lookup_on_objects(source: str, expected: Any) -> None:
    assert ev(source, CONTEXT) == expected


def test_none_propagates_through_object_chain() -> None:
    context = {"obj": Result(None)}
    assert ev("obj.sentiment.label", context) is None
    assert ev("obj.sentiment.label == 'positive'", context) is False
    assert ev("obj.sentiment.confidence >= 0.5", context) is False


def test_mapping_lookup_uses_get_not_attributes() -> None:
    # dict methods must not leak through attribute syntax on a mapping.
    assert ev("d.items", {"d": {"a": 1}}) is None
    assert ev("d.items", {"d": {"items": 5}}) == 5


class _Mapping(Mapping[Any, Any]):
    def __init__(self, data: dict[Any, Any]) -> None:
        self._data = data

    def __getitem__(self, key: Any) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def test_any_mapping_works_as_context_and_value() -> None:
    context = MappingProxyType({"a": _Mapping({"b": {"c": 7}}), "n": _Mapping({1: "one"})})
    assert ev("a.b.c", context) == 7
    assert ev("a['b']['c'] == 7", context) is True
    assert ev("a.zzz", context) is None
    assert ev("n[1]", context) == "one"


# --- comparisons --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("sentiment.label == 'negative'", True),
        ("sentiment.label == 'positive'", False),
        ("sentiment.label != 'positive'", True),
        ("sentiment.label != 'negative'", False),
        ("sentiment.confidence < 0.9", True),
        ("sentiment.confidence < 0.85", False),
        ("sentiment.confidence <= 0.85", True),
        ("sentiment.confidence <= 0.8", False),
        ("sentiment.confidence > 0.8", True),
        ("sentiment.confidence > 0.85", False),
        ("sentiment.confidence >= 0.85", True),
        ("sentiment.confidence >= 0.9", False),
        ("intent.label in ['billing', 'refund']", True),
        ("intent.label in ['refund']", False),
        ("intent.label not in ['refund']", True),
        ("intent.label not in ['billing', 'refund']", False),
        ("intent.label in ('billing', 'refund')", True),
        ("'vip' in intent.tags", True),
        ("'gold' in intent.tags", False),
        ("'lang' in intent.meta", True),
        ("'invoice' in request.text", True),
        ("intent.label in [request.text, 'billing']", True),
        ("request.count == 3", True),
        ("request.count == 3.0", True),
        ("-request.count == -3", True),
        ("-request.count < 0", True),
        ("sentiment.missing == null", True),
        ("sentiment.label != none", True),
        ("1 < request.count < 5", True),
        ("1 < request.count < 3", False),
        ("1 < request.count <= 3 == 3", True),
        ("0 < missing < 5", False),
    ],
)
def test_comparisons(source: str, expected: bool) -> None:
    assert ev(source, CONTEXT) is expected


@pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
@pytest.mark.parametrize(
    ("left", "right"),
    [("missing", "1"), ("1", "missing"), ("null", "null"), ("'a'", "1"), ("[1]", "'x'")],
)
def test_impossible_ordering_is_false(op: str, left: str, right: str) -> None:
    assert ev(f"{left} {op} {right}", CONTEXT) is False


def test_ordering_on_strings_and_lists_follows_python() -> None:
    assert ev("'a' < 'b'") is True
    assert ev("[1, 2] < [1, 3]") is True


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("'x' in missing", False),
        ("'x' in missing.deeper", False),
        ("'x' not in missing", True),
        ("1 in request.text", False),  # TypeError in Python
        ("[1] in intent.meta", False),  # unhashable key
        ("missing in [null, 1]", True),
        ("missing in ['a']", False),
    ],
)
def test_membership_edge_cases(source: str, expected: bool) -> None:
    assert ev(source, CONTEXT) is expected


def test_chained_comparison_evaluates_middle_once_and_short_circuits() -> None:
    calls: list[str] = []

    class Counting(Mapping[str, Any]):
        def __getitem__(self, key: str) -> Any:
            calls.append(key)
            return {"a": 1, "b": 5, "c": 3}[key]

        def __iter__(self) -> Iterator[str]:
            return iter("abc")

        def __len__(self) -> int:
            return 3

    assert parse_expression("a < b < c").evaluate(Counting()) is False
    assert calls == ["a", "b", "c"]
    calls.clear()
    assert parse_expression("b < a < c").evaluate(Counting()) is False
    assert calls == ["b", "a"]


# --- boolean logic ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("sentiment.label == 'negative' and sentiment.confidence >= 0.8", True),
        ("sentiment.label == 'negative' and sentiment.confidence >= 0.9", False),
        ("sentiment.label == 'positive' or intent.label == 'billing'", True),
        ("sentiment.label == 'positive' or intent.label == 'refund'", False),
        ("not sentiment.label == 'positive'", True),
        ("not (sentiment.label == 'negative')", False),
        ("not missing", True),
        ("not not intent", True),
        ("a == 1 or b == 2 and c == 3", False),
        ("(true or false) and not false", True),
    ],
)
def test_boolean_operators(source: str, expected: bool) -> None:
    assert ev(source, CONTEXT) is expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("0 and 1", 0),
        ("1 and 'x'", "x"),
        ("'' or 'fallback'", "fallback"),
        ("missing or request.count", 3),
        ("missing or null", None),
        ("request.text and request.count", 3),
        ("1 and 2 and 0 and 3", 0),
        ("0 or '' or 7 or 8", 7),
    ],
)
def test_and_or_return_operand_values_like_python(source: str, expected: Any) -> None:
    assert ev(source, CONTEXT) == expected


def test_and_or_short_circuit() -> None:
    read: list[str] = []

    class Recording(dict[str, Any]):
        def get(self, key: str, default: Any = None) -> Any:
            read.append(key)
            return super().get(key, default)

    context = Recording(a=0, b=1)
    assert parse_expression("a and b").evaluate(context) == 0
    assert read == ["a"]
    read.clear()
    assert parse_expression("b or a").evaluate(context) == 1
    assert read == ["b"]


@pytest.mark.parametrize(
    ("value", "expected"), [(2, -2), (1.5, -1.5), (None, None), ("x", None), (True, None)]
)
def test_unary_minus_at_run_time_only_negates_numbers(value: Any, expected: Any) -> None:
    assert ev("-x", {"x": value}) == expected


def test_unary_minus_on_constant_non_number_is_rejected() -> None:
    error = error_of("-'x'")
    assert error.message == "unary minus needs a number"
    assert error.column == 0


# --- rejected constructs ----------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message", "column"),
    [
        ("f(x)", "function calls are not allowed in expressions", 0),
        ("a.b == len(c)", "function calls are not allowed in expressions", 7),
        ("a.b.upper() == 'X'", "function calls are not allowed in expressions", 0),
        ("(lambda: 1) == 1", "lambdas are not allowed in expressions", 1),
        ("[x for x in a]", "comprehensions are not allowed in expressions", 0),
        ("a in {x for x in b}", "comprehensions are not allowed in expressions", 5),
        ("{k: v for k, v in a}", "comprehensions are not allowed in expressions", 0),
        ("any(x for x in a)", "function calls are not allowed in expressions", 0),
        ("a.b + 1 > 2", "arithmetic ('+') is not allowed", 0),
        ("x == a * 2", "arithmetic ('*') is not allowed", 5),
        ("x == 2 ** 8", "arithmetic ('**') is not allowed", 5),
        ("x == 'a' 'b' or x == 1 - 1", "arithmetic ('-') is not allowed", 21),
        ("a.__class__", "attribute names starting with '_' are not allowed", 2),
        ("request.__class__.__name__ == 'x'", "attribute names starting with '_'", 8),
        ("a._private == 1", "attribute names starting with '_' are not allowed", 2),
        ("x == a['_secret']", "keys starting with '_' are not allowed", 7),
        ("_private == 1", "names starting with '_' are not allowed", 0),
        ("__builtins__", "names starting with '_' are not allowed", 0),
        ("f'{a}' == 'x'", "f-strings are not allowed in expressions", 0),
        ("x == f'{a.b}'", "f-strings are not allowed in expressions", 5),
        ("x in [*a]", "starred expressions (*x) are not allowed in expressions", 6),
        ("(y := 1) == 1", "assignment expressions (:=) are not allowed", 1),
        ("a if b else c", "conditional expressions (x if c else y) are not allowed", 0),
        ("x in {'a': 1}", "dict literals are not allowed in expressions", 5),
        ("x in {'a'}", "set literals are not allowed in expressions", 5),
        ("a[1:2]", "slices are not allowed in expressions", 2),
        ("a[b]", "subscripts must be a constant string or integer", 2),
        ("a[1.5]", "subscripts must be a constant string or integer", 2),
        ("a[True]", "subscripts must be a constant string or integer", 2),
        ("a[f(x)]", "function calls are not allowed in expressions", 2),
        ("a is None", "'is' comparisons are not allowed in expressions", 0),
        ("a is not null", "'is' comparisons are not allowed in expressions", 0),
        ("~a", "the unary '~' operator is not allowed", 0),
        ("+a", "the unary '+' operator is not allowed", 0),
        ("'x'.upper", "attributes and subscripts are only allowed on names", 0),
        ("[1, 2][0]", "attributes and subscripts are only allowed on names", 0),
        ("true.x", "'true' is a constant", 0),
        ("x == b'bytes'", "bytes literals are not allowed in expressions", 5),
        ("x == 1j", "complex numbers are not allowed in expressions", 5),
        ("x == ...", "the literal Ellipsis is not allowed in expressions", 5),
        ("await x", "await expressions are not allowed in expressions", 0),
        ("a == 1 # and b", "comments are not allowed in expressions", 7),
    ],
)
def test_rejected_constructs(source: str, message: str, column: int) -> None:
    error = error_of(source)
    assert error.message.startswith(message)
    assert error.column == column
    assert error.source == source
    assert isinstance(error, ValueError)
    assert message in str(error)


def test_hints_guide_to_the_allowed_alternative() -> None:
    assert "==" in (error_of("a is None").hint or "")
    assert "{{" in (error_of("f'{a}'").hint or "")
    assert "and" in (error_of("f(x)").hint or "")


def test_inner_disallowed_construct_is_reported_before_the_chain_shape() -> None:
    # The call is the real problem, not the attribute on its result.
    error = error_of("x == f(y).z")
    assert error.message == "function calls are not allowed in expressions"
    assert error.column == 5


def test_columns_count_characters_not_utf8_bytes() -> None:
    error = error_of("a == 'café' and f(x)")
    assert error.column == 16
    assert error.source[error.column] == "f"
    error = error_of("a.é == 1 and b.__dict__")
    assert error.source[error.column :] == "__dict__"


def test_leading_whitespace_and_newlines_keep_columns() -> None:
    error = error_of("   a == f(x)")
    assert error.column == 8
    source = "a == 1 and\n  b == g(y)"
    error = error_of(source)
    assert source[error.column] == "g"


def test_multi_line_conditions_parse() -> None:
    expression = parse_expression(
        "sentiment.label == 'negative'\n  and sentiment.confidence > 0.5\n"
    )
    assert expression.evaluate(CONTEXT) is True


# --- syntax errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "column", "fragment"),
    [
        ("a b", 2, "invalid syntax"),
        ("a == (1", 5, "'(' was never closed"),
        ("a ==", 4, "invalid syntax"),
        ("a and", 5, "invalid syntax"),
        ("a == 'x", 5, "unterminated string literal"),
        ("x := 1", 2, "invalid syntax"),
        ("*a", 0, "invalid syntax"),
        ("a == )", 5, "unmatched ')'"),
        ("  a b", 4, "invalid syntax"),
        ("'é' == = 1", 7, "invalid syntax"),
    ],
)
def test_syntax_errors_have_column_and_hint(source: str, column: int, fragment: str) -> None:
    error = error_of(source)
    assert error.message.startswith("syntax error: ")
    assert fragment in error.message
    assert "detected at line" not in error.message
    assert error.column == column
    assert error.hint is not None


def test_syntax_hints() -> None:
    assert error_of("a b").hint == "conditions use Python-like syntax: a.b == 'x' and c.d >= 0.5"
    assert "'and'" in (error_of("a && b").hint or "")
    assert "'=='" in (error_of("a = 1").hint or "")


@pytest.mark.parametrize("source", ["", " ", "\n\t "])
def test_empty_expression_is_rejected(source: str) -> None:
    error = error_of(source)
    assert error.message == "empty expression"
    assert error.column == 0


def test_null_character_is_rejected() -> None:
    error = error_of("a == '\0'")
    assert error.column == 6
    assert "null characters" in error.message


def test_deep_nesting_is_an_expression_error_not_a_crash() -> None:
    error = error_of("not " * 5000 + "a")
    assert "nested too deeply" in error.message


def test_invalid_escape_does_not_warn() -> None:
    # pytest runs with filterwarnings=error: a leaked DeprecationWarning would fail here.
    assert ev(r"a == '\d'", {"a": "\\d"}) is True


# --- names and paths ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "names", "paths"),
    [
        (
            "sentiment.label == 'negative' and sentiment.confidence >= 0.8",
            {"sentiment"},
            (("sentiment", "label"), ("sentiment", "confidence")),
        ),
        (
            "intent.label in ['billing', 'refund'] or sentiment.label == intent.label",
            {"intent", "sentiment"},
            (("intent", "label"), ("sentiment", "label")),
        ),
        ("a", {"a"}, (("a",),)),
        ("a.b['c'].d == 1", {"a"}, (("a", "b", "c", "d"),)),
        ("a.items[0].name", {"a"}, (("a", "items"),)),
        ("a[0].b", {"a"}, (("a",),)),
        ("1 == 1", set(), ()),
        ("true and null == none", set(), ()),
        ("x in [y.z, -w.v]", {"x", "y", "w"}, (("x",), ("y", "z"), ("w", "v"))),
        ("not a.b and a.b.c", {"a"}, (("a", "b"), ("a", "b", "c"))),
    ],
)
def test_names_and_paths(source: str, names: set[str], paths: tuple[tuple[str, ...], ...]) -> None:
    expression = parse_expression(source)
    assert expression.names == frozenset(names)
    assert expression.paths == paths
    assert expression.source == source


def test_expression_equality_ignores_compiled_code_and_pickles() -> None:
    first = parse_expression("a.b == 1")
    second = parse_expression("a.b == 1")
    assert first == second
    assert hash(first) == hash(second)
    restored = pickle.loads(pickle.dumps(first))
    assert restored == first
    assert restored.evaluate({"a": {"b": 1}}) is True


def test_expression_error_pickles_with_its_attributes() -> None:
    error = error_of("a == f(x)")
    restored = pickle.loads(pickle.dumps(error))
    assert isinstance(restored, ExpressionError)
    assert (restored.message, restored.source, restored.column, restored.hint) == (
        error.message,
        error.source,
        error.column,
        error.hint,
    )
    assert str(restored) == str(error)


# --- templates ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("{{ a }}", True), ("text {{", True), ("plain text", False), ("{ a }", False), ("", False)],
)
def test_is_template(value: str, expected: bool) -> None:
    assert is_template(value) is expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ intent.tags }}", ["urgent", "vip"]),
        ("{{request.count}}", 3),
        ("{{ sentiment.confidence }}", 0.85),
        ("{{ intent.meta }}", {"lang": "en"}),
        ("{{ missing }}", None),
        ("{{ sentiment.confidence > 0.5 }}", True),
    ],
)
def test_single_placeholder_keeps_type(source: str, expected: Any) -> None:
    value = parse_template(source).render(CONTEXT)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Customer said: {{ request.text }}", "Customer said: my invoice is wrong"),
        ("{{ request.count }} items", "3 items"),
        ("{{ intent.label }}/{{ sentiment.label }}", "billing/negative"),
        ("[{{ missing }}]", "[]"),
        ("{{a.b}}{{ a.c }}", "xy"),
        (" {{ request.count }}", " 3"),
        ("tags: {{ intent.tags }}", "tags: ['urgent', 'vip']"),
        ("{{ '}}' }} and {{ '{{' }}", "}} and {{"),
        ("closing }} alone", "closing }} alone"),
        ("ok: {{ sentiment.confidence >= 0.8 }}", "ok: True"),
    ],
)
def test_mixed_text_renders_as_string(source: str, expected: str) -> None:
    context = {**CONTEXT, "a": {"b": "x", "c": "y"}}
    assert parse_template(source).render(context) == expected


def test_template_parts_and_expressions() -> None:
    template = parse_template("Hi {{ user.name }}, re: {{ ticket['id'] }}!")
    assert isinstance(template, Template)
    assert template.source == "Hi {{ user.name }}, re: {{ ticket['id'] }}!"
    assert [p if isinstance(p, str) else p.source for p in template.parts] == [
        "Hi ",
        "user.name",
        ", re: ",
        "ticket['id']",
        "!",
    ]
    assert [e.paths for e in template.expressions] == [(("user", "name"),), (("ticket", "id"),)]
    assert all(isinstance(e, Expression) for e in template.expressions)


@pytest.mark.parametrize("source", ["plain text", "", "a } b { c"])
def test_template_without_placeholders_renders_source(source: str) -> None:
    template = parse_template(source)
    assert template.expressions == ()
    assert template.render(CONTEXT) == source


@pytest.mark.parametrize(
    ("source", "column"),
    [("Hello {{ name", 6), ("{{", 0), ("{{ a }} and {{ b", 12), ("x }} {{ y } }", 5)],
)
def test_unclosed_placeholder(source: str, column: int) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_template(source)
    assert info.value.message == "unclosed '{{' in template"
    assert info.value.column == column
    assert info.value.source == source


def test_empty_placeholder() -> None:
    with pytest.raises(ExpressionError) as info:
        parse_template("a {{  }} b")
    assert info.value.message == "empty placeholder in template"
    assert info.value.column == 2


@pytest.mark.parametrize(
    ("source", "message", "column"),
    [
        ("Customer said: {{ f(request.text) }}", "function calls are not allowed", 18),
        ("{{ a }} then {{ b.__class__ }}", "attribute names starting with '_'", 18),
        ("x {{a b}}", "syntax error", 6),
        ("é {{ x }} {{   y +* 1 }}", "syntax error", 18),
        ("{{ a == 'x }}", "syntax error: unterminated string literal", 8),
        ("{{ ok }} {{\n  a.b == g(x) }}", "function calls are not allowed", 21),
    ],
)
def test_error_columns_inside_templates_point_into_the_whole_string(
    source: str, message: str, column: int
) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_template(source)
    assert info.value.message.startswith(message)
    assert info.value.column == column
    assert info.value.source == source


def test_template_render_is_repeatable_and_pickles() -> None:
    template = parse_template("n={{ n }}")
    assert [template.render({"n": i}) for i in range(3)] == ["n=0", "n=1", "n=2"]
    assert pickle.loads(pickle.dumps(template)) == template
