"""How graph-file validation scales with the number of nodes.

Generates chains of N nodes (alternately a `specialists` node with one sentiment subtask and
a `set` node with a template; every edge out of a specialists node has a condition on its
subtask and a default) and times, per size, reading the YAML alone (the baseline: linear by
construction) and the whole `GraphSpec.from_text` (YAML, schema and graph checks). Linear
validation keeps the ratio to the baseline flat as N grows, and the time per node constant.

    .venv/bin/python benchmarks/graph_validation.py [--sizes 3000 12000] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from _common import fmt_spread, machine, print_table, spread, write_json

from orchestrator.graph.positions import load_yaml
from orchestrator.graph.spec import GraphSpec


def chain_graph(nodes: int) -> str:
    lines = ["version: 1", "name: chain", "specialists:", "  sentiment: {}", "nodes:"]
    for i in range(nodes):
        if i % 2 == 0:
            lines += [
                f"  n{i}:",
                "    kind: specialists",
                "    subtasks:",
                f"      - {{id: s{i}, specialist: sentiment}}",
            ]
        else:
            lines += [f"  n{i}:", "    kind: set", f"    set: {{said: '{{{{ s{i - 1}.label }}}}'}}"]
    lines += ["edges:", "  - {from: START, to: n0}"]
    for i in range(nodes - 1):
        if i % 2 == 0:
            lines.append(f"  - {{from: n{i}, to: END, when: \"s{i}.label == 'negative'\"}}")
        lines.append(f"  - {{from: n{i}, to: n{i + 1}}}")
    lines.append(f"  - {{from: n{nodes - 1}, to: END}}")
    return "\n".join(lines) + "\n"


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[3000, 12000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", nargs="?", const="", default=None, help="write JSON (path)")
    args = parser.parse_args()

    results: list[dict[str, Any]] = []
    for size in args.sizes:
        text = chain_graph(size)
        parse_s: list[float] = []
        validate_s: list[float] = []
        for _ in range(args.repeats):  # alternate the two sides, so load drifts hit both
            parse_s.append(timed(partial(load_yaml, text)))
            validate_s.append(timed(partial(GraphSpec.from_text, text)))
        results.append(
            {
                "nodes": size,
                "bytes": len(text.encode()),
                "yaml_s": spread(parse_s),
                "validate_s": spread(validate_s),
                "ratio": spread([v / p for v, p in zip(validate_s, parse_s, strict=True)]),
                "us_per_node": round(min(validate_s) / size * 1e6, 1),
            }
        )
    rows = [
        [
            str(r["nodes"]),
            fmt_spread(r["yaml_s"], " s"),
            fmt_spread(r["validate_s"], " s"),
            fmt_spread(r["ratio"], "x"),
            f"{r['us_per_node']:.0f}",
        ]
        for r in results
    ]
    print_table(
        "graph validation (median [min-max] over repeats)",
        ["nodes", "YAML only", "whole validation", "validation / YAML", "us per node (min)"],
        rows,
    )
    if len(results) > 1:
        first, last = results[0], results[-1]
        growth = last["validate_s"]["min"] / first["validate_s"]["min"]
        print(
            f"{last['nodes'] / first['nodes']:.0f}x the nodes took {growth:.1f}x the time "
            "(min of repeats; linear is about the same factor)"
        )
    if args.json is not None:
        path = write_json(
            "graph_validation", {"machine": machine(), "results": results}, args.json or None
        )
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
