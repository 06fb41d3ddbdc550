"""Fit the function_call confidence: the probability that an answer is right, from what the
specialist knows when it answers (the gate's probability, whether the answer passes its own
verification, whether it makes several calls, whether it is a no-call, how sure the values
read are, and the share of the request's words that nothing accounts for:
``FunctionCallSpecialist.confidence_inputs``).

Fitted only on tuning data: the first half of BFCL's simple_python, multiple, parallel and
irrelevance files and the ``tune`` part of the project's assistant requests, each source
weighted equally. Prints the weights to paste into ``specialist._CONFIDENCE`` and the lowest
threshold at which the kept answers of the tuning data are at least 95% right.

    .venv/bin/python benchmarks/fit_function_call_confidence.py --data ../shared/data/bfcl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from _common import fit_logistic

from orchestrator.specialists import default_registry
from orchestrator.specialists.evaluation.assistant import (
    _bfcl_doc,
    assistant_tools,
    load_requests,
)
from orchestrator.specialists.evaluation.bfcl import check_calls, load_bfcl, select_part
from orchestrator.specialists.function_call.specialist import FunctionCallInput

BFCL = ("simple_python", "multiple", "parallel", "irrelevance")
TARGET = 0.95


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/bfcl"))
    args = parser.parse_args()
    reader: Any = default_registry().create("function_call", {"filler": "extract"})
    reader.ensure_loaded()
    rows: list[tuple[list[float], bool, str]] = []

    def score(source: str, request: FunctionCallInput, right: Any) -> None:
        raw, chosen = reader.read_answer(request)  # with the gate's probability
        calls = [{c.name: c.arguments} for c in raw.output.calls]
        rows.append((reader.confidence_inputs(request, raw, chosen), right(calls), source))

    for category in BFCL:
        for item in select_part(load_bfcl(args.data, category), "tune", None):
            request = FunctionCallInput.model_validate(
                {"request": item.messages, "functions": item.functions}
            )
            score(
                category,
                request,
                lambda c, i=item: not check_calls(i.category, i.functions, c, i.answer),
            )
    tools = assistant_tools()
    docs = [_bfcl_doc(t) for t in tools]
    for item in load_requests(part="tune"):
        request = FunctionCallInput.model_validate(
            {"request": item.messages, "functions": tools, "now": item.now}
        )
        category = "parallel_multiple" if item.answer else "irrelevance"
        score(
            "assistant",
            request,
            lambda c, a=item.answer, k=category: not check_calls(k, docs, c, a),
        )
    x = np.array([r[0] for r in rows])
    y = np.array([r[1] for r in rows], dtype=float)
    names = [r[2] for r in rows]
    counts = {n: names.count(n) for n in set(names)}
    weight = np.array([1.0 / counts[n] for n in names])
    theta = fit_logistic(x, y, weight)
    prob = 1.0 / (1.0 + np.exp(-(np.hstack([x, np.ones((len(x), 1))]) @ theta)))
    threshold = 1.0
    for t in sorted(set(np.round(prob, 3)), reverse=True):
        kept = prob >= t
        if kept.any() and y[kept].mean() >= TARGET:
            threshold = float(t)
    kept = prob >= threshold
    report = {
        "weights": [round(float(v), 4) for v in theta],
        "threshold": threshold,
        "tune_kept": round(float(kept.mean()), 3),
        "tune_kept_accuracy": round(float(y[kept].mean()) if kept.any() else 0.0, 3),
        "tune_accuracy": round(float(y.mean()), 3),
        "answers": len(rows),
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
