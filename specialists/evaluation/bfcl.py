"""The Berkeley Function Calling Leaderboard (BFCL v4) single-turn files, and an AST checker.

The checker follows BFCL's published matching rules (``bfcl_eval/eval_checker/ast_eval``):

- the number of calls must match the expected number (exactly one for ``simple`` and
  ``multiple``); in ``parallel`` categories calls are matched to the expected ones in any order;
- the function name must match;
- every required parameter must be present, and no parameter may appear that the function does
  not declare or that the answer does not list;
- each value must have the declared type (an ``int`` is accepted where a ``float`` is declared;
  ``tuple`` is a list, ``any`` a string) and be among the acceptable values; strings (also inside
  lists and dicts) are compared after BFCL's normalisation (lower case, without spaces and
  ``,./-_*^``, single quotes as double quotes);
- an expected parameter may be left out only when ``""`` is among its acceptable values.

``irrelevance`` questions are right when no function is called, ``relevance`` ones when at least
one is.

``simple_java`` and ``simple_javascript`` declare their parameters with Java and JavaScript type
names (``String``, ``HashMap``, ``Boolean``, ``long``, ``ArrayList``, or a class such as
``Path``). BFCL's own harness asks a model for Java or JavaScript source text and converts it
with its type converters; the specialist answers JSON, so here the type names are mapped to the
JSON types the specialist's schema gives them (``HashMap`` a dict, ``long`` an integer, a class
name a string) and the typed values are compared with the answer file's as in the Python
categories. The figures are therefore close to, not the same as, BFCL's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator._errors import ConfigurationError

__all__ = [
    "CATEGORIES",
    "BFCLItem",
    "check_calls",
    "check_simple_call",
    "load_bfcl",
    "standardize_string",
]

#: Category -> how it is scored. ``ast`` categories have answer files.
CATEGORIES: dict[str, str] = {
    "simple_python": "ast",
    "multiple": "ast",
    "parallel": "ast",
    "parallel_multiple": "ast",
    "irrelevance": "irrelevance",
    "live_simple": "ast",
    "live_multiple": "ast",
    "live_parallel": "ast",
    "live_parallel_multiple": "ast",
    "live_irrelevance": "irrelevance",
    "live_relevance": "relevance",
    "simple_java": "ast",
    "simple_javascript": "ast",
}

_PY_TYPES: dict[str, type] = {
    "string": str,
    "integer": int,
    "float": float,
    "boolean": bool,
    "array": list,
    "tuple": list,
    "dict": dict,
    "any": str,
}
_NESTED = ("array", "tuple")
#: Java and JavaScript type names as the Python categories spell them; any other name (a class
#: such as ``Path``) is ``any``, a string.
_FOREIGN_TYPES: dict[str, str] = {
    "string": "string",
    "char": "string",
    "character": "string",
    "boolean": "boolean",
    "int": "integer",
    "integer": "integer",
    "long": "integer",
    "short": "integer",
    "byte": "integer",
    "bigint": "integer",
    "float": "float",
    "double": "float",
    "number": "float",
    "hashmap": "dict",
    "map": "dict",
    "object": "dict",
    "arraylist": "array",
    "list": "array",
    "array": "array",
}


def _type_name(schema: Mapping[str, Any]) -> str:
    raw = str(schema.get("type", "any"))
    return raw if raw in _PY_TYPES else _FOREIGN_TYPES.get(raw.lower(), "any")


_STRIP = re.compile(r"[ ,./\-_*^]")

Call = Mapping[str, Mapping[str, Any]]  # {function name: {parameter: value}}


@dataclass(frozen=True)
class BFCLItem:
    """One question: its messages, the function documents, and the expected calls."""

    id: str
    category: str
    messages: list[dict[str, str]]
    functions: list[dict[str, Any]]
    answer: list[dict[str, dict[str, list[Any]]]] = field(default_factory=list)


def _read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ConfigurationError(f"{path}:{number}: not JSON ({exc.msg})") from None


def load_bfcl(folder: str | Path, category: str) -> list[BFCLItem]:
    """The questions of one category (``BFCL_v4_<category>.json``) with their answers."""
    if category not in CATEGORIES:
        raise ConfigurationError(
            f"unknown BFCL category {category!r}; known: {', '.join(CATEGORIES)}"
        )
    folder = Path(folder)
    questions = folder / f"BFCL_v4_{category}.json"
    if not questions.is_file():
        raise ConfigurationError(
            f"{questions}: not found; --data must be the folder holding the BFCL_v4_*.json files"
        )
    answers: dict[str, list[dict[str, dict[str, list[Any]]]]] = {}
    if CATEGORIES[category] == "ast":
        answer_file = folder / "possible_answer" / f"BFCL_v4_{category}.json"
        if not answer_file.is_file():
            raise ConfigurationError(f"{answer_file}: not found; the category needs its answers")
        answers = {row["id"]: row["ground_truth"] for row in _read_jsonl(answer_file)}
    items: list[BFCLItem] = []
    for row in _read_jsonl(questions):
        turns = row["question"]
        messages = list(turns[0]) if turns and isinstance(turns[0], list) else list(turns)
        if CATEGORIES[category] == "ast" and row["id"] not in answers:
            raise ConfigurationError(f"{questions}: no answer for question {row['id']!r}")
        items.append(
            BFCLItem(
                id=row["id"],
                category=category,
                messages=messages,
                functions=list(row["function"]),
                answer=answers.get(row["id"], []),
            )
        )
    return items


def standardize_string(text: str) -> str:
    """BFCL's string normalisation: no spaces or ``,./-_*^``, lower case, ``'`` as ``"``."""
    return _STRIP.sub("", text).lower().replace("'", '"')


