"""Which of the function_call reader's specific rules fire on which BFCL questions.

Each rule is a function of the reader; it is wrapped with a counter that records the question
it fired on (a non-empty, non-default result), and every question of every BFCL file is run
through the specialist (``extract``). A rule that fires on three questions or fewer was written
for those questions, not for requests in general, and is a candidate for deletion.

    .venv/bin/python benchmarks/function_call_rules.py --data ../shared/data/bfcl [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.specialists import default_registry
from orchestrator.specialists.evaluation.bfcl import CATEGORIES, load_bfcl
from orchestrator.specialists.function_call import arguments, specialist
from orchestrator.specialists.function_call.specialist import FunctionCallInput

#: (module, function name, whether a result counts as firing)
RULES: list[tuple[Any, str, Callable[[Any, tuple[Any, ...]], bool]]] = [
    (specialist, "_flag", lambda r, a: r is False),
    (specialist, "written_unit", lambda r, a: r is not None),
    (specialist, "_described_choices", lambda r, a: bool(r)),
    (specialist, "_named_choices", lambda r, a: bool(r)),
    (specialist, "in_city_state_format", lambda r, a: r != a[0]),
    (specialist, "ordinal_parts", lambda r, a: bool(r)),
    (specialist, "pair_lists", lambda r, a: bool(r)),
    (specialist, "one_each", lambda r, a: bool(r)),
    (arguments, "_kind_of", lambda r, a: bool(r)),
    (arguments, "_is_example", lambda r, a: bool(r)),
    (arguments, "_year_or_money", lambda r, a: r != 0.0),
    (arguments, "_counts_following", lambda r, a: bool(r)),
    (arguments, "_word_pairs", lambda r, a: bool(r)),
    (arguments, "calendar_name", lambda r, a: r is not None),
    (arguments, "currency_code", lambda r, a: r is not None),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/bfcl"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    fired: dict[str, set[str]] = defaultdict(set)
    current = [""]

    def wrap(module: Any, name: str, fires: Callable[[Any, tuple[Any, ...]], bool]) -> None:
        original = getattr(module, name)

        def counted(*a: Any, **k: Any) -> Any:
            result = original(*a, **k)
            if fires(result, a):
                fired[f"{module.__name__.rsplit('.', 1)[-1]}.{name}"].add(current[0])
            return result

        setattr(module, name, counted)

    for module, name, fires in RULES:
        wrap(module, name, fires)
    reader = default_registry().create("function_call", {"filler": "extract"})
    reader.ensure_loaded()
    questions = 0
    for category in CATEGORIES:
        for item in load_bfcl(args.data, category):
            current[0] = item.id
            request = FunctionCallInput.model_validate(
                {"request": item.messages, "functions": item.functions}
            )
            reader.predict_batch([request])
            questions += 1
        print(f"{category}: done", file=sys.stderr)
    report = {
        "questions": questions,
        "rules": {
            rule: {"questions": len(ids), "ids": sorted(ids)[:10]}
            for rule, ids in sorted(fired.items(), key=lambda kv: len(kv[1]))
        },
        "never": [
            f"{m.__name__.rsplit('.', 1)[-1]}.{n}"
            for m, n, _ in RULES
            if not any(r == f"{m.__name__.rsplit('.', 1)[-1]}.{n}" for r in fired)
        ],
    }
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        for rule, row in report["rules"].items():
            print(f"{row['questions']:5d}  {rule}  {' '.join(row['ids'][:4])}")
        print("never fired:", ", ".join(report["never"]) or "none")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
