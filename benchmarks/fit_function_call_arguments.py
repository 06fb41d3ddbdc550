"""Fit the weights with which the function_call reader picks each argument's value.

The reader scores every value the request mentions for every parameter from named features (the
parameter's name or description words nearby, a preposition that marks the role, a capitalised
name for a name parameter, quotes, a date for a date...; ``arguments.fit_features``). This script
learns their weights: for each parameter of each expected call, the options are the values the
reader found and leaving the parameter out (whose features say whether it is required, whether
the request uses a word of its name and whether it has a default); a softmax over their scores
is fitted so that the right options get the probability (multinomial logistic regression with an
L2 penalty, chosen by 5-fold cross-validation over questions). The weights are then log-odds,
so a parameter's candidates give the probability that each is its value.

Fitted only on tuning data: the first halves of BFCL's simple_python, multiple, parallel,
parallel_multiple, live_simple and live_multiple files and the ``tune`` part of the project's
assistant requests, each source weighted equally. Java and JavaScript stay unseen. Writes
``specialists/data/function_call_arguments.json`` with ``--write``; prints a table either way.

    .venv/bin/python benchmarks/fit_function_call_arguments.py --data ../shared/data/bfcl --write
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _common import REPO, print_table
from scipy.optimize import minimize

from orchestrator.specialists import default_registry
from orchestrator.specialists.evaluation.assistant import assistant_tools, load_requests
from orchestrator.specialists.evaluation.bfcl import load_bfcl, select_part, standardize_string
from orchestrator.specialists.function_call.argument_weights import ArgumentWeights
from orchestrator.specialists.function_call.arguments import CandidateGroup, recorded_candidates
from orchestrator.specialists.function_call.specialist import FunctionCallInput

BFCL = (
    "simple_python",
    "multiple",
    "parallel",
    "parallel_multiple",
    "live_simple",
    "live_multiple",
)
OUT = REPO / "specialists" / "data" / "function_call_arguments.json"
PENALTIES = (0.0003, 0.001, 0.003, 0.01, 0.03)
FOLDS = 5


def matches(value: Any, acceptable: Sequence[Any]) -> bool:
    """Whether an option's value is one the answer accepts (``None``: the parameter left
    out, right when the answer allows leaving it out)."""
    if value is None:
        return "" in acceptable
    if isinstance(value, str):
        wanted = {standardize_string(a) for a in acceptable if isinstance(a, str) and a != ""}
        return standardize_string(value) in wanted
    return any(not isinstance(a, (str, bool, list, dict)) and a == value for a in acceptable)


class Rows:
    """Option groups with a right option, as feature matrices, with their question and
    source for cross-validation and weighting."""

    def __init__(self) -> None:
        self.groups: list[tuple[list[dict[str, float]], list[bool]]] = []
        self.question: list[int] = []
        self.source: list[str] = []
        self.unreachable = 0

    def add(
        self,
        recorded: Sequence[CandidateGroup],
        answer: Sequence[Mapping[str, Mapping[str, Sequence[Any]]]],
        question: int,
        source: str,
    ) -> None:
        expected: dict[str, dict[str, list[Any]]] = {}
        for call in answer:
            for name, params in call.items():
                for param, acceptable in params.items():
                    expected.setdefault(name, {}).setdefault(param, []).extend(acceptable)
        seen: set[tuple[str, str, tuple[Any, ...]]] = set()
        for group in recorded:
            if group.function not in expected:
                continue  # a function the answer does not call
            # A parameter the answer leaves out of a call must be left out.
            acceptable = expected[group.function].get(group.parameter, [""])
            key = (group.function, group.parameter, tuple(repr(v) for v, _ in group.options))
            if key in seen:
                continue
            seen.add(key)
            right = [matches(value, acceptable) for value, _ in group.options]
            if not any(right):
                self.unreachable += 1
                continue
            if all(right):
                continue  # nothing to learn
            self.groups.append(([f for _, f in group.options], right))
            self.question.append(question)
            self.source.append(source)


def collect(data: Path) -> Rows:
    reader: Any = default_registry().create("function_call", {"filler": "extract"})
    reader.ensure_loaded()
    rows = Rows()
    question = 0

    def run(request: FunctionCallInput, answer: Any, source: str) -> None:
        nonlocal question
        with recorded_candidates() as groups:
            reader.answer(request)
        rows.add(groups, answer, question, source)
        question += 1

    for category in BFCL:
        for item in select_part(load_bfcl(data, category), "tune", None):
            request = FunctionCallInput.model_validate(
                {"request": item.messages, "functions": item.functions}
            )
            run(request, item.answer, category)
    tools = assistant_tools()
    for item in load_requests(part="tune"):
        if not item.answer:
            continue
        request = FunctionCallInput.model_validate(
            {"request": item.messages, "functions": tools, "now": item.now}
        )
        run(request, item.answer, "assistant")
    return rows


class Problem:
    """The groups as one padded tensor: options x features, with a mask and the right ones."""

    def __init__(self, rows: Rows, names: list[str], index: Sequence[int]) -> None:
        width = max(len(rows.groups[i][0]) for i in index)
        self.x = np.zeros((len(index), width, len(names)))
        self.valid = np.zeros((len(index), width), dtype=bool)
        self.right = np.zeros((len(index), width), dtype=bool)
        column = {n: k for k, n in enumerate(names)}
        for g, i in enumerate(index):
            options, right = rows.groups[i]
            for o, features in enumerate(options):
                for name, value in features.items():
                    self.x[g, o, column[name]] = value
                self.valid[g, o] = True
                self.right[g, o] = right[o]
        sources = [rows.source[i] for i in index]
        counts = {s: sources.count(s) for s in set(sources)}
        self.weight = np.array([1.0 / counts[s] for s in sources])
        self.weight /= self.weight.sum()

    def scores(self, w: np.ndarray) -> np.ndarray:
        return np.where(self.valid, self.x @ w, -np.inf)

    def loss(self, w: np.ndarray, penalty: float) -> tuple[float, np.ndarray]:
        s = self.scores(w)
        top = s.max(axis=1, keepdims=True)
        p = np.exp(s - top)
        all_ = p.sum(axis=1)
        good = np.where(self.right, p, 0.0).sum(axis=1)
        nll = float(-(self.weight * np.log(good / all_)).sum()) + penalty * float(w @ w)
        q_all = p / all_[:, None]
        q_good = np.where(self.right, p, 0.0) / good[:, None]
        grad = np.einsum("g,go,gof->f", self.weight, q_all - q_good, self.x) + 2 * penalty * w
        return nll, grad

    def top_right(self, w: np.ndarray) -> float:
        best = self.scores(w).argmax(axis=1)
        hit = self.right[np.arange(len(best)), best]
        return float((self.weight * hit).sum())


def fit(problem: Problem, penalty: float, start: np.ndarray) -> np.ndarray:
    result = minimize(problem.loss, start, args=(penalty,), jac=True, method="L-BFGS-B")
    return np.asarray(result.x)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/bfcl"))
    parser.add_argument("--write", action="store_true", help=f"write {OUT.name}")
    parser.add_argument(
        "--rows", type=Path, help="keep the collected options in this file and reuse them"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    if args.rows and args.rows.is_file():
        rows = pickle.loads(args.rows.read_bytes())
    else:
        rows = collect(args.data)
        if args.rows:
            args.rows.write_bytes(pickle.dumps(rows))
    current = ArgumentWeights.from_json(json.loads(OUT.read_text()))
    names = sorted({n for options, _ in rows.groups for f in options for n in f})
    start = np.array(
        [
            {"left_out_required": current.left_out_required}.get(
                n,
                {"left_out_optional": current.left_out_optional}.get(
                    n, current.features.get(n, 0.0)
                ),
            )
            for n in names
        ]
    )
    questions = sorted(set(rows.question))
    fold_of = {q: k % FOLDS for k, q in enumerate(np.random.default_rng(0).permutation(questions))}
    cv: dict[float, float] = {}
    for penalty in PENALTIES:
        hits = []
        for k in range(FOLDS):
            train = [i for i, q in enumerate(rows.question) if fold_of[q] != k]
            held = [i for i, q in enumerate(rows.question) if fold_of[q] == k]
            w = fit(Problem(rows, names, train), penalty, start)
            hits.append(Problem(rows, names, held).top_right(w))
        cv[penalty] = float(np.mean(hits))
    penalty = max(cv, key=lambda p: (round(cv[p], 4), p))
    everything = Problem(rows, names, range(len(rows.groups)))
    learned = fit(everything, penalty, start)
    print_table(
        "argument choice, tuning data (5-fold cross-validated for the learned weights)",
        ["weights", "right option first"],
        [
            ["the shipped weights (all tuning data)", f"{100 * everything.top_right(start):.1f}%"],
            *[[f"learned, L2 {p}", f"{100 * cv[p]:.1f}%"] for p in PENALTIES],
        ],
    )
    by_name = dict(zip(names, learned.round(4).tolist(), strict=True))
    print_table(
        "weights",
        ["feature", "shipped", "learned"],
        [[n, f"{s:+.2f}", f"{by_name[n]:+.2f}"] for n, s in zip(names, start, strict=True)],
    )
    weights = ArgumentWeights(
        features={n: v for n, v in by_name.items() if not n.startswith("left_out_")},
        left_out_required=by_name.get("left_out_required", current.left_out_required),
        left_out_optional=by_name.get("left_out_optional", current.left_out_optional),
        order=current.order,
        fitted_on={
            "how": "softmax over each parameter's options, L2 chosen by 5-fold cross-validation",
            "data": [f"BFCL {c} first half" for c in BFCL] + ["assistant requests, tune part"],
            "groups": len(rows.groups),
            "questions": len(questions),
            "penalty": penalty,
            "cross_validated_right_first": round(cv[penalty], 4),
            "order": "set by hand",
        },
    )
    if args.write:
        OUT.write_text(json.dumps(weights.to_json(), indent=1) + "\n")
        print(f"wrote {OUT}")
    print(
        f"{len(rows.groups)} parameters with a right option among others, {rows.unreachable} "
        f"without one; {time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