def _answer_type(acceptable: Sequence[Any]) -> type | None:
    return next((type(a) for a in acceptable if a != ""), None)


def _type_problem(
    param: str, value: Any, acceptable: Sequence[Any], expected: type, nested: type | None
) -> tuple[str | None, bool]:
    """(problem or None, whether the answer holds a variable name instead of a value)."""
    answer_type = _answer_type(acceptable)
    is_variable = answer_type is not None and answer_type is not expected
    if type(value) is expected:
        if nested is None:
            return None, is_variable
        for option in acceptable:
            items: list[Any] = value if isinstance(value, list) else []
            if isinstance(option, list) and all(
                _type_problem(param, item, option, nested, None)[0] is None for item in items
            ):
                return None, is_variable
        return (
            f"parameter {param!r}: items must be {nested.__name__}, got {value!r}",
            is_variable,
        )
    if answer_type is not None and type(value) is answer_type:
        return None, True
    return (
        f"parameter {param!r}: expected {expected.__name__}, got {type(value).__name__} "
        f"({value!r})",
        is_variable,
    )


def _norm(value: Any) -> Any:
    return standardize_string(value) if isinstance(value, str) else value


def _dict_problem(param: str, value: dict[str, Any], acceptable: Sequence[Any]) -> str | None:
    problem = f"parameter {param!r}: {value!r} matches no acceptable dict"
    for option in acceptable:
        if option == "" or not isinstance(option, dict):
            continue
        ok = all(
            key in option and _norm(item) in [_norm(a) for a in option[key]]
            for key, item in value.items()
        ) and all(key in value or "" in options for key, options in option.items())
        if ok:
            return None
    return problem


