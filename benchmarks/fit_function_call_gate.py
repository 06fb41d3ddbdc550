"""Fit the function_call relevance gate: a logistic model over the request's similarity with
the best function, the share of that function's specific name words the request uses,
whether the request holds enough numbers for its numeric parameters, the share of the words
the request asks about that the function's name or description holds, how far the function
stands out from the runner-up and (with three or more functions) from all the others in their
spread, and whether the answer passes verification (``FunctionCallSpecialist.gate_inputs``).

Fitted only on tuning data: the first half of BFCL's simple_python, multiple, parallel and
irrelevance files and the ``tune`` part of the project's assistant requests, each source
weighted equally (so the irrelevant sources weigh as much as the relevant ones). Each
question is answered with the gate open, to know whether its answer verifies. The threshold
is the lowest at which every irrelevant tuning source keeps at least 90% of its questions
without a call ("a call is wanted" must be that sure). Prints the weights to paste into
``specialist._GATE`` and the threshold (``relevance_threshold``'s default).

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

RELEVANT = ("simple_python", "multiple", "parallel")
IRRELEVANT = ("irrelevance",)
#: Share of the questions of every irrelevant tuning source that must get no call.
KEPT_OUT = 0.90


def tuning_sources(data: Path) -> list[tuple[str, list[FunctionCallInput], int]]:
    """(name, requests, 1 if a function serves them) for every tuning source."""
    sources: list[tuple[str, list[FunctionCallInput], int]] = []
    for category in (*RELEVANT, *IRRELEVANT):
        items = select_part(load_bfcl(data, category), "tune", None)
        inputs = [
            FunctionCallInput.model_validate({"request": i.messages, "functions": i.functions})
            for i in items
        ]
        sources.append((category, inputs, int(category in RELEVANT)))
    tools = assistant_tools()
    for kind in ("single", "multi", "none"):
        requests = [r for r in load_requests(part="tune") if r.kind == kind]
        inputs = [
            FunctionCallInput.model_validate(
                {"request": r.messages, "functions": tools, "now": r.now}
            )
            for r in requests
        ]
        sources.append((f"assistant_{kind}", inputs, int(kind != "none")))
    return sources


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/bfcl"))
    args = parser.parse_args()
    # The gate open: every question gets the answer whose verification the gate weighs.
    options = {"filler": "extract", "relevance_threshold": 0.0}
    reader: Any = default_registry().create("function_call", options)
    reader.ensure_loaded()
    rows: list[tuple[list[float], int, str]] = []
    for name, inputs, label in tuning_sources(args.data):
        for item in inputs:
            if not item.functions:  # a question with no function says nothing of the gate
                continue
            features = reader.gate_features(item)
            answer = reader.answer(item)
            features[-1] = float(not reader.verify(item, answer.output))
            rows.append((features, label, name))
        print(f"{name}: {len(inputs)} questions", file=sys.stderr)
    x = np.array([r[0] for r in rows])
    y = np.array([r[1] for r in rows], dtype=float)
    names = np.array([r[2] for r in rows])
    counts = {n: int((names == n).sum()) for n in set(names)}
    weight = np.array([1.0 / counts[n] for n in names])
    theta = fit_logistic(x, y, weight)
    prob = 1.0 / (1.0 + np.exp(-(np.hstack([x, np.ones((len(x), 1))]) @ theta)))
    irrelevant = [n for n in counts if not y[names == n].any()]
    threshold = next(
        (
            round(float(t), 2)
            for t in np.arange(0.05, 0.96, 0.01)
            if all((prob[names == n] < t).mean() >= KEPT_OUT for n in irrelevant)
        ),
        0.95,
    )
    report = {
        "weights": [round(float(v), 4) for v in theta],
        "threshold": threshold,
        "tune_right_gate": {
            n: round(float(((prob[names == n] >= threshold) == y[names == n]).mean()), 3)
            for n in sorted(counts)
        },
        "questions": len(rows),
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
