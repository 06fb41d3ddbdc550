"""Verification of function calls: the full JSON Schema (checked against jsonschema with
generated schemas and values), required arguments, duplicate calls, values grounded in the
conversation, and the wrong calls of realistic requests failing so that they escalate."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from orchestrator.specialists import default_registry
from orchestrator.specialists.function_call.dates import moments_in, value_moment
from orchestrator.specialists.function_call.schema import normalize_schema, schema_problems
from orchestrator.specialists.function_call.specialist import (
    FunctionCallInput,
    FunctionCallOutput,
    FunctionCallSpecialist,
    ToolCall,
)

TOOLS = json.loads(
    (
        Path(__file__).resolve().parent.parent
        / "specialists"
        / "evaluation"
        / "data"
        / "assistant_tools.json"
    ).read_text(encoding="utf-8")
)
NOW = datetime(2026, 12, 6, 10, 0)  # a Sunday


@pytest.fixture(scope="module")
def checker() -> FunctionCallSpecialist:
    """verify() needs no model: the specialist is not loaded."""
    spec = default_registry().create("function_call", {"filler": "extract"})
    assert isinstance(spec, FunctionCallSpecialist)
    return spec


def _verify(checker: FunctionCallSpecialist, request: Any, *calls: tuple[str, dict[str, Any]]):
    item = FunctionCallInput(request=request, functions=TOOLS, now=NOW)
    output = FunctionCallOutput(
        calls=[ToolCall(name=n, arguments=a) for n, a in calls], no_call=not calls
    )
    return checker.verify(item, output)


# -- every JSON Schema keyword -------------------------------------------------------------
LEVEL = {
    "type": "object",
    "properties": {
        "level": {"type": "integer", "minimum": 0, "maximum": 10},
        "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "email": {"type": "string", "format": "email"},
        "day": {"type": "string", "format": "date"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2, "uniqueItems": True},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.5},
    },
    "required": ["level"],
}


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"level": 99}, "level: 99 is greater than the maximum of 10"),
        ({"level": 1, "code": "eur"}, "code: 'eur' does not match '^[A-Z]{3}$'"),
        ({"level": 1, "email": "nobody"}, "email: 'nobody' is not a 'email'"),
        ({"level": 1, "day": "2026-13-40"}, "day: '2026-13-40' is not a 'date'"),
        ({"level": 1, "tags": ["a", "a"]}, "tags: ['a', 'a'] has non-unique elements"),
        ({"level": 1, "tags": ["a", "b", "c"]}, "tags: ['a', 'b', 'c'] is too long"),
        ({"level": 1, "ratio": 0}, "ratio: 0 is less than or equal to the minimum of 0"),
        ({"level": 1, "ratio": 0.7}, "ratio: 0.7 is not a multiple of 0.5"),
        ({"level": True}, "level: expected integer, got True"),
        ({}, "missing required argument 'level'"),
        ({"level": 1, "colour": "red"}, "unknown argument 'colour'"),
    ],
)
def test_every_keyword_is_checked(arguments: dict[str, Any], problem: str) -> None:
    problems = schema_problems(arguments, normalize_schema(LEVEL), "f")
    assert any(problem in p for p in problems), problems
    assert all(p.startswith("f") for p in problems)  # each names where it is


def test_valid_arguments_have_no_problem() -> None:
    good = {"level": 10, "code": "EUR", "email": "a@b.co", "day": "2026-12-07", "ratio": 1.5}
    assert schema_problems(good, normalize_schema(LEVEL), "f") == []


def test_bfcl_and_openapi_names_become_json_schema() -> None:
    bfcl = {
        "type": "dict",
        "properties": {
            "x": {"type": "float", "minimum": 0},
            "pair": {"type": "tuple", "items": {"type": "integer"}, "minItems": 2},
            "any": {"type": "any"},
            "maybe": {"type": "string", "nullable": True, "optional": True},
            "java": {"type": "String"},
        },
        "required": ["x", "gone"],
    }
    schema = normalize_schema(bfcl)
    assert schema["required"] == ["x"]  # a required name it does not declare is dropped
    assert schema["additionalProperties"] is False
    assert schema["properties"]["x"] == {"type": "number", "minimum": 0}
    assert schema["properties"]["pair"] == {
        "type": "array",
        "items": {"type": "integer"},
        "minItems": 2,
    }
    assert schema["properties"]["any"] == {}
    assert schema["properties"]["maybe"] == {"type": ["string", "null"]}
    assert schema["properties"]["java"] == {"type": "string"}
    Draft202012Validator.check_schema(schema)
    assert schema_problems({"x": -1, "pair": [1]}, schema, "f") == [
        "f.pair: [1] is too short",
        "f.x: -1 is less than the minimum of 0",
    ]


def test_a_schema_that_is_not_json_schema_is_refused_naming_the_function() -> None:
    bad = {"name": "f", "parameters": {"type": "object", "properties": {"n": {"minimum": "0"}}}}
    with pytest.raises(ValueError, match=r"functions\[0\]\.parameters: not a valid JSON Schema"):
        FunctionCallInput(request="hi", functions=[bad])


# -- property-based: the verdict is jsonschema's ---------------------------------------------
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-50, 50),
    st.floats(-50, 50, allow_nan=False),
    st.sampled_from(["", "a", "ABC", "2026-12-07", "x@y.org", "hello world", "7"]),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), inner, max_size=4),
    ),
    max_leaves=8,
)


@st.composite
def _keywords(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": kind}
    if kind in ("integer", "number"):
        low = draw(st.integers(-20, 20))
        for key in draw(st.sets(st.sampled_from(["minimum", "maximum", "exclusiveMinimum"]))):
            schema[key] = low if key != "maximum" else low + draw(st.integers(0, 30))
        if draw(st.booleans()):
            schema["multipleOf"] = draw(st.sampled_from([1, 2, 0.5]))
    elif kind == "string":
        choice = draw(st.sampled_from(["none", "pattern", "format", "length", "enum"]))
        if choice == "pattern":
            schema["pattern"] = draw(st.sampled_from(["^[A-Z]{3}$", "^\\d+$", "a"]))
        elif choice == "format":
            schema["format"] = draw(st.sampled_from(["email", "date", "ipv4"]))
        elif choice == "length":
            schema["minLength"] = draw(st.integers(0, 3))
            schema["maxLength"] = schema["minLength"] + draw(st.integers(0, 8))
        elif choice == "enum":
            schema["enum"] = draw(st.lists(_SCALARS, min_size=1, max_size=3))
    return schema


_SCHEMAS = st.recursive(
    st.sampled_from(["integer", "number", "string", "boolean", "null"]).flatmap(_keywords),
    lambda inner: st.one_of(
        st.builds(
            lambda items, low, unique: {
                "type": "array",
                "items": items,
                "minItems": low,
                "uniqueItems": unique,
            },
            inner,
            st.integers(0, 2),
            st.booleans(),
        ),
        st.builds(
            lambda props, extra, required: {
                "type": "object",
                "properties": props,
                "additionalProperties": extra,
                "required": [k for k in props if k in required],
            },
            st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3),
            st.booleans(),
            st.sets(st.sampled_from(["a", "b", "c"])),
        ),
        st.lists(inner, min_size=1, max_size=3).map(lambda subs: {"anyOf": subs}),
    ),
    max_leaves=6,
)
_CHECKER = Draft202012Validator.FORMAT_CHECKER


@pytest.mark.fuzz
@given(schema=_SCHEMAS, value=_VALUES)
def test_the_verdict_on_json_schema_is_jsonschemas(schema: dict[str, Any], value: Any) -> None:
    expected = Draft202012Validator(schema, format_checker=_CHECKER).is_valid(value)
    problems = schema_problems(value, normalize_schema(schema), "f")
    assert (problems == []) == expected, problems


# BFCL's type names and their JSON Schema equivalents, as BFCL's own documentation gives them.
_BFCL_NAMES = {"dict": "object", "float": "number", "tuple": "array", "integer": "integer"}


def _as_bfcl(schema: Any) -> Any:
    if isinstance(schema, dict):
        out = {k: _as_bfcl(v) for k, v in schema.items()}
        reverse = {v: k for k, v in _BFCL_NAMES.items()}
        if isinstance(out.get("type"), str) and out["type"] in reverse:
            out["type"] = reverse[out["type"]]
        return out
    if isinstance(schema, list):
        return [_as_bfcl(s) for s in schema]
    return schema


@pytest.mark.fuzz
@given(schema=_SCHEMAS, value=_VALUES)
def test_bfcl_type_names_give_the_same_verdict(schema: dict[str, Any], value: Any) -> None:
    # "required"/"properties" keys hold names, not schemas: rename only the "type"s.
    expected = Draft202012Validator(schema, format_checker=_CHECKER).is_valid(value)
    problems = schema_problems(value, normalize_schema(_as_bfcl(schema)), "f")
    assert (problems == []) == expected, problems


@pytest.mark.fuzz
@given(value=_VALUES)
def test_an_object_without_additional_properties_refuses_unknown_arguments(value: Any) -> None:
    declared = {"type": "object", "properties": {"a": {}}}
    strict = {**declared, "additionalProperties": False}
    expected = Draft202012Validator(strict).is_valid(value)
    assert (schema_problems(value, normalize_schema(declared), "f") == []) == expected


# -- calls: duplicates, grounding, kinds ----------------------------------------------------
def test_a_repeated_call_is_a_problem(checker: FunctionCallSpecialist) -> None:
    weather = ("get_weather", {"location": "Paris"})
    assert _verify(checker, "What's the weather in Paris?", weather) == []
    problems = _verify(checker, "What's the weather in Paris?", weather, weather)
    assert problems == ["calls[1]: repeats calls[0]; drop the duplicate"]


def test_values_must_come_from_the_conversation(checker: FunctionCallSpecialist) -> None:
    request = "What's the weather in Paris tomorrow in fahrenheit?"
    good = {"location": "paris", "date": "2026-12-07", "unit": "fahrenheit"}
    assert _verify(checker, request, ("get_weather", good)) == []
    invented = _verify(checker, request, ("get_weather", {"location": "Lyon"}))
    assert invented == [
        "calls[0] get_weather.location: 'Lyon' is not in the conversation (nor a choice, the "
        "default, or a date, time, currency or unit it names)"
    ]
    other_day = {"location": "Paris", "date": "2026-12-09"}
    wrong_day = _verify(checker, request, ("get_weather", other_day))
    assert len(wrong_day) == 1 and "'2026-12-09' is not in the conversation" in wrong_day[0]


def test_conversions_of_the_conversations_text_are_grounded(
    checker: FunctionCallSpecialist,
) -> None:
    money = "How much is 250 euros in US dollars?"
    call = {"amount": 250, "from_currency": "EUR", "to_currency": "USD"}
    assert _verify(checker, money, ("convert_currency", call)) == []
    assert _verify(checker, money, ("convert_currency", {**call, "amount": 2500}))
    when = "Remind me to call mum next Friday at 6:30 pm"
    reminder = {"text": "call mum", "datetime": "2026-12-11T18:30"}
    assert _verify(checker, when, ("set_reminder", reminder)) == []
    assert _verify(checker, when, ("set_reminder", {**reminder, "datetime": "2026-12-11T16:30"}))
    spelled = "Book a table for four at Nopa on 2026-12-24 at 19:00"
    booking = {"restaurant": "Nopa", "party_size": 4, "date": "2026-12-24", "time": "19:00"}
    assert _verify(checker, spelled, ("book_restaurant", booking)) == []


def test_the_state_of_a_city_is_a_conversion_but_an_unknown_one_is_not(
    checker: FunctionCallSpecialist,
) -> None:
    assert _verify(checker, "weather in Austin", ("get_weather", {"location": "Austin, TX"})) == []
    assert _verify(checker, "weather in Austin", ("get_weather", {"location": "Austin, OH"}))


def test_earlier_turns_ground_values(checker: FunctionCallSpecialist) -> None:
    chat = [
        {"role": "user", "content": "What's the weather in Lisbon today?"},
        {"role": "assistant", "content": "Sunny, 18 degrees."},
        {"role": "user", "content": "And tomorrow?"},
    ]
    call = ("get_weather", {"location": "Lisbon", "date": "2026-12-07"})
    assert _verify(checker, chat, call) == []


# -- the realistic failures: wrong calls must not verify --------------------------------------
def test_the_misread_booking_fails_verification(checker: FunctionCallSpecialist) -> None:
    request = "Book a table for 4 at Nopa in San Francisco tomorrow at 7pm"
    first = {"city": "Nopa", "restaurant": "table", "time": "pm", "party_size": 4}
    second = {"restaurant": "table", "party_size": 7, "time": "table"}
    problems = _verify(checker, request, ("book_restaurant", first), ("book_restaurant", second))
    assert any("calls[0]" in p and "'pm' is not in the conversation" in p for p in problems)
    assert any("calls[0]" in p and "missing required argument 'date'" in p for p in problems)
    assert any("calls[1]" in p and "'table' is not a date or a time" in p for p in problems)
    right = {
        "restaurant": "Nopa",
        "city": "San Francisco",
        "party_size": 4,
        "date": "2026-12-07",
        "time": "19:00",
    }
    assert _verify(checker, request, ("book_restaurant", right)) == []


@pytest.mark.parametrize(
    ("request_text", "calls"),
    [
        ("weather in Paris and in Berlin", [("get_weather", {"location": "Paris Berlin"})]),
        (
            "How much is 250 euros in US dollars?",
            [("convert_currency", {"amount": 250, "from_currency": "USD", "to_currency": "JPY"})],
        ),
        ("Set a timer for 10 minutes", [("set_timer", {"minutes": 15})]),
        ("Turn off the kitchen lights", [("control_lights", {"room": "kitchen", "state": "of"})]),
        (
            "Close ticket T-4821",
            [("update_ticket_status", {"ticket_id": "4821", "status": "closed"})],
        ),
    ],
)
def test_wrong_calls_of_realistic_requests_fail_verification(
    checker: FunctionCallSpecialist, request_text: str, calls: list[tuple[str, dict[str, Any]]]
) -> None:
    assert _verify(checker, request_text, *calls)


def test_dates_and_times_of_a_conversation_and_of_values() -> None:
    said = moments_in("tomorrow at 7pm, or Friday at 9:30, or 3 March 2027 at noon", NOW)
    assert {d.isoformat() for d in said.dates} >= {"2026-12-07", "2026-12-11", "2027-03-03"}
    assert {t.isoformat("minutes") for t in said.times} == {"19:00", "09:30", "12:00"}
    assert value_moment("2026-12-07T19:00")[1].hour == 19  # type: ignore[index]
    assert value_moment("7:30 PM") == (None, datetime(1, 1, 1, 19, 30).time())
    assert value_moment("4") is None and value_moment("table") is None