def _value_problem(
    param: str, value: Any, acceptable: Sequence[Any], expected: type, nested: type | None
) -> str | None:
    if expected is dict:
        return _dict_problem(param, value, acceptable)
    if expected is list and nested is dict:
        for option in acceptable:
            if (
                isinstance(option, list)
                and len(option) == len(value)
                and all(
                    _dict_problem(param, item, [want]) is None
                    for item, want in zip(value, option, strict=True)
                )
            ):
                return None
        return f"parameter {param!r}: {value!r} matches no acceptable list of dicts"
    if expected is str:
        options = [standardize_string(a) for a in acceptable if isinstance(a, str)]
        if standardize_string(value) in options:
            return None
        return f"parameter {param!r}: {value!r} is not one of {list(acceptable)!r}"
    if expected is list:
        normalised = [_norm(v) for v in value]
        lists = [[_norm(v) for v in a] for a in acceptable if isinstance(a, list)]
        if normalised in lists:
            return None
        return f"parameter {param!r}: {value!r} is not one of {list(acceptable)!r}"
    if value in acceptable:
        return None
    return f"parameter {param!r}: {value!r} is not one of {list(acceptable)!r}"


def check_simple_call(
    doc: Mapping[str, Any], call: Call, expected: Mapping[str, Mapping[str, list[Any]]]
) -> list[str]:
    """Problems of one call against one expected call (``{name: {param: [acceptable...]}}``)."""
    name = doc["name"]
    answer = next(iter(expected.values()))
    if name not in call:
        return [f"function {name!r} not called (got {', '.join(call) or 'nothing'})"]
    args = call[name]
    params = doc.get("parameters", {})
    details: Mapping[str, Any] = params.get("properties", {})
    for required in params.get("required", []):
        if required not in args:
            return [f"missing required parameter {required!r}"]
    for param, value in args.items():
        if param not in details or param not in answer:
            return [f"unexpected parameter {param!r}"]
        type_name = _type_name(details[param])
        expected_type = _PY_TYPES.get(type_name, str)
        nested = None
        if type_name in _NESTED:
            nested = _PY_TYPES.get(_type_name(details[param].get("items", {})), str)
        if type_name == "float" and type(value) is int:
            value = float(value)
        problem, is_variable = _type_problem(param, value, answer[param], expected_type, nested)
        if problem:
            return [problem]
        if is_variable:
            if value not in answer[param]:
                return [f"parameter {param!r}: {value!r} is not one of {answer[param]!r}"]
            continue
        problem = _value_problem(param, value, answer[param], expected_type, nested)
        if problem:
            return [problem]
    for param, acceptable in answer.items():
        if param not in args and "" not in acceptable:
            return [f"parameter {param!r} left out but expected"]
    return []


def _doc(functions: Sequence[Mapping[str, Any]], name: str) -> Mapping[str, Any] | None:
    return next((f for f in functions if f.get("name") == name), None)


def check_calls(
    category: str,
    functions: Sequence[Mapping[str, Any]],
    calls: Sequence[Call],
    answer: Sequence[Mapping[str, Mapping[str, list[Any]]]],
) -> list[str]:
    """Problems of the calls a model made for one question; empty means right."""
    kind = CATEGORIES.get(category, "ast")
    if kind == "irrelevance":
        return [f"called {len(calls)} function(s) where none applies"] if calls else []
    if kind == "relevance":
        return [] if calls else ["no call where one was expected"]
    if len(calls) != len(answer):
        return [f"wrong number of calls: {len(calls)} instead of {len(answer)}"]
    if "parallel" not in category:
        expected = answer[0]
        doc = _doc(functions, next(iter(expected)))
        if doc is None:
            return [f"the answer names a function the question does not define: {expected}"]
        return check_simple_call(doc, calls[0], expected)
    used: set[int] = set()
    for index, expected in enumerate(answer):
        doc = _doc(functions, next(iter(expected)))
        if doc is None:
            return [f"the answer names a function the question does not define: {expected}"]
        problems: list[str] = []
        for i, call in enumerate(calls):
            if i in used:
                continue
            problems = check_simple_call(doc, call, expected)
            if not problems:
                used.add(i)
                break
        else:
            return [f"no call matches expected call {index}", *problems[:1]]
    return []


