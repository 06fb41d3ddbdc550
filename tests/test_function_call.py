"""The function_call specialist: schema normalisation, the BFCL checker, verification, the
argument schema built from the request, and one real call through the bundled GGUF model."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from orchestrator._errors import ConfigurationError
from orchestrator.specialists import default_registry
from orchestrator.specialists._base import Prediction
from orchestrator.specialists.backends.generation import ChatMessage, Generated, JSONGenerator
from orchestrator.specialists.evaluation.bfcl import (
    check_calls,
    check_simple_call,
    evaluate_bfcl,
    load_bfcl,
    select_part,
    standardize_string,
)
from orchestrator.specialists.function_call.request_parts import numbers_in
from orchestrator.specialists.function_call.schema import normalize_function
from orchestrator.specialists.function_call.specialist import (
    FunctionCallInput,
    FunctionCallOutput,
    FunctionCallSpecialist,
    ToolCall,
    spans_in,
)

AREA = {
    "name": "calculate_triangle_area",
    "description": "Calculate the area of a triangle given its base and height.",
    "parameters": {
        "type": "dict",
        "properties": {
            "base": {"type": "integer", "description": "The base of the triangle."},
            "height": {"type": "float", "description": "The height of the triangle."},
            "unit": {"type": "string", "description": "The unit of measure."},
        },
        "required": ["base", "height"],
    },
}
WEATHER = {
    "name": "get_weather",
    "description": "Get the current weather forecast for a city.",
    "parameters": {
        "type": "dict",
        "properties": {
            "city": {"type": "string", "description": "The city, e.g. Paris."},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "tuple", "items": {"type": "integer"}},
            "options": {"type": "dict", "properties": {"wind": {"type": "boolean"}}},
            "anything": {"type": "any"},
        },
        "required": ["city"],
    },
}


# -- schema normalisation -----------------------------------------------------------------
def test_bfcl_types_become_json_schema() -> None:
    spec = normalize_function(WEATHER)
    props = spec.parameters["properties"]
    assert spec.parameters["type"] == "object"
    assert props["days"] == {"type": "array", "items": {"type": "integer"}}
    assert props["options"]["type"] == "object"
    assert "type" not in props["anything"]  # any: no constraint
    assert normalize_function(AREA).properties["height"]["type"] == "number"


def test_openai_and_anthropic_shapes() -> None:
    params = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    openai = {
        "type": "function",
        "function": {"name": "s", "description": "d", "parameters": params},
    }
    flat = {"type": "function", "name": "s", "description": "d", "parameters": params}
    anthropic = {"name": "s", "description": "d", "input_schema": params}
    specs = [normalize_function(x) for x in (openai, flat, anthropic)]
    assert all(s.name == "s" and s.required == ["q"] for s in specs)


def test_a_definition_is_normalised_once_and_a_bad_one_every_time() -> None:
    from orchestrator.specialists.function_call import schema

    again = json.loads(json.dumps(WEATHER))  # an equal definition in another object
    assert normalize_function(again) is normalize_function(WEATHER)
    bad = {"name": "f", "parameters": {"type": "string"}}
    for where in ("functions[0]", "functions[3]"):  # not kept: each error names its place
        with pytest.raises(ValueError, match=rf"{re.escape(where)}\.parameters"):
            normalize_function(bad, where)
    for n in range(schema._KEPT_SPECS + 5):
        normalize_function({"name": f"f{n}", "parameters": {"type": "object", "properties": {}}})
    assert len(schema._SPECS) <= schema._KEPT_SPECS


def test_bad_function_definitions_name_the_field() -> None:
    with pytest.raises(ValidationError, match=r"functions\[1\]\.name: missing"):
        FunctionCallInput(request="hi", functions=[AREA, {"description": "no name"}])
    with pytest.raises(ValidationError, match=r"functions\[0\]\.parameters"):
        FunctionCallInput(request="hi", functions=[{"name": "f", "parameters": {"type": "string"}}])
    with pytest.raises(ValidationError, match="defined twice"):
        FunctionCallInput(request="hi", functions=[AREA, AREA])
    with pytest.raises(ValidationError, match="request: empty"):
        FunctionCallInput(request="  ", functions=[AREA])


# -- the BFCL checker ---------------------------------------------------------------------
ANSWER = {"calculate_triangle_area": {"base": [10], "height": [5.0], "unit": ["units", ""]}}


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ({"base": 10, "height": 5}, None),  # int accepted for float
        ({"base": 10, "height": 5.0, "unit": "Units"}, None),  # case-insensitive string
        ({"base": 10}, "missing required parameter 'height'"),
        ({"base": 10, "height": 5, "colour": "red"}, "unexpected parameter 'colour'"),
        ({"base": 10.0, "height": 5}, "expected int"),  # no float for an integer
        ({"base": True, "height": 5}, "expected int"),  # a bool is not an integer
        ({"base": 11, "height": 5}, "11 is not one of"),
        ({"base": 10, "height": 5, "unit": "cm"}, "'cm' is not one of"),
    ],
)
def test_simple_rules(args: dict[str, Any], problem: str | None) -> None:
    problems = check_simple_call(AREA, {"calculate_triangle_area": args}, ANSWER)
    assert problems == [] if problem is None else problem in problems[0]


def test_function_name_and_required_optional() -> None:
    assert "not called" in check_simple_call(AREA, {"other": {}}, ANSWER)[0]
    must = {"calculate_triangle_area": {"base": [10], "height": [5.0], "unit": ["cm"]}}
    problems = check_simple_call(AREA, {"calculate_triangle_area": {"base": 10, "height": 5}}, must)
    assert "left out but expected" in problems[0]


def test_string_list_and_dict_normalisation() -> None:
    assert standardize_string("New York, NY") == standardize_string("new york ny")
    assert standardize_string("it's") == 'it"s'
    doc = {
        "name": "f",
        "parameters": {
            "type": "dict",
            "properties": {
                "cities": {"type": "array", "items": {"type": "string"}},
                "where": {"type": "dict", "properties": {"city": {"type": "string"}}},
                "days": {"type": "array", "items": {"type": "float"}},
            },
            "required": ["cities"],
        },
    }
    answer = {
        "f": {
            "cities": [["San Francisco", "Los Angeles"]],
            "where": [{"city": ["Paris, France"]}, ""],
            "days": [[1.5, 2.0], ""],
        }
    }
    good = {"cities": ["san-francisco", "los angeles"], "where": {"city": "paris france"}}
    assert check_simple_call(doc, {"f": good}, answer) == []
    wrong_order = {"cities": ["Los Angeles", "San Francisco"]}
    assert check_simple_call(doc, {"f": wrong_order}, answer)
    assert check_simple_call(doc, {"f": {**good, "where": {"city": "Rome"}}}, answer)
    # Items of a float array must be floats, as in BFCL.
    assert check_simple_call(doc, {"f": {**good, "days": [1.5, 2]}}, answer)
    assert check_simple_call(doc, {"f": {**good, "days": [1.5, 2.0]}}, answer) == []


def test_parallel_is_order_free_and_counts() -> None:
    answer = [
        {"calculate_triangle_area": {"base": [10], "height": [5.0]}},
        {"calculate_triangle_area": {"base": [3], "height": [4.0]}},
    ]
    one = {"calculate_triangle_area": {"base": 3, "height": 4}}
    two = {"calculate_triangle_area": {"base": 10, "height": 5}}
    assert check_calls("parallel", [AREA], [one, two], answer) == []
    assert "wrong number of calls" in check_calls("parallel", [AREA], [one], answer)[0]
    assert check_calls("parallel", [AREA], [one, one], answer)
    assert "wrong number" in check_calls("simple_python", [AREA], [one, two], answer[:1])[0]
    assert check_calls("irrelevance", [AREA], [], []) == []
    assert check_calls("irrelevance", [AREA], [one], [])
    assert check_calls("live_relevance", [AREA], [one], []) == []
    assert check_calls("live_relevance", [AREA], [], [])


def test_variable_answers_compare_exactly() -> None:
    # An answer of another type than declared is a variable name, compared as is.
    answer = {"calculate_triangle_area": {"base": ["b"], "height": [5.0]}}
    ok = {"calculate_triangle_area": {"base": "b", "height": 5.0}}
    assert check_simple_call(AREA, ok, answer) == []


def test_java_and_javascript_type_names_are_checked_as_json_types() -> None:
    # Written for this test in the shape of BFCL's Java documents, not taken from them.
    doc = {
        "name": "Report.export",
        "parameters": {
            "type": "dict",
            "properties": {
                "target": {"type": "Path"},
                "verbose": {"type": "boolean"},
                "limits": {"type": "HashMap"},
                "pages": {"type": "long"},
                "tags": {"type": "ArrayList", "items": {"type": "String"}},
            },
            "required": ["target", "verbose"],
        },
    }
    answer = {
        "Report.export": {
            "target": ["out"],
            "verbose": [True],
            "limits": [{"rows": [50]}],
            "pages": [3, ""],
            "tags": [["draft", "q3"], ""],
        }
    }
    good = {"target": "out", "verbose": True, "limits": {"rows": 50}, "tags": ["Draft", "q3"]}
    assert check_simple_call(doc, {"Report.export": good}, answer) == []
    assert check_calls("simple_java", [doc], [{"Report.export": good}], [answer]) == []
    # A class name is a string; a long an integer; a HashMap a dict.
    assert check_simple_call(doc, {"Report.export": {**good, "pages": "3"}}, answer)
    assert check_simple_call(doc, {"Report.export": {**good, "limits": "rows=50"}}, answer)
    assert check_simple_call(doc, {"Report.export": {**good, "target": 7}}, answer)
    assert check_simple_call(doc, {"Report.export": {**good, "tags": ["draft", 3]}}, answer)


def _write_bfcl(folder: Path) -> Path:
    (folder / "possible_answer").mkdir(parents=True)
    simple = [
        {
            "id": f"simple_python_{i}",
            "question": [
                [
                    {
                        "role": "user",
                        "content": f"Find the area of a triangle with base {b} and height {h}.",
                    }
                ]
            ],
            "function": [AREA],
        }
        for i, (b, h) in enumerate([(10, 5), (7, 3)])
    ]
    answers = [
        {
            "id": "simple_python_0",
            "ground_truth": [
                {"calculate_triangle_area": {"base": [10], "height": [5.0], "unit": ["", "units"]}}
            ],
        },
        {
            "id": "simple_python_1",
            "ground_truth": [
                {"calculate_triangle_area": {"base": [7], "height": [3.0], "unit": ["", "units"]}}
            ],
        },
    ]
    irrelevant = [
        {
            "id": "irrelevance_0",
            "question": [[{"role": "user", "content": "Who painted the Mona Lisa?"}]],
            "function": [AREA],
        }
    ]
    for name, rows in (("simple_python", simple), ("irrelevance", irrelevant)):
        (folder / f"BFCL_v4_{name}.json").write_text("\n".join(json.dumps(r) for r in rows))
    (folder / "possible_answer" / "BFCL_v4_simple_python.json").write_text(
        "\n".join(json.dumps(a) for a in answers)
    )
    return folder


def test_loader_and_parts(tmp_path: Path) -> None:
    folder = _write_bfcl(tmp_path)
    items = load_bfcl(folder, "simple_python")
    assert [i.id for i in items] == ["simple_python_0", "simple_python_1"]
    assert items[0].messages[0]["role"] == "user"
    assert [i.id for i in select_part(items, "tune", None)] == ["simple_python_0"]
    assert [i.id for i in select_part(items, "rest", None)] == ["simple_python_1"]
    with pytest.raises(ConfigurationError, match="unknown BFCL category"):
        load_bfcl(folder, "simple_cobol")
    with pytest.raises(ConfigurationError, match="not found"):
        load_bfcl(folder, "multiple")


# -- the specialist with a scripted generator ---------------------------------------------
class Scripted:
    """A JSONGenerator that answers with the first choice the schema allows."""

    model_id = "scripted"

    def __init__(self) -> None:
        self.schemas: list[dict[str, Any]] = []

    def generate(
        self, messages: Sequence[ChatMessage], schema: dict[str, Any], *, max_tokens: int
    ) -> Generated:
        self.schemas.append(schema)
        items = schema["items"]
        args = {}
        for name, sub in items["properties"].items():
            args[name] = sub["enum"][0] if "enum" in sub else "x"
        return Generated(json.dumps([args] * schema["minItems"]), 10, 5)


@pytest.fixture(scope="module")
def specialist() -> FunctionCallSpecialist:
    """The generative filler: every argument goes through the (scripted) generator."""
    spec = default_registry().create("function_call", {"filler": "generate"})
    assert isinstance(spec, FunctionCallSpecialist)
    spec.use_generator(Scripted())
    spec.ensure_loaded()
    return spec


@pytest.fixture(scope="module")
def reader() -> FunctionCallSpecialist:
    """The reading filler: no generative model at all."""
    spec = default_registry().create("function_call", {"filler": "extract"})
    assert isinstance(spec, FunctionCallSpecialist)
    spec.ensure_loaded()
    return spec


def test_values_are_constrained_to_the_request(specialist: FunctionCallSpecialist) -> None:
    generator = Scripted()
    specialist.use_generator(generator)
    assert isinstance(generator, JSONGenerator)
    item = FunctionCallInput(request="What's the weather in Paris in celsius?", functions=[WEATHER])
    result = specialist.predict_batch([item])[0]
    schema = generator.schemas[-1]["items"]
    assert "Paris" in schema["properties"]["city"]["enum"]
    assert schema["properties"]["unit"] == {"enum": ["celsius"]}
    assert "days" not in schema["properties"]  # optional and not asked for
    assert schema["additionalProperties"] is False
    assert result.output.calls and result.output.calls[0].name == "get_weather"
    area = FunctionCallInput(request="Triangle area with base 10 and height 2.5", functions=[AREA])
    specialist.predict_batch([area])
    props = generator.schemas[-1]["items"]["properties"]
    assert props["base"] == {"enum": [10]}
    assert props["height"] == {"enum": [10, 2.5]}


def test_irrelevant_request_gets_no_call(specialist: FunctionCallSpecialist) -> None:
    item = FunctionCallInput(request="Who painted the Mona Lisa?", functions=[AREA])
    out = specialist.predict_batch([item])[0].output
    assert isinstance(out, FunctionCallOutput)
    assert out.no_call and out.calls == [] and "no function applies" in out.reason
    empty = FunctionCallInput(request="Hello there", functions=[])
    assert specialist.predict_batch([empty])[0].output.no_call


def test_verify_messages(specialist: FunctionCallSpecialist) -> None:
    item = FunctionCallInput(request="weather in Paris", functions=[WEATHER, AREA])
    good = FunctionCallOutput(
        calls=[ToolCall(name="get_weather", arguments={"city": "Paris"})], no_call=False
    )
    assert specialist.verify(item, good) == []
    bad = FunctionCallOutput(
        calls=[
            ToolCall(name="get_wether", arguments={}),
            ToolCall(name="get_weather", arguments={"unit": "kelvin", "town": "x"}),
            ToolCall(name="calculate_triangle_area", arguments={"base": "ten", "height": 2}),
        ],
        no_call=False,
    )
    problems = specialist.verify(item, bad)
    assert (
        "unknown function 'get_wether'; call one of: calculate_triangle_area, get_weather"
        in problems[0]
    )
    assert any("missing required argument 'city'" in p for p in problems)
    assert any("'kelvin' is not one of" in p for p in problems)
    assert any("unknown argument 'town'" in p for p in problems)
    assert any("base: expected integer" in p for p in problems)


def test_the_reader_and_the_splitter_read_the_same_numbers() -> None:
    from orchestrator.specialists.function_call.arguments import mentions_in

    text = "a capacitor of 2e-6 farads for 5 million cycles at $1.2M, the first of 300K runs"
    read = [m.value for m in mentions_in(text)[0] if not m.spelled]
    assert read == [2e-06, 5_000_000, 1_200_000, 300]
    # The splitter and verification see the same values, and the words that count.
    assert numbers_in(text) == [*read, 1]


def test_request_readers() -> None:
    assert numbers_in("pay $1,200.50 at 5% for 3 years, twice") == [1200.5, 5, 0.05, 3, 2]
    spans = spans_in("Play songs by 'Taylor Swift' in New York")
    assert spans[0] == "Taylor Swift"
    assert "New York" in spans and "in New York" not in spans
    quoted = spans_in('compare "AGCT" and "AGGT" please')
    assert quoted[:2] == ["AGGT", "AGCT"] or quoted[:2] == ["AGCT", "AGGT"]
    assert not any('"' in span for span in quoted)  # would break the grammar's literals


def test_evaluation_with_scripted_generator(
    specialist: FunctionCallSpecialist, tmp_path: Path
) -> None:
    specialist.use_generator(Scripted())
    folder = _write_bfcl(tmp_path)
    report = evaluate_bfcl(specialist, folder, ["simple_python", "irrelevance"])
    rows = report["categories"]
    assert rows["simple_python"]["questions"] == 2
    assert rows["irrelevance"]["accuracy"] == 1.0
    assert 0.0 <= rows["simple_python"]["accuracy"] <= 1.0
    assert report["latency_p50_ms"] > 0


# -- reading arguments without a generative model -----------------------------------------
ROUTE = {
    "name": "route.estimate_time",
    "description": "Estimate the travel time between two places.",
    "parameters": {
        "type": "dict",
        "properties": {
            "start_location": {"type": "string", "description": "The starting point."},
            "end_location": {"type": "string", "description": "The destination."},
            "stops": {"type": "array", "items": {"type": "string"}, "description": "Stops."},
            "avoid_tolls": {"type": "boolean", "description": "Avoid toll roads."},
        },
        "required": ["start_location", "end_location"],
    },
}
INTEREST = {
    "name": "calculate_compound_interest",
    "description": "Compound interest on a deposit.",
    "parameters": {
        "type": "dict",
        "properties": {
            "principal": {"type": "integer", "description": "The initial deposit."},
            "rate": {"type": "float", "description": "The annual interest rate as a decimal."},
            "years": {"type": "integer", "description": "The number of years."},
        },
        "required": ["principal", "rate", "years"],
    },
}
GCD = {
    "name": "math.gcd",
    "description": "Greatest common divisor of two numbers.",
    "parameters": {
        "type": "dict",
        "properties": {
            "num1": {"type": "integer", "description": "The first number."},
            "num2": {"type": "integer", "description": "The second number."},
        },
        "required": ["num1", "num2"],
    },
}
EXCHANGE = {
    "name": "currency.convert",
    "description": "Convert an amount between currencies on a given date.",
    "parameters": {
        "type": "dict",
        "properties": {
            "amount": {"type": "float", "description": "The amount."},
            "from_currency": {"type": "string", "description": "Currency code to convert from."},
            "to_currency": {"type": "string", "description": "Currency code to convert to."},
            "date": {"type": "string", "description": "The rate's date, format YYYY-MM-DD."},
        },
        "required": ["amount", "from_currency", "to_currency"],
    },
}
STATS = {
    "name": "stats.t_test",
    "description": "Two-sample t-test.",
    "parameters": {
        "type": "dict",
        "properties": {
            "group1": {"type": "array", "items": {"type": "integer"}, "description": "Sample 1."},
            "group2": {"type": "array", "items": {"type": "integer"}, "description": "Sample 2."},
            "alpha": {"type": "float", "description": "Significance level."},
        },
        "required": ["group1", "group2"],
    },
}


def _function(name: str, description: str, *params: str, kind: str = "string") -> dict[str, Any]:
    """A function definition whose parameters are all required and of one type."""
    return {
        "name": name,
        "description": description,
        "parameters": {
            "type": "dict",
            "properties": {
                p: {"type": kind, "description": f"The {p.replace('_', ' ')}."} for p in params
            },
            "required": list(params),
        },
    }


def _calls(specialist: FunctionCallSpecialist, request: str, functions: list[Any]) -> list[Any]:
    item = FunctionCallInput(request=request, functions=functions)
    prediction = specialist.predict_batch([item])[0]
    assert specialist.verify(item, prediction.output) == []
    assert prediction.tokens == 0  # nothing was generated
    return [{c.name: c.arguments} for c in prediction.output.calls]


@pytest.mark.parametrize(
    ("request_text", "functions", "expected"),
    [
        (
            "What's the weather in Paris in celsius?",
            [WEATHER],
            {"get_weather": {"city": "Paris", "unit": "celsius"}},
        ),
        (
            "Triangle area with base 10 and height 2.5",
            [AREA],
            {"calculate_triangle_area": {"base": 10, "height": 2.5}},
        ),
        (
            "Estimate the travel time from San Francisco to Los Angeles with stops at Santa "
            "Barbara and Monterey, without toll roads.",
            [ROUTE],
            {
                "route.estimate_time": {
                    "start_location": "San Francisco",
                    "end_location": "Los Angeles",
                    "stops": ["Santa Barbara", "Monterey"],
                    "avoid_tolls": True,
                }
            },
        ),
        (
            "Interest on a $5000 deposit at an annual rate of 3% for 5 years",
            [INTEREST],
            {"calculate_compound_interest": {"principal": 5000, "rate": 0.03, "years": 5}},
        ),
        (
            "Find the greatest common divisor of two numbers, say 36 and 48.",
            [GCD],
            {"math.gcd": {"num1": 36, "num2": 48}},
        ),
        (
            "Convert 200 euros to US dollars at the rate of March 11, 2022.",
            [EXCHANGE],
            {
                "currency.convert": {
                    "amount": 200.0,
                    "from_currency": "EUR",
                    "to_currency": "USD",
                    "date": "2022-03-11",
                }
            },
        ),
        (
            "Run a t-test on group A [3, 4, 5, 6, 4] and group B [7, 8, 9, 8, 7].",
            [STATS],
            {"stats.t_test": {"group1": [3, 4, 5, 6, 4], "group2": [7, 8, 9, 8, 7]}},
        ),
    ],
)
def test_reading_fills_arguments_without_a_model(
    reader: FunctionCallSpecialist,
    request_text: str,
    functions: list[Any],
    expected: dict[str, Any],
) -> None:
    assert _calls(reader, request_text, functions) == [expected]


def test_reading_splits_parallel_requests(reader: FunctionCallSpecialist) -> None:
    calls = _calls(reader, "What's the weather in Paris, Rome and Berlin?", [WEATHER])
    assert calls == [
        {"get_weather": {"city": "Paris"}},
        {"get_weather": {"city": "Rome"}},
        {"get_weather": {"city": "Berlin"}},
    ]


def test_reading_splits_requests_that_describe_cases_in_turn(
    reader: FunctionCallSpecialist,
) -> None:
    request = (
        "Two triangles are drawn on the board. The first triangle has a base of 12 meters and "
        "a height of 15 meters. The second triangle has a base of 18 meters and a height of 24 "
        "meters. What are their areas?"
    )
    assert _calls(reader, request, [AREA]) == [  # the unit as the request writes it
        {"calculate_triangle_area": {"base": 12, "height": 15, "unit": "meters"}},
        {"calculate_triangle_area": {"base": 18, "height": 24, "unit": "meters"}},
    ]
    # A sentence without a case of its own ("What are their areas?") goes with every case.
    parts = reader.requests_in(request)
    assert len(parts) == 2 and all(p.endswith("What are their areas?") for p in parts)
    # "the first time" or a single ordinal names no cases.
    assert len(reader.requests_in("The first time I saw 3 cats, I was happy.")) == 1
    assert reader.requests_in(request, by_case=False) == [request]


def test_reading_gives_each_group_of_numbers_its_own_call(reader: FunctionCallSpecialist) -> None:
    calls = _calls(reader, "What is the GCD of the pairs (45, 60) and (81, 27)?", [GCD])
    assert calls == [{"math.gcd": {"num1": 45, "num2": 60}}, {"math.gcd": {"num1": 81, "num2": 27}}]


GAME = {
    "name": "game.save_progress",
    "description": "Save the player's game at a stage and mode.",
    "parameters": {
        "type": "dict",
        "properties": {
            "stage": {"type": "integer", "description": "The stage reached."},
            "mode": {"type": "string", "enum": ["easy", "hard"], "description": "Game mode."},
        },
        "required": ["stage", "mode"],
    },
}
LOAN = {
    "name": "loan_check",
    "description": "Check loan eligibility given the bank, loan amount and income.",
    "parameters": {
        "type": "dict",
        "properties": {
            "bank": {"type": "string", "description": "The financial institution, e.g. HSBC."},
            "loan_amount": {"type": "integer", "description": "The loan amount requested."},
            "annual_income": {"type": "integer", "description": "The applicant's income."},
        },
        "required": ["bank", "loan_amount", "annual_income"],
    },
}
WIRE = {
    "name": "calculate_resistance",
    "description": "Resistance of a wire from its length, area and material.",
    "parameters": {
        "type": "dict",
        "properties": {
            "length": {"type": "integer", "description": "Length of the wire in meters."},
            "area": {"type": "float", "description": "Cross-sectional area in square meters."},
            "material": {
                "type": "string",
                "description": "The material. Allowed values: 'copper', 'aluminum'",
            },
        },
        "required": ["length", "area"],
    },
}


@pytest.mark.parametrize(
    ("request_text", "function", "expected"),
    [
        # Each call keeps its own choice and its own numbers, in order.
        (
            "Save game progress at stage 7 in easy mode and stage 3 in hard mode.",
            GAME,
            [{"stage": 7, "mode": "easy"}, {"stage": 3, "mode": "hard"}],
        ),
        # Names go one to a call, as numbers do.
        (
            "Check my loan eligibility for $500,000 from HSBC with annual income $100,000 and "
            "for Wells Fargo for $700,000 with annual income of $120,000.",
            LOAN,
            [
                {"bank": "HSBC", "loan_amount": 500000, "annual_income": 100000},
                {"bank": "Wells Fargo", "loan_amount": 700000, "annual_income": 120000},
            ],
        ),
        # Numbers that each call needs all of are shared.
        (
            "Resistance of a wire with a length of 5m and area 0.01m² of copper and aluminum",
            WIRE,
            [
                {"length": 5, "area": 0.01, "material": "copper"},
                {"length": 5, "area": 0.01, "material": "aluminum"},
            ],
        ),
    ],
)
def test_split_calls_keep_their_own_values(
    reader: FunctionCallSpecialist,
    request_text: str,
    function: dict[str, Any],
    expected: list[dict[str, Any]],
) -> None:
    calls = _calls(reader, request_text, [function])
    assert calls == [{function["name"]: args} for args in expected]


def test_a_follow_up_call_keeps_the_values_it_does_not_change(
    reader: FunctionCallSpecialist,
) -> None:
    calls = _calls(
        reader, "Save game progress at stage 7 in easy mode. Then do the same for stage 9.", [GAME]
    )
    assert calls == [
        {"game.save_progress": {"stage": 7, "mode": "easy"}},
        {"game.save_progress": {"stage": 9, "mode": "easy"}},
    ]


def test_a_list_of_fixed_choices_does_not_count_calls(reader: FunctionCallSpecialist) -> None:
    colors = {
        "name": "color_info",
        "description": "RGB values and hex codes of a color.",
        "parameters": {
            "type": "dict",
            "properties": {
                "color_name": {"type": "string", "description": "The name of the color."},
                "formats": {"type": "array", "items": {"type": "string", "enum": ["RGB", "HEX"]}},
            },
            "required": ["color_name", "formats"],
        },
    }
    spec = FunctionCallInput(request="x", functions=[colors]).specs()[0]
    params = ["color_name", "formats"]
    assert reader.count_calls(spec, "RGB and HEX values of Navy Blue", params) == 1
    assert reader.count_calls(spec, "RGB and HEX values of navy, purple and maroon", params) == 3


class Chooser(Scripted):
    """Answers with the last choice the schema allows, to show whose choice is kept."""

    def generate(
        self, messages: Sequence[ChatMessage], schema: dict[str, Any], *, max_tokens: int
    ) -> Generated:
        self.schemas.append(schema)
        props = schema["items"]["properties"]
        args = {name: sub["enum"][-1] for name, sub in props.items() if "enum" in sub}
        return Generated(json.dumps([args] * schema["minItems"]), 10, 5)


def test_hybrid_asks_the_model_only_what_reading_cannot_settle() -> None:
    chooser = Chooser()
    hybrid = FunctionCallSpecialist({"filler": "hybrid"}, generator=chooser)
    settled = FunctionCallInput(
        request="What's the weather in Paris in celsius?", functions=[WEATHER]
    )
    assert hybrid.predict_batch([settled])[0].tokens == 0
    assert chooser.schemas == []
    # Two names and two roles with no cue between them: the model chooses among the best few.
    unsure = FunctionCallInput(
        request="Estimate the travel time between Boston and New York.", functions=[ROUTE]
    )
    prediction = hybrid.predict_batch([unsure])[0]
    assert prediction.tokens == 15
    props = chooser.schemas[-1]["items"]["properties"]
    assert 1 <= len(props["start_location"]["enum"]) <= 3
    assert "Boston" in props["start_location"]["enum"] + props["end_location"]["enum"]
    call = prediction.output.calls[0].arguments
    assert call["start_location"] == props["start_location"]["enum"][-1]


def test_argument_readers() -> None:
    from orchestrator.specialists.function_call.arguments import (
        assign_arguments,
        currency_code,
        date_format,
        format_date,
        mentions_in,
        parse_date,
        read_lists,
    )

    assert parse_date("closing March.11, 2022") == (2022, 3, 11)
    assert parse_date("on 2022/08/16") == (2022, 8, 16)
    assert parse_date("the 13th of December 2019") == (2019, 12, 13)
    assert parse_date("next Friday") is None
    # A relative date is a date mention too, read whole: "next Friday", not "Friday".
    _, relative = mentions_in("classical concerts in Berlin next Friday with parking")
    assert "next Friday" in [m.value for m in relative]
    assert "tomorrow" in [m.value for m in mentions_in("the UV index for Tokyo tomorrow")[1]]
    # "The next month" is one month.
    assert [m.value for m in mentions_in("house prices for the next month")[0]] == [1]
    assert [m.value for m in mentions_in("prices for the next 5 years")[0]] == [5]
    # A place and its region are one value; a function with a region parameter gets halves.
    places = [m.value for m in mentions_in("hotels in Berlin, Germany and Portland, OR")[1]]
    assert "Berlin, Germany" in places and "Portland, OR" in places
    assert "Paris, Rome" not in [m.value for m in mentions_in("in Paris, Rome and Oslo")[1]]
    split = {"city": {"type": "string"}, "state": {"type": "string"}}
    read = assign_arguments(
        "sales tax in Chicago, Illinois", split, ["city", "state"], ["city", "state"]
    )
    assert read["city"].value == "Chicago" and read["state"].value == "Illinois"
    whole = {"location": {"type": "string", "description": "The city and state."}}
    read = assign_arguments("a music shop in Chicago, Illinois", whole, ["location"], ["location"])
    assert read["location"].value == "Chicago, Illinois"
    assert date_format("The date (month-day-year).") == "MM-DD-YYYY"
    assert date_format("Format: yyyy-mm-dd.") == "YYYY-MM-DD"
    assert format_date((2022, 8, 16), "MM-DD-YYYY") == "08-16-2022"
    assert currency_code("US dollars") == "USD" and currency_code("euros") == "EUR"
    assert currency_code("bananas") is None
    numbers, strings = mentions_in("revenue of $1.2M at 5% in 2019, the function 3x^2 + 2x - 1")
    values = [n.value for n in numbers]
    assert 1_200_000 in values and 0.05 in values and 2019 in values
    assert 3 not in values  # a coefficient of the formula, not a number of its own
    assert "3x**2 + 2x - 1" in [m.value for m in strings if m.formula]
    lists = read_lists(
        "scores [85, 90, 88] for 'Ann', 'Bo' and 'Cy'",
        {
            "scores": {"type": "array", "items": {"type": "integer"}},
            "names": {"type": "array", "items": {"type": "string"}},
        },
        ["scores", "names"],
    )
    assert lists == {"scores": [85, 90, 88], "names": ["Ann", "Bo", "Cy"]}
    # A possessive name is the name: "Van Gogh's painting".
    assert "Van Gogh" in [m.value for m in mentions_in("Van Gogh's painting")[1] if m.name]
    # A run of numbers is the list, not the number after it; "and -4" is no formula.
    numbers_only = {"data": {"type": "array", "items": {"type": "integer"}}}
    text = "data: 85, 90, 88, 92 and set bins to 5"
    assert read_lists(text, numbers_only, ["data"]) == {"data": [85, 90, 88, 92]}
    numbers, strings = mentions_in("coefficients 2, 3 and -4")
    assert [n.value for n in numbers] == [2, 3, -4] and not any(m.formula for m in strings)
    # Numbers grouped in parentheses are one list each (coordinates).
    points = {p: {"type": "array", "items": {"type": "number"}} for p in ("point1", "point2")}
    text = "slope between (40.7128, -74.0060) and (34.0522, -118.2437)"
    assert read_lists(text, points, ["point1", "point2"]) == {
        "point1": [40.7128, -74.006],
        "point2": [34.0522, -118.2437],
    }


def test_names_joined_by_of_and_lists_for_sibling_parameters(
    reader: FunctionCallSpecialist,
) -> None:
    museum = _function("exhibition_info", "Exhibitions of a museum.", "museum_name")
    calls = _calls(reader, "Find exhibitions in the Museum of Modern Art, New York.", [museum])
    assert calls == [{"exhibition_info": {"museum_name": "Museum of Modern Art"}}]
    trip = {
        "name": "city_distance",
        "description": "Shortest distance between two cities.",
        "parameters": {
            "type": "dict",
            "properties": {
                "start_city": {"type": "string", "description": "The city to start from."},
                "end_city": {"type": "string", "description": "The destination city."},
            },
            "required": ["start_city", "end_city"],
        },
    }
    calls = _calls(reader, "Distance between two cities, New York and Los Angeles.", [trip])
    assert calls == [{"city_distance": {"start_city": "New York", "end_city": "Los Angeles"}}]


def test_choices_months_and_dictionaries_from_the_request(reader: FunctionCallSpecialist) -> None:
    trip = {
        "name": "traffic_estimate",
        "description": "Estimate traffic between two places.",
        "parameters": {
            "type": "dict",
            "properties": {
                "start": {"type": "string", "description": "Where the journey starts."},
                "mode": {"type": "string", "description": "Mode (walk, bike, transit, drive)."},
                "period": {
                    "type": "string",
                    "description": "'now' for current, 'weekend' for the coming weekend.",
                },
                "month": {"type": "string", "description": "Month of the estimate."},
            },
            "required": ["start"],
        },
    }
    calls = _calls(reader, "Traffic from Las Vegas by bike this weekend in December?", [trip])
    assert calls == [
        {
            "traffic_estimate": {
                "start": "Las Vegas",
                "mode": "bike",
                "period": "weekend",
                "month": "December",
            }
        }
    ]


def test_words_that_stand_for_numbers(reader: FunctionCallSpecialist) -> None:
    interest = {
        "name": "compound_interest",
        "description": "Compound interest on a deposit.",
        "parameters": {
            "type": "dict",
            "properties": {
                "principal": {"type": "integer", "description": "The deposit."},
                "years": {"type": "integer", "description": "Number of years."},
                "n": {"type": "integer", "description": "Times compounded per year."},
            },
            "required": ["principal", "years", "n"],
        },
    }
    calls = _calls(reader, "Interest on $5000 for three years, compounded quarterly.", [interest])
    assert calls == [{"compound_interest": {"principal": 5000, "years": 3, "n": 4}}]
    velocity = {
        "name": "final_velocity",
        "description": "Final velocity of an accelerating object.",
        "parameters": {
            "type": "dict",
            "properties": {
                "initial_velocity": {"type": "integer", "description": "Initial velocity."},
                "acceleration": {"type": "float", "description": "Acceleration in m/s^2."},
                "time": {"type": "integer", "description": "Time in seconds."},
            },
            "required": ["initial_velocity", "acceleration", "time"],
        },
    }
    text = "Final velocity of a car that starts from rest, accelerating at 9.8 m/s^2 for 5 s."
    assert _calls(reader, text, [velocity]) == [
        {"final_velocity": {"initial_velocity": 0, "acceleration": 9.8, "time": 5}}
    ]


def test_years_and_sums_of_money_go_to_their_parameters(reader: FunctionCallSpecialist) -> None:
    growth = {
        "name": "yoy_growth",
        "description": "Year over year growth rate of a company.",
        "parameters": {
            "type": "dict",
            "properties": {
                "year1": {"type": "integer", "description": "The first year."},
                "year1_revenue": {"type": "integer", "description": "Revenue in the first year."},
                "year2": {"type": "integer", "description": "The second year."},
                "year2_revenue": {"type": "integer", "description": "Revenue in the second year."},
            },
            "required": ["year1", "year1_revenue", "year2", "year2_revenue"],
        },
    }
    calls = _calls(reader, "Growth with revenues of $1M in 2019 and $1.2M in 2020?", [growth])
    assert calls == [
        {
            "yoy_growth": {
                "year1": 2019,
                "year1_revenue": 1000000,
                "year2": 2020,
                "year2_revenue": 1200000,
            }
        }
    ]


# -- the real local backend ----------------------------------------------------------------
def test_missing_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.specialists.backends.llama import LlamaJSONGenerator

    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'specialist-orchestrator\[llm\]'"):
        LlamaJSONGenerator()


def test_a_choice_an_enum_took_does_not_also_fill_a_text_parameter() -> None:
    rank = {
        "name": "league.team_rank",
        "description": "Ranking of a team in a league for a season.",
        "parameters": {
            "type": "dict",
            "properties": {
                "team": {"type": "string", "description": "Name of the team."},
                "league": {"type": "string", "description": "The league."},
                "season": {"type": "string", "description": "The season, a year."},
                "stage": {
                    "type": "string",
                    "enum": ["regular", "playoff"],
                    "description": "Stage of the season.",
                },
            },
            "required": ["team", "league", "season", "stage"],
        },
    }
    item = FunctionCallInput(
        request=[
            {
                "role": "user",
                "content": "Find the rank of the Boston Celtics in the NBA 2019 playoff season.",
            }
        ],
        functions=[rank],
    )
    prediction = FunctionCallSpecialist().predict_batch([item])[0]
    (call,) = prediction.output.calls
    season = call.arguments.pop("season")
    assert call.arguments == {"team": "Boston Celtics", "league": "NBA", "stage": "playoff"}
    # "playoff" went to the stage; the season is read from what is left ("2019", or the
    # noun run with it, "2019 season").
    assert "playoff" not in season and season.startswith("2019")


def test_a_unit_written_with_the_numbers_fills_the_unit_parameter() -> None:
    from orchestrator.specialists.function_call.specialist import written_unit

    assert written_unit("a side of 3cm and another of 4cm") == "cm"
    assert written_unit("a mass of 45 kg in 15 m\u00b3") == "kg"
    assert written_unit("2 kg and 3 m") is None  # two kinds of unit: which one is meant?
    assert written_unit("no measures here") is None
    velocity = "The unit to return the velocity in. If not provided, the default is km/h."
    assert written_unit("50 kilometers in 2 hours", velocity) is None  # not a length
    assert written_unit("a radius of 5 meters", "Default is 'cm'.") == "meters"

    square = {
        "name": "geometry.square_area",
        "description": "The area of a square.",
        "parameters": {
            "type": "dict",
            "properties": {
                "side": {"type": "integer", "description": "Length of a side."},
                "unit": {"type": "string", "description": "Unit of the side. Default is 'cm'."},
            },
            "required": ["side"],
        },
    }
    item = FunctionCallInput(
        request=[{"role": "user", "content": "What is the area of a square with a side of 7m?"}],
        functions=[square],
    )
    (call,) = FunctionCallSpecialist().predict_batch([item])[0].output.calls
    assert call.arguments == {"side": 7, "unit": "m"}


def test_a_word_of_a_proper_name_does_not_name_a_choice() -> None:
    from orchestrator.specialists.function_call.specialist import _named_choices

    choices = ["timings", "exhibitions", "history", "Rock"]
    text = "Get the timings and exhibitions of the Natural History Museum, and a Rock concert."
    assert _named_choices(text, choices) == ["timings", "exhibitions", "Rock"]
    assert _named_choices("the history of the museum", choices) == ["history"]
    assert _named_choices("flights to New York City", ["New York", "Boston"]) == ["New York"]


def test_zipped_lists_drop_respectively() -> None:
    ranking = _function(
        "get_team_ranking", "Get the ranking of a football team in a league.", "team", "league"
    )
    request = (
        "Give me the ranking of Napoli and Benfica in the UEFA Champions League and Primeira "
        "Liga respectively."
    )
    item = FunctionCallInput(request=[{"role": "user", "content": request}], functions=[ranking])
    specialist = FunctionCallSpecialist()
    versions = specialist.split_request(item.specs()[0], request, ["team", "league"], 2)
    assert versions == [
        "Give me the ranking of Napoli in the UEFA Champions League.",
        "Give me the ranking of Benfica in the Primeira Liga.",
    ]
    # Which of the two names is the team is the reader's call (spaCy takes Benfica for a
    # place); each call keeps its own pair.
    calls = [c.arguments for c in specialist.predict_batch([item])[0].output.calls]
    assert [set(c.values()) for c in calls] == [
        {"Napoli", "UEFA Champions League"},
        {"Benfica", "Primeira Liga"},
    ]


def test_an_amx_build_of_llama_cpp_is_refused_with_the_rebuild_command() -> None:
    from types import SimpleNamespace

    from orchestrator.specialists.backends.llama import PORTABLE_CMAKE_ARGS, check_build

    amx = SimpleNamespace(llama_print_system_info=lambda: b"CPU : AVX2 = 1 | AMX_INT8 = 1 | ")
    with pytest.raises(ConfigurationError, match="AMX") as caught:
        check_build(amx)
    assert PORTABLE_CMAKE_ARGS in str(caught.value)
    check_build(SimpleNamespace(llama_print_system_info=lambda: b"CPU : AVX2 = 1 | FMA = 1 | "))


def test_the_makefile_builds_llama_cpp_with_the_portable_flags() -> None:
    from orchestrator.specialists.backends.llama import PORTABLE_CMAKE_ARGS

    makefile = (Path(__file__).parents[1] / "Makefile").read_text(encoding="utf-8")
    assert f"LLAMA_CMAKE_ARGS ?= {PORTABLE_CMAKE_ARGS}\n" in makefile


@pytest.mark.slow
def test_real_call_through_the_gguf_model(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    from orchestrator.specialists.backends.llama import LlamaJSONGenerator

    generator = LlamaJSONGenerator(n_threads=2)
    specialist = FunctionCallSpecialist({"filler": "generate"}, generator=generator)
    item = FunctionCallInput(
        request=[
            {"role": "user", "content": "Find the area of a triangle with base 10 and height 5."}
        ],
        functions=[AREA],
    )
    prediction = specialist.predict_batch([item])[0]
    calls = [{c.name: c.arguments} for c in prediction.output.calls]
    assert specialist.verify(item, prediction.output) == []
    assert calls == [{"calculate_triangle_area": {"base": 10, "height": 5.0}}]
    assert prediction.tokens > 0


@pytest.mark.slow
def test_the_local_gguf_model_calls_tools_itself() -> None:
    """`filler: tools`: llama.cpp's function-calling format on the bundled SmolLM2. The model,
    not the relevance gate, decides; its call's values are checked like any other answer."""
    pytest.importorskip("llama_cpp")
    specialist = FunctionCallSpecialist({"filler": "tools", "max_new_tokens": 96})
    item = FunctionCallInput(
        request="Find the area of a triangle with base 10 and height 5.", functions=[AREA]
    )
    (prediction,) = specialist.predict_batch([item])
    calls = [{c.name: c.arguments} for c in prediction.output.calls]
    assert calls == [{"calculate_triangle_area": {"base": 10, "height": 5.0}}]
    assert specialist.verify(item, prediction.output) == []
    assert prediction.tokens > 0
    # llama.cpp reports no token probabilities here, so nothing vouches for the answer:
    # confidence 0 (it escalates unless the binding's min_confidence says otherwise).
    assert prediction.confidence == 0.0 and specialist.acceptance_threshold is None
    assert specialist.model_id.endswith("SmolLM2-135M-Instruct@Q4_1+tools")
    specialist.close()


