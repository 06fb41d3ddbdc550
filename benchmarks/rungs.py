"""The escalation rungs, measured: what share of a specialist's escalations each one resolves
on a test split, and how accurate the answers it resolves are.

For each trained intent artifact (trained first with ``orchestrator specialists train`` on
the dataset's train split), every rung's confidence is fitted on the validation items the
artifact escalates (and written to the artifact's ``rungs.json``, which the escalate step
reads), then scored on the test split's escalations. A rung qualifies for a shipped ladder
when it resolves at least 20% of them at the artifact's target precision or better.

    python benchmarks/rungs.py --artifact intent-clinc150:clinc150 \\
        --artifact intent-banking77:banking77 [--second intent-clinc150=intent-clinc150-ft] \\
        [--variants 5] [--json PATH] [--print-json]

``--artifact NAME:FORMAT`` reads the data from ../shared/data/FORMAT (or ``--data-dir``);
``--second A=B`` gives artifact A a second opinion from artifact B (the ``specialist`` rung).
The ``frontier`` rung is measured only when ANTHROPIC_API_KEY is set.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from _common import DATA_DIR, machine, print_table, write_json

from orchestrator import configure_logging
from orchestrator.agents._frontier import frontier_from_spec
from orchestrator.agents.answerer import FrontierAnswerer
from orchestrator.graph.spec import FrontierSpec
from orchestrator.specialists.artifacts import load_artifact
from orchestrator.specialists.evaluation.datasets import load_dataset
from orchestrator.specialists.evaluation.rungs import MIN_RESOLVED_SHARE, evaluate_rungs


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def report(rows: list[dict[str, Any]]) -> None:
    print_table(
        f"Escalation rungs on the test splits (qualify: >= {MIN_RESOLVED_SHARE:.0%} resolved "
        "at the target precision)",
        [
            "dataset",
            "artifact",
            "rung",
            "escalations",
            "resolved",
            "accuracy of resolved",
            "target",
            "specialist's own accuracy",
            "val: resolved / precision",
            "qualifies",
        ],
        [
            [
                r["dataset"],
                r["artifact"],
                r["rung"],
                str(r["escalations"]),
                f"{r['resolved']} ({_pct(r['resolved_share'])})" if r["measured"] else "-",
                _pct(r["resolved_accuracy"]),
                f"{r['target_precision']:.0%}",
                _pct(r["specialist_accuracy"]),
                (
                    f"{_pct(r['validation']['resolved_share'])} / "
                    f"{_pct(r['validation']['precision'])}"
                    if r["validation"]
                    else "-"
                ),
                ("yes" if r["qualifies"] else "no") if r["measured"] else r["note"],
            ]
            for r in rows
        ],
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact", action="append", required=True, metavar="NAME:FORMAT")
    parser.add_argument("--second", action="append", default=[], metavar="NAME=SECOND")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR)
    parser.add_argument("--store", help="artifact store (default .orchestrator/specialists)")
    parser.add_argument("--variants", type=int, default=5, help="crops per vote")
    parser.add_argument("--frontier-limit", type=int, default=200)
    parser.add_argument("--json", metavar="PATH", help="JSON output (default: results/)")
    parser.add_argument("--print-json", action="store_true", help="print the JSON, no table")
    args = parser.parse_args()
    configure_logging(level="WARNING")
    seconds = dict(s.split("=", 1) for s in args.second)
    frontier = frontier_from_spec(FrontierSpec())
    answerer = FrontierAnswerer(frontier) if frontier else None
    rows: list[dict[str, Any]] = []
    for entry in args.artifact:
        name, _, fmt = entry.partition(":")
        if not fmt:
            parser.error(f"--artifact {entry}: give NAME:FORMAT (e.g. intent-clinc150:clinc150)")
        artifact = load_artifact(name, args.store)
        second = load_artifact(seconds[name], args.store) if name in seconds else None
        dataset = load_dataset(args.data_dir / fmt, fmt)
        start = time.perf_counter()
        found = evaluate_rungs(
            artifact,
            dataset,
            second=second,
            answerer=answerer,
            variants=args.variants,
            frontier_limit=args.frontier_limit,
            cache_dir=Path(".orchestrator") / "cache",
            progress=lambda message, n=name: print(f"{n}: {message}", file=sys.stderr),
        )
        print(f"{name}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
        rows += [r.to_json() for r in found]
    payload = {"machine": machine(), "variants": args.variants, "rows": rows}
    out = write_json("rungs", payload, args.json)
    if args.print_json:
        print(json.dumps(payload, indent=2))
    else:
        report(rows)
        print(f"JSON: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
