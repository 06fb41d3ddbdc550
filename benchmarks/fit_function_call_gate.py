"""Fit the function_call relevance gate: a logistic model over the request's similarity with
the best function, the share of that function's specific name words the request uses, and
whether the request holds enough numbers for its numeric parameters.

Fitted only on tuning data: the first half of each BFCL file (questions a function serves
against the ``irrelevance`` files) and the ``tune`` part of the project's assistant requests,
each source weighted equally. The threshold is the one that maximises balanced accuracy on
the same data. Prints the weights to paste into ``specialist._GATE`` and the threshold.

    .venv/bin/python benchmarks/fit_function_call_gate.py --data ../shared/data/bfcl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from _common import fit_logistic

from orchestrator.specialists import default_registry
from orchestrator.specialists.evaluation.assistant import assistant_tools, load_requests
from orchestrator.specialists.evaluation.bfcl import load_bfcl, select_part
from orchestrator.specialists.function_call.specialist import FunctionCallInput

RELEVANT = ("simple_python", "multiple", "parallel", "parallel_multiple", "live_simple")
IRRELEVANT = ("irrelevance", "live_irrelevance")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/bfcl"))
    args = parser.parse_args()
    reader: Any = default_registry().create("function_call", {"filler": "extract"})
    reader.ensure_loaded()
    rows: list[tuple[list[float], int, str]] = []
    sources: list[tuple[str, list[FunctionCallInput], int]] = []
    for category in (*RELEVANT, *IRRELEVANT):
        items = select_part(load_bfcl(args.data, category), "tune", None)
        inputs = [
            FunctionCallInput.model_validate({"request": i.messages, "functions": i.functions})
            for i in items
        ]
        sources.append((category, inputs, int(category in RELEVANT)))
    tools = assistant_tools()
    for kind in ("single", "multi", "none"):
        items = [r for r in load_requests(part="tune") if r.kind == kind]
        inputs = [
            FunctionCallInput.model_validate({"request": r.messages, "functions": tools})
            for r in items
        ]
        sources.append((f"assistant_{kind}", inputs, int(kind != "none")))
    for name, inputs, label in sources:
        for item in inputs:
            if item.functions:  # a question with no function at all says nothing of the gate
                rows.append((reader.gate_features(item), label, name))
        print(f"{name}: {len(inputs)} questions", file=sys.stderr)
    x = np.array([r[0] for r in rows])
    y = np.array([r[1] for r in rows], dtype=float)
    names = [r[2] for r in rows]
    counts = {n: names.count(n) for n in set(names)}
    weight = np.array([1.0 / counts[n] for n in names])
    theta = fit_logistic(x, y, weight)
    z = np.hstack([x, np.ones((len(x), 1))]) @ theta
    prob = 1.0 / (1.0 + np.exp(-z))
    best = max(
        np.linspace(0.05, 0.95, 91),
        key=lambda t: np.mean(
            [
                np.mean(
                    (prob[[i for i, n in enumerate(names) if n == s]] >= t)
                    == y[[i for i, n in enumerate(names) if n == s]]
                )
                for s in counts
            ]
        ),
    )
    report = {
        "weights": [round(float(v), 4) for v in theta],
        "threshold": round(float(best), 2),
        "per_source_accuracy": {
            s: round(
                float(
                    np.mean(
                        (prob[[i for i, n in enumerate(names) if n == s]] >= best)
                        == y[[i for i, n in enumerate(names) if n == s]]
                    )
                ),
                3,
            )
            for s in sorted(counts)
        },
        "questions": len(rows),
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