def test_flags_follow_the_request() -> None:
    from orchestrator.specialists.function_call.specialist import _flag

    assert _flag("forecast including human impact", "include_human_impact") is True
    assert _flag("forecast without the human impact", "include_human_impact") is False
    assert _flag("route that avoids toll roads", "avoid_tolls") is True
    assert _flag("route, no tolls please", "avoid_tolls") is True
    assert _flag("the fastest route with toll roads avoided", "avoid_tolls") is True
    assert _flag("a summary with the history excluded", "include_history") is False


def test_cli_evaluates_bfcl_by_reading(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from orchestrator.cli.main import ExitCode, main

    folder = _write_bfcl(tmp_path)
    args = ["eval", "function_call", "--data", str(folder), "--format", "bfcl", "--json"]
    categories = ["--category", "simple_python", "--category", "irrelevance"]
    assert main([*args, *categories, "--plots", str(tmp_path / "plots")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["filler"] == "extract"
    assert report["categories"]["simple_python"]["accuracy"] == 1.0
    assert report["categories"]["irrelevance"]["accuracy"] == 1.0
    # Every answer is right here, so every share kept is 100% right.
    assert set(report["risk_coverage"]["accuracy"]) == {1.0}
    assert 0.0 <= report["kept"] <= 1.0
    assert report["kept_accuracy"] == (1.0 if report["kept"] else 0.0)
    assert Path(report["plots"][0]).name == "bfcl_all_risk_coverage.png"
    assert Path(report["plots"][0]).stat().st_size > 0
    assert main([*args, "--filler", "bogus"]) == ExitCode.INVALID
    assert "--filler 'bogus': use one of" in capsys.readouterr().err


def test_an_untyped_parameter_is_read_as_a_string(reader: FunctionCallSpecialist) -> None:
    lookup = {
        "name": "festival_lookup",
        "description": "Find details of a music festival.",
        "parameters": {"type": "dict", "properties": {"festival": {}}, "required": ["festival"]},
    }
    calls = _calls(reader, "Find details of the music festival 'Jazz a Vienne'", [lookup])
    assert calls == [{"festival_lookup": {"festival": "Jazz a Vienne"}}]


def test_place_pairs_in_lists_are_one_item_each() -> None:
    from orchestrator.specialists.function_call.places import region_words
    from orchestrator.specialists.function_call.request_parts import list_items, name_lists

    assert region_words(["New", "York", "City"], 0) == 2
    assert region_words(["new", "york"], 0) == 0  # lower case is no region
    assert region_words(["OR"], 0) == 1 and region_words(["or"], 0) == 0

    def lists(text: str) -> list[list[str]]:
        return [list_items(text, m)[1] for m in name_lists(text)]

    text = "a Kawai piano in San Francisco, California, and Chicago, Illinois."
    assert ["San Francisco, California", "Chicago, Illinois"] in lists(text)
    text = "concerts in San Francisco, California and New York, New York?"
    assert ["San Francisco, California", "New York, New York"] in lists(text)
    assert ["Paris", "Rome", "Berlin"] in lists("flights to Paris, Rome and Berlin")


def test_a_list_of_places_with_regions_gives_one_call_per_place(
    reader: FunctionCallSpecialist,
) -> None:
    shops = _function("find_shop", "Find a music shop in a city.", "location")
    calls = _calls(reader, "Find a music shop in Austin, Texas and Portland, Oregon.", [shops])
    assert calls == [
        {"find_shop": {"location": "Austin, Texas"}},
        {"find_shop": {"location": "Portland, Oregon"}},
    ]


def test_one_relevant_part_makes_a_long_request_relevant(reader: FunctionCallSpecialist) -> None:
    parks = {
        "name": "park_finder.search",
        "description": "Find parks with the given facilities in a city.",
        "parameters": {
            "type": "dict",
            "properties": {"city": {"type": "string", "description": "The city."}},
            "required": ["city"],
        },
    }
    text = (
        "Could you help me get ready for a long weekend away in Chicago? My two nephews are "
        "coming along with us, and my sister has booked the hotel and the train tickets "
        "already. I still need to pack the suitcases and buy presents. Find a park with a "
        "playground and a picnic area."
    )
    spec = FunctionCallInput(request=text, functions=[parks]).specs()[0]
    clause = "Find a park with a playground and a picnic area."
    whole, part = reader.similarities([text, clause], [spec])[:, 0]
    # The preamble dilutes the whole request; the clause that asks for a park does not.
    assert reader.relevance(clause, spec, float(part)) > reader.relevance(text, spec, float(whole))
    assert _calls(reader, text, [parks]) == [{"park_finder.search": {"city": "Chicago"}}]


def test_a_kind_parameter_takes_the_word_that_says_which_kind(
    reader: FunctionCallSpecialist,
) -> None:
    from orchestrator.specialists.function_call.arguments import assign_arguments

    def kind(text: str, name: str) -> Any:
        params = {name: {"type": "string", "description": "The kind."}}
        return assign_arguments(text, params, [name], [name])[name].value

    assert kind("the footprint of a gas-powered vehicle for 1500 miles", "vehicle_type") == "gas"
    assert kind("a gas-fueled car that travels 12,000 miles", "fuel_type") == "gas"
    assert kind("if I switched to renewable energy sources", "energy_type") == "renewable"
    assert kind("plants for a hill slope in terms of erosion", "slope_type") == "hill"
    emissions = _function(
        "calculate_emission_savings",
        "Estimate the greenhouse gas emissions saved by switching to another energy source.",
        "energy_type",
        "region",
    )
    text = "How much greenhouse gas would I save by switching to solar energy in California?"
    assert _calls(reader, text, [emissions]) == [
        {"calculate_emission_savings": {"energy_type": "solar", "region": "California"}}
    ]


def test_a_bare_city_takes_the_city_and_state_form_its_description_asks_for(
    reader: FunctionCallSpecialist,
) -> None:
    from orchestrator.specialists.function_call.places import in_city_state_format

    coded = "The city and state, e.g. Boston, MA."
    assert in_city_state_format("Los Angeles", coded) == "Los Angeles, CA"
    assert in_city_state_format("Chicago", "City and state, e.g. Denver, Colorado") == (
        "Chicago, Illinois"
    )
    assert in_city_state_format("Chicago", "The city, e.g. Boston.") == "Chicago"
    assert in_city_state_format("Paris", coded) == "Paris"  # not a US city
    assert in_city_state_format("Austin, Texas", coded) == "Austin, Texas"
    finder = {
        "name": "restaurant.find_nearby",
        "description": "Find nearby restaurants that serve a cuisine.",
        "parameters": {
            "type": "dict",
            "properties": {
                "location": {"type": "string", "description": coded},
                "cuisine": {"type": "string", "description": "The cuisine, e.g. Thai."},
            },
            "required": ["location", "cuisine"],
        },
    }
    calls = _calls(reader, "Find a nearby restaurant that serves Thai food in Seattle.", [finder])
    assert calls == [{"restaurant.find_nearby": {"location": "Seattle, WA", "cuisine": "Thai"}}]


def test_a_capitalised_word_the_function_is_named_after_is_not_a_value(
    reader: FunctionCallSpecialist,
) -> None:
    uv = _function("uv_index.get", "Retrieve UV index data for a location.", "location")
    uv["parameters"]["properties"]["location"]["description"] = "The location of the UV index."
    calls = _calls(reader, "Give me the UV index for Tokyo for tomorrow, June 1 2023.", [uv])
    assert calls == [{"uv_index.get": {"location": "Tokyo"}}]


def test_a_text_list_without_a_list_of_its_own_takes_a_pair_joined_by_and() -> None:
    from orchestrator.specialists.function_call.arguments import read_lists

    def pair(text: str) -> list[Any] | None:
        params = {"items": {"type": "array", "items": {"type": "string"}}}
        return read_lists(text, params, ["items"]).get("items")

    assert pair("a lunch recipe that uses chicken and mushrooms.") == ["chicken", "mushrooms"]
    assert pair("the S&P 500 and the Dow Jones over the past 5 days") == ["S&P 500", "Dow Jones"]
    assert pair("using engine size and fuel economy variables") == ["engine size", "fuel economy"]
    assert pair("with Paris, Rome and Berlin") == ["Paris", "Rome", "Berlin"]  # a list first
    assert pair("Find a recipe, and cook it.") is None


def test_a_value_the_description_gives_as_an_example_fits_its_parameter(
    reader: FunctionCallSpecialist,
) -> None:
    finder = {
        "name": "restaurant_finder",
        "description": "Search for restaurants based on location and cuisine type.",
        "parameters": {
            "type": "dict",
            "properties": {
                "location": {"type": "string", "description": "The city, e.g. Boston."},
                "cuisine": {
                    "type": "string",
                    "description": "Type of cuisine the user wants, e.g. Italian, Japanese etc.",
                },
            },
            "required": ["location", "cuisine"],
        },
    }
    text = "Find an Italian restaurant near me in Denver that serves vegetarian food options."
    assert _calls(reader, text, [finder]) == [
        {"restaurant_finder": {"location": "Denver", "cuisine": "Italian"}}
    ]


def test_lists_of_numbers_that_each_hold_one_calls_numbers_go_one_to_a_call(
    reader: FunctionCallSpecialist,
) -> None:
    text = "John chose the numbers 36 and 48, while Mary chose the numbers 60 and 96. Find the GCD."
    assert _calls(reader, text, [GCD]) == [
        {"math.gcd": {"num1": 36, "num2": 48}},
        {"math.gcd": {"num1": 60, "num2": 96}},
    ]


def test_requests_written_out_in_turn_are_the_calls(reader: FunctionCallSpecialist) -> None:
    booking = {
        "name": "hotel.check_availability",
        "description": "Check the availability of a hotel for a stay.",
        "parameters": {
            "type": "dict",
            "properties": {
                "hotel_name": {"type": "string", "description": "The name of the hotel."},
                "location": {"type": "string", "description": "The city of the hotel."},
                "check_in_date": {"type": "string", "description": "Check-in, YYYY-MM-DD."},
                "check_out_date": {"type": "string", "description": "Check-out, YYYY-MM-DD."},
            },
            "required": ["hotel_name", "location", "check_in_date", "check_out_date"],
        },
    }
    text = (
        "Check the availability of 'Grand Hotel' in Oslo, Norway from May 2, 2024 to May 6, "
        "2024 and for 'Park Inn' in Rome, Italy from June 1, 2024 to June 3, 2024."
    )
    assert _calls(reader, text, [booking]) == [
        {
            "hotel.check_availability": {
                "hotel_name": "Grand Hotel",
                "location": "Oslo, Norway",
                "check_in_date": "2024-05-02",
                "check_out_date": "2024-05-06",
            }
        },
        {
            "hotel.check_availability": {
                "hotel_name": "Park Inn",
                "location": "Rome, Italy",
                "check_in_date": "2024-06-01",
                "check_out_date": "2024-06-03",
            }
        },
    ]


def test_a_list_of_pairs_gives_one_call_per_pair(reader: FunctionCallSpecialist) -> None:
    rates = _function(
        "get_exchange_rate", "Get the exchange rate of two currencies.", "base", "target"
    )
    text = "What are the exchange rates of EUR to GBP and EUR to JPY?"
    assert _calls(reader, text, [rates]) == [
        {"get_exchange_rate": {"base": "EUR", "target": "GBP"}},
        {"get_exchange_rate": {"base": "EUR", "target": "JPY"}},
    ]
    tax = {
        "name": "calculate_sales_tax",
        "description": "Calculate the sales tax on a purchase in a city.",
        "parameters": {
            "type": "dict",
            "properties": {
                "purchase_amount": {"type": "float", "description": "The amount of the purchase."},
                "city": {"type": "string", "description": "The city of the purchase."},
            },
            "required": ["purchase_amount", "city"],
        },
    }
    text = "The sales tax on buying $12.50 in Boston, $40.10 in Denver and $7.25 in Austin?"
    assert _calls(reader, text, [tax]) == [
        {"calculate_sales_tax": {"purchase_amount": 12.5, "city": "Boston"}},
        {"calculate_sales_tax": {"purchase_amount": 40.1, "city": "Denver"}},
        {"calculate_sales_tax": {"purchase_amount": 7.25, "city": "Austin"}},
    ]


def test_a_part_without_a_number_is_no_call_of_a_function_that_needs_numbers(
    reader: FunctionCallSpecialist,
) -> None:
    circle = {
        "name": "geometry.circle_area",
        "description": "Calculate the area of a circle.",
        "parameters": {
            "type": "dict",
            "properties": {"radius": {"type": "integer", "description": "The radius."}},
            "required": ["radius"],
        },
    }
    text = (
        "Calculate the area of two circles, one with a radius of 3 and the other with a "
        "radius of 7, and then compare the two areas to see which is larger."
    )
    assert _calls(reader, text, [circle]) == [
        {"geometry.circle_area": {"radius": 3}},
        {"geometry.circle_area": {"radius": 7}},
    ]


def test_multiples_of_pi_are_numbers() -> None:
    from orchestrator.specialists.function_call.arguments import mentions_in

    values = [(m.value, m.text) for m in mentions_in("a sine wave from 0 to 2 pi at 5 Hz")[0]]
    assert values == [(0, "0"), (5, "5"), (6.2832, "2 pi")]
    assert [m.value for m in mentions_in("an angle of pi radians")[0]] == [3.1416]


def test_a_clock_time_gives_its_hours_and_minutes_and_every_hour_is_once_an_hour(
    reader: FunctionCallSpecialist,
) -> None:
    clock = _function(
        "calculate_clock_angle", "calculate clock angle.", "hours", "minutes", kind="integer"
    )
    text = "What is the angle between the hands of a clock at 4:45 PM?"
    assert _calls(reader, text, [clock]) == [{"calculate_clock_angle": {"hours": 4, "minutes": 45}}]
    growth = _function(
        "bacteria_growth",
        "bacteria growth.",
        "start_population",
        "duplication_frequency",
        "duration",
        kind="integer",
    )
    text = "Bacteria growth from 300 bacteria that duplicate every hour, for 8 hours."
    assert _calls(reader, text, [growth]) == [
        {"bacteria_growth": {"start_population": 300, "duplication_frequency": 1, "duration": 8}}
    ]


def test_a_choice_named_by_another_form_of_its_word(reader: FunctionCallSpecialist) -> None:
    punishments = {
        "name": "law.crime_punishments",
        "description": "Find the possible punishments for a crime in a state.",
        "parameters": {
            "type": "dict",
            "properties": {
                "crime": {"type": "string", "description": "The crime."},
                "state": {"type": "string", "description": "The state."},
                "detail_level": {"type": "string", "enum": ["basic", "detailed"]},
            },
            "required": ["crime", "state", "detail_level"],
        },
    }
    text = "Tell me the possible punishments for the crime of fraud in Texas in detail."
    calls = _calls(reader, text, [punishments])
    assert calls[0]["law.crime_punishments"]["detail_level"] == "detailed"


def test_requests_the_function_is_named_for_get_their_call(
    reader: FunctionCallSpecialist,
) -> None:
    irr = {
        "name": "calculate_internal_rate_of_return",
        "description": "Calculate the internal rate of return for a project's cash flows.",
        "parameters": {
            "type": "dict",
            "properties": {
                "cash_flows": {"type": "array", "items": {"type": "float"}, "description": "."}
            },
            "required": ["cash_flows"],
        },
    }
    asked = "What is the internal rate of return for cash flows of -$100, $40, $60, $80?"
    assert _calls(reader, asked, [irr]) == [
        {"calculate_internal_rate_of_return": {"cash_flows": [-100.0, 40.0, 60.0, 80.0]}}
    ]
    height = {
        "name": "calculate_maximum_height",
        "description": "Calculate the maximum height an object thrown straight up will reach.",
        "parameters": {
            "type": "dict",
            "properties": {
                "initial_velocity": {"type": "float", "description": "The initial velocity."}
            },
            "required": ["initial_velocity"],
        },
    }
    asked = "What is the maximum height a ball thrown straight up at 7 m/s will reach?"
    assert _calls(reader, asked, [height]) == [
        {"calculate_maximum_height": {"initial_velocity": 7.0}}
    ]
    density = _function("calculate_density", "Calculate a population density.", "country")
    text = "Calculate the population density of Peru from its population and land area."
    assert _calls(reader, text, [density]) == [{"calculate_density": {"country": "Peru"}}]


def test_a_generated_call_is_never_repeated() -> None:
    # The grammar asks for as many calls as the request seems to hold; a small model that
    # has only one to give writes the same call again (SmolLM2 did, for this booking).
    generator = Scripted()
    specialist = FunctionCallSpecialist({"filler": "generate"}, generator=generator)
    booking = _function("book_table", "Book a table at a restaurant.", "party_size", kind="integer")
    booking["parameters"]["properties"]["restaurant"] = {"type": "string"}
    item = FunctionCallInput(
        request="Book a table for 4 at Nopa in San Francisco tomorrow at 7pm", functions=[booking]
    )
    prediction = specialist.predict_batch([item])[0]
    assert generator.schemas[-1]["minItems"] == 2  # the grammar asked for two
    assert len(prediction.output.calls) == 1
    assert not any("repeats" in p for p in specialist.verify(item, prediction.output))


@pytest.mark.slow
def test_the_bundled_model_does_not_repeat_a_call() -> None:
    pytest.importorskip("llama_cpp")
    from orchestrator.specialists.backends.llama import LlamaJSONGenerator

    booking = _function("book_table", "Book a table at a restaurant.", "restaurant", "city")
    for filler in ("generate", "hybrid"):
        specialist = FunctionCallSpecialist(
            {"filler": filler}, generator=LlamaJSONGenerator(n_threads=2)
        )
        item = FunctionCallInput(
            request="Book a table for 4 at Nopa in San Francisco tomorrow at 7pm",
            functions=[booking],
        )
        calls = specialist.predict_batch([item])[0].output.calls
        keys = [json.dumps(c.model_dump(), sort_keys=True) for c in calls]
        assert calls and len(keys) == len(set(keys)), filler


class Fixed:
    """A JSONGenerator that always answers the same calls."""

    model_id = "fixed"

    def __init__(self, answer: list[dict[str, Any]]) -> None:
        self.answer = answer

    def generate(
        self, messages: Sequence[ChatMessage], schema: dict[str, Any], *, max_tokens: int
    ) -> Generated:
        return Generated(json.dumps(self.answer), 10, 5)


def test_the_city_table_does_not_rewrite_a_generated_answer() -> None:
    weather = _function("get_weather", "Get the weather for a city.", "location", kind="string")
    weather["parameters"]["properties"]["location"]["description"] = (
        "The city and state, e.g. Boston, MA"
    )
    item = FunctionCallInput(request="Weather in Springfield", functions=[weather])
    generated = FunctionCallSpecialist(
        {"filler": "generate"}, generator=Fixed([{"location": "Springfield"}])
    )
    calls = generated.predict_batch([item])[0].output.calls
    assert [c.arguments for c in calls] == [{"location": "Springfield"}]
    reader = FunctionCallSpecialist({"filler": "extract"})
    calls = reader.predict_batch([item])[0].output.calls
    assert [c.arguments for c in calls] == [{"location": "Springfield, IL"}]


def test_a_call_the_request_does_not_back_is_weighed_down_to_no_call(
    reader: FunctionCallSpecialist,
) -> None:
    item = FunctionCallInput(
        request="What is the weather like in Paris today?", functions=[WEATHER]
    )
    gate = reader.gate_features(item)
    threshold = reader.options.relevance_threshold
    # The request passes the gate with an answer that verifies, and not with one that fails.
    assert reader.gate_probability([*gate[:-1], 0.0]) < threshold <= reader.gate_probability(gate)
    paris = reader.answer(item)
    assert paris.output.calls == [ToolCall(name="get_weather", arguments={"city": "Paris"})]
    assert paris.confidence == pytest.approx(reader.gate_probability(gate))
    berlin = FunctionCallOutput(
        calls=[ToolCall(name="get_weather", arguments={"city": "Berlin"})], no_call=False
    )
    weighed = reader.reweigh(item, Prediction(berlin, 0.99, 0), gate)
    assert weighed.output.no_call and not weighed.output.calls
    assert "'get_weather', scores" in weighed.output.reason
    assert "Berlin" in weighed.output.reason  # the verification problem that sank it


def test_the_gate_reads_how_far_the_best_function_stands_out_from_the_others() -> None:
    from orchestrator.specialists.function_call.specialist import _standing

    # With one or two functions the margin says all there is; the standout needs three.
    assert _standing(np.array([0.4]))[1:] == (0.0, 0.0)
    assert _standing(np.array([0.4, 0.1]))[2] == 0.0
    # A low similarity far above a tight crowd stands out; the same best among close ones
    # does not, and a crowd of equals gives the same standout at any level.
    clear = _standing(np.array([0.26, 0.08, 0.07, 0.06, 0.05, 0.07]))
    crowded = _standing(np.array([0.26, 0.25, 0.12, 0.24, 0.05, 0.2]))
    assert clear[0] == crowded[0] == pytest.approx(0.26)
    assert clear[2] > 2 * crowded[2] > 0
    shifted = _standing(np.array([0.56, 0.38, 0.37, 0.36, 0.35, 0.37]))
    assert shifted[2] == pytest.approx(clear[2])


def test_a_short_request_among_many_tools_passes_the_gate_on_its_standout(
    reader: FunctionCallSpecialist,
) -> None:
    from orchestrator.specialists.evaluation.assistant import assistant_tools

    tools = assistant_tools()
    item = FunctionCallInput(request="Is it sunny in Madrid today?", functions=tools)
    inputs = reader.gate_features(item)
    standout = inputs[-2]
    assert standout > 0.3
    threshold = reader.options.relevance_threshold
    assert reader.gate_probability([*inputs[:-2], 0.0, inputs[-1]]) < threshold
    assert reader.gate_probability(inputs) >= threshold
    (call,) = reader.answer(item).output.calls
    assert call.name == "get_weather" and call.arguments["location"] == "Madrid"


def test_an_unrelated_question_gets_no_call(reader: FunctionCallSpecialist) -> None:
    item = FunctionCallInput(request="Who won the football world cup in 2018?", functions=[WEATHER])
    out = reader.predict_one(item).output
    assert out.no_call and not out.calls
    assert "no function applies: the closest, 'get_weather'" in out.reason


THERMOSTAT = {
    "type": "function",
    "function": {
        "name": "set_thermostat",
        "description": "Set the target temperature of the heating.",
        "parameters": {
            "type": "object",
            "properties": {
                "temperature": {"type": "number", "description": "Target in degrees."},
                "room": {"type": "string", "description": "Which room; the whole home if not set."},
                "mode": {"type": "string", "enum": ["heat", "cool", "auto"]},
                "until": {"type": "string", "description": "End time, HH:MM."},
            },
            "required": ["temperature"],
        },
    },
}


def test_every_optional_free_value_is_weighed_though_the_request_names_no_parameter(
    reader: FunctionCallSpecialist,
) -> None:
    spec = normalize_function(THERMOSTAT, "functions[0]")
    # A choice and a time keep their own rules; free text and numbers go to the weights.
    assert reader.weighed(spec, ["temperature"]) == ["temperature", "room"]
    table = {
        "name": "book_table",
        "description": "Reserve a table at a restaurant.",
        "parameters": {
            "type": "object",
            "properties": {
                "restaurant": {"type": "string", "description": "Name of the restaurant."},
                "city": {"type": "string", "description": "City the restaurant is in."},
            },
            "required": ["restaurant"],
        },
    }
    text = "Book a table at Chez Panisse in Berkeley"
    (call,) = reader.predict_one(FunctionCallInput(request=text, functions=[table])).output.calls
    assert call.arguments == {"restaurant": "Chez Panisse", "city": "Berkeley"}
    # Nothing in the request speaks for a city: leaving it out wins.
    text = "Book a table at Chez Panisse"
    (call,) = reader.predict_one(FunctionCallInput(request=text, functions=[table])).output.calls
    assert call.arguments == {"restaurant": "Chez Panisse"}


def test_the_function_s_own_name_is_no_value_of_its_call(reader: FunctionCallSpecialist) -> None:
    velocity = {
        "name": "calculate_velocity",
        "description": "Velocity for a distance travelled in a duration.",
        "parameters": {
            "type": "dict",
            "properties": {
                "distance": {"type": "integer", "description": "Distance in kilometers."},
                "duration": {"type": "integer", "description": "Duration in hours."},
                "unit": {"type": "string", "description": "Unit of the result."},
            },
            "required": ["distance", "duration"],
        },
    }
    text = "They rode 80 kilometers in 4 hours; use the 'calculate_velocity' function."
    (call,) = reader.predict_one(FunctionCallInput(request=text, functions=[velocity])).output.calls
    assert call.arguments["distance"] == 80 and call.arguments["duration"] == 4
    assert "calculate_velocity" not in call.arguments.values()


def test_an_imperative_is_not_part_of_the_name_after_it() -> None:
    from orchestrator.specialists.backends.entities import EntityRecognizer

    text = "Add Jane Doe from Globex to the CRM"
    names = {text[a:b] for a, b, label in EntityRecognizer()(text) if label == "PERSON"}
    assert names == {"Jane Doe"}


TIMER = {
    "type": "function",
    "function": {
        "name": "set_timer",
        "description": "Start a countdown timer.",
        "parameters": {
            "type": "object",
            "properties": {
                "minutes": {"type": "integer", "description": "Length in minutes."},
                "label": {"type": "string", "description": "A name for the timer."},
            },
            "required": ["minutes"],
        },
    },
}


def test_words_that_nothing_accounts_for_lower_the_confidence(
    reader: FunctionCallSpecialist,
) -> None:
    from orchestrator.specialists.function_call.specialist import unexplained_share

    calls = [ToolCall(name="set_timer", arguments={"minutes": 15})]
    assert unexplained_share("Set a 15 minute timer", calls, [TIMER]) == 0.0
    # "water" and "garden": a second request that no call serves (dates and times are read).
    share = unexplained_share("Set a 15 minute timer and water the garden", calls, [TIMER])
    assert share == pytest.approx(2 / 5)
    assert unexplained_share("Start a timer for 15 minutes tomorrow at 7pm", calls, [TIMER]) == 0
    assert unexplained_share("Set a 15 minute timer", [], [TIMER]) == 0.0
    plain = reader.predict_one(
        FunctionCallInput(request="Set a 15 minute timer", functions=[TIMER])
    )
    more = reader.predict_one(
        FunctionCallInput(request="Set a 15 minute timer and water the garden", functions=[TIMER])
    )
    assert plain.output.calls == more.output.calls
    assert more.confidence < plain.confidence
