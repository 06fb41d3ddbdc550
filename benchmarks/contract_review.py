"""End to end: the shipped contract_review graph on real CUAD contracts, over MCP stdio.

The graph runs as shipped (the clauses specialist in an ``orchestrator serve`` process reached
through the pooled stdio session) with SQLite checkpoints in durability mode ``exit``, on the
contracts of the artifact's own test split (never seen in training), by ``C`` concurrent
callers (C = 1, 8, 32) sharing one open ``Orchestrator``. The baseline, measured in the same
run at the same concurrency, is the clauses specialist called directly in this process (the
model work alone). Reported: requests/s and p50/p95, median and range over ``--repeats``, and
at C=1 where a run's time goes (plan, dispatch, model, verify, merge, set, checkpoint, other).

    python benchmarks/contract_review.py --artifact DIR [--data ../shared/data/cuad]
                                         [--contracts 24] [--repeats 2] [--json PATH]

``--artifact`` is a trained clauses artifact (``orchestrator specialists train clauses
--format cuad --data ../shared/data/cuad`` writes ``.orchestrator/specialists/clauses``, the
default); ``--data`` is the CUAD folder of ``../shared/data``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from _common import DATA_DIR, fmt_spread, machine, print_table, spread, write_json
from end_to_end import CheckpointClock, breakdown, closed_loop, print_breakdown
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from orchestrator import GraphSpec, Orchestrator, RunResult, configure_logging
from orchestrator.graphs import shipped_graph
from orchestrator.specialists.clauses import ClausesSpecialist, ContractInput
from orchestrator.specialists.evaluation.cuad import load_cuad

CONCURRENCY = (1, 8, 32)
PHASES = ("plan", "dispatch", "model", "verify", "merge", "set", "checkpoint")


def test_contracts(artifact: Path, data: Path, n: int) -> list[str]:
    names = json.loads((artifact / "artifact.json").read_text())["split"]["test"]
    by_name = {c.name: c.text for c in load_cuad(data).contracts}
    texts = [by_name[name] for name in names if name in by_name]
    if not texts:
        raise SystemExit(f"none of the artifact's test contracts are in {data}")
    return texts[:n]


@asynccontextmanager
async def opened(
    state_dir: Path, artifact: Path
) -> AsyncIterator[tuple[Orchestrator, CheckpointClock]]:
    path = shipped_graph("contract_review")
    assert path is not None
    spec = GraphSpec.from_file(path)
    # The served specialist finds its artifact in the store under the server's working
    # directory: give it one that holds exactly this artifact.
    store = state_dir / ".orchestrator" / "specialists"
    store.mkdir(parents=True)
    (store / "clauses").symlink_to(artifact.resolve())
    server = spec.servers["specialists"].model_copy(update={"cwd": str(state_dir)})
    spec = spec.model_copy(
        update={
            "servers": {"specialists": server},
            "policies": spec.policies.model_copy(update={"durability": "exit"}),
        }
    )
    async with AsyncSqliteSaver.from_conn_string(str(state_dir / "e2e.sqlite")) as saver:
        clock = CheckpointClock(saver)
        async with Orchestrator(
            spec, checkpointer=saver, base_dir=path.parent, frontier=False
        ) as orc:
            yield orc, clock


async def main(args: argparse.Namespace) -> dict[str, Any]:
    artifact = Path(args.artifact)
    texts = test_contracts(artifact, Path(args.data), args.contracts)
    local = ClausesSpecialist({"artifact": str(artifact)})
    local.ensure_loaded()

    async def model_only(text: str) -> None:
        await asyncio.to_thread(local.predict_batch, [ContractInput(text=text)])

    rows: list[dict[str, Any]] = []
    parts: defaultdict[str, list[float]] = defaultdict(list)
    statuses: defaultdict[str, int] = defaultdict(int)
    with tempfile.TemporaryDirectory() as state:
        async with opened(Path(state), artifact) as (orc, clock):

            async def graph_run(text: str) -> tuple[RunResult, float]:
                before = clock.ms
                result = await orc.arun(text)
                return result, clock.ms - before

            for text in texts[:3]:  # warm both paths and the MCP session
                await graph_run(text)
                await model_only(text)
            for concurrency in CONCURRENCY:
                graph_stats, base_stats = [], []
                for _ in range(args.repeats):
                    base, _ = await closed_loop(model_only, texts, concurrency)
                    stats, outcomes = await closed_loop(graph_run, texts, concurrency)
                    base_stats.append(base)
                    graph_stats.append(stats)
                    for result, checkpoint_ms in outcomes:
                        statuses[result.status] += 1
                        if concurrency == 1:
                            for key, value in breakdown(result, checkpoint_ms).items():
                                parts[key].append(value)
                row: dict[str, Any] = {"concurrency": concurrency}
                for key in ("rps", "p50_ms", "p95_ms"):
                    row[f"graph_{key}"] = spread([s[key] for s in graph_stats])
                    row[f"model_{key}"] = spread([s[key] for s in base_stats])
                row["p50_ratio"] = spread(
                    [
                        g["p50_ms"] / b["p50_ms"]
                        for g, b in zip(graph_stats, base_stats, strict=True)
                    ]
                )
                rows.append(row)
                print(
                    f"C={concurrency}: graph p50 {fmt_spread(row['graph_p50_ms'])} ms, "
                    f"model p50 {fmt_spread(row['model_p50_ms'])} ms",
                    flush=True,
                )
    return {
        "contracts": len(texts),
        "mean_chars": round(statistics.mean(len(t) for t in texts)),
        "rows": rows,
        "breakdown_c1_median_ms": {
            key: round(statistics.median(values), 2) for key, values in parts.items()
        },
        "statuses": dict(statuses),
    }


def report(result: dict[str, Any]) -> None:
    print_table(
        f"contract_review end to end, MCP stdio, SQLite exit, {result['contracts']} CUAD test "
        f"contracts ({result['mean_chars']:,} characters on average) per block",
        ["C", "graph rps", "graph p50", "graph p95", "model rps", "model p50", "p50 / model"],
        [
            [
                str(r["concurrency"]),
                fmt_spread(r["graph_rps"], digits=1),
                fmt_spread(r["graph_p50_ms"], digits=1),
                fmt_spread(r["graph_p95_ms"], digits=1),
                fmt_spread(r["model_rps"], digits=1),
                fmt_spread(r["model_p50_ms"], digits=1),
                fmt_spread(r["p50_ratio"]),
            ]
            for r in result["rows"]
        ],
    )
    print_breakdown(result["breakdown_c1_median_ms"], PHASES)
    print(f"statuses: {result['statuses']}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--artifact", default=".orchestrator/specialists/clauses", help="trained clauses artifact"
    )
    parser.add_argument("--data", default=str(DATA_DIR / "cuad"), help="the CUAD folder")
    parser.add_argument("--contracts", type=int, default=24, help="contracts per block")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", metavar="PATH", help="JSON output (default: results/)")
    args = parser.parse_args()
    configure_logging(level="WARNING")
    result = asyncio.run(main(args))
    report(result)
    payload = {"machine": machine(), "repeats": args.repeats, **result}
    out = write_json("contract_review", payload, args.json)
    print(f"JSON: {out}")