# -- evaluation ---------------------------------------------------------------------------

PARTS = ("all", "tune", "rest")


def select_part(items: Sequence[BFCLItem], part: str, limit: int | None) -> list[BFCLItem]:
    """``tune`` is the first half of a file (used to tune the specialist), ``rest`` the
    second half, ``all`` the whole file; ``limit`` keeps the first N of that part."""
    if part not in PARTS:
        raise ConfigurationError(f"--part {part!r}: use one of {', '.join(PARTS)}")
    half = (len(items) + 1) // 2
    chosen = list(items[:half] if part == "tune" else items[half:] if part == "rest" else items)
    return chosen[:limit] if limit is not None else chosen


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def evaluate_bfcl(
    specialist: Any,
    folder: str | Path,
    categories: Sequence[str],
    *,
    part: str = "all",
    limit: int | None = None,
    progress: Any = None,
    examples: int = 5,
) -> dict[str, Any]:
    """Run the ``function_call`` specialist on BFCL categories and score it with the checker.

    Returns per-category accuracy, the share of relevant questions answered with no call
    (``refused``), whether the set of called functions was right (``function_choice``), latency
    percentiles per question, and a few failures with the checker's reasons; over all the
    questions, the risk-coverage curve and the figures at the specialist's acceptance
    threshold (:func:`~orchestrator.specialists.evaluation.kept_answers.kept_answers`).
    """
    import time

    from orchestrator.specialists.evaluation.kept_answers import kept_answers
    from orchestrator.specialists.function_call.specialist import FunctionCallInput

    specialist.ensure_loaded()
    report: dict[str, Any] = {"part": part, "limit": limit, "categories": {}}
    all_times: list[float] = []
    scored: list[dict[str, Any]] = []
    for category in categories:
        items = select_part(load_bfcl(folder, category), part, limit)
        advance = progress(category, len(items)) if progress else (lambda n: None)
        right = refused = choice_right = 0
        times: list[float] = []
        failures: list[dict[str, Any]] = []
        for item in items:
            request = FunctionCallInput.model_validate(
                {"request": item.messages, "functions": item.functions}
            )
            start = time.perf_counter()
            prediction = specialist.predict_batch([request])[0]
            elapsed = time.perf_counter() - start
            times.append(elapsed * 1000)
            calls = [{c.name: c.arguments} for c in prediction.output.calls]
            problems = check_calls(category, item.functions, calls, item.answer)
            right += not problems
            scored.append(
                {
                    "right": not problems,
                    "verified": not specialist.verify(request, prediction.output),
                    "confidence": float(prediction.confidence),
                    "relevant": CATEGORIES[category] != "irrelevance",
                }
            )
            refused += not calls
            expected_names = sorted(next(iter(a)) for a in item.answer)
            choice_right += sorted(next(iter(c)) for c in calls) == expected_names
            if problems and len(failures) < examples:
                failures.append(
                    {
                        "id": item.id,
                        "request": request.text()[:300],
                        "calls": calls,
                        "expected": item.answer,
                        "problems": problems,
                    }
                )
            advance(1)
        n = max(len(items), 1)
        row: dict[str, Any] = {
            "questions": len(items),
            "accuracy": right / n,
            "latency_p50_ms": _percentile(times, 0.5),
            "latency_p95_ms": _percentile(times, 0.95),
            "failures": failures,
        }
        if CATEGORIES[category] == "ast":
            row["refused"] = refused / n
            row["function_choice"] = choice_right / n
        elif CATEGORIES[category] == "relevance":
            row["refused"] = refused / n
        report["categories"][category] = row
        all_times += times
    report["latency_p50_ms"] = _percentile(all_times, 0.5)
    report["latency_p95_ms"] = _percentile(all_times, 0.95)
    report.update(kept_answers(scored, getattr(specialist, "acceptance_threshold", None)))
    return report
