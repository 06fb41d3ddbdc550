"""Blocking runs on one orchestrator: do they keep its servers and models between calls?

The shipped support-triage graph, its specialists behind the shipped MCP server over stdio
(as a graph file describes them), the in-memory checkpointer. Three ways to run N requests
one after another, measured in the same process:

- ``sync``: ``Orchestrator.run()`` N times on one orchestrator (the first call, which starts
  the server and loads the models, is timed apart as ``first``);
- ``arun on an open orchestrator``: ``await orc.arun()`` N times on another orchestrator,
  open as ``async with`` opens it, the baseline the blocking API is held to (target: p50
  within 1.3x); the two run in alternating blocks, both open side by side;
- ``open per call``: what ``run()`` did before it kept its loop, one ``asyncio.run(arun())``
  on an orchestrator that is not open, which starts the server and loads the models on each
  call (fewer calls: each takes seconds).

    python benchmarks/sync_pool.py [--runs 100] [--blocks 5] [--per-call 5] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import data_source, machine, percentile, print_table, support_messages, write_json

from orchestrator import Orchestrator
from orchestrator.graphs import shipped_graph


def _orchestrator(state_dir: Path) -> Orchestrator:
    path = shipped_graph("support_triage")
    assert path is not None
    return Orchestrator.from_file(path, checkpointer="memory", state_dir=state_dir)


def _summary(ms: list[float]) -> dict[str, float]:
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p90_ms": round(percentile(ms, 0.9), 2),
        "mean_ms": round(statistics.fmean(ms), 2),
    }


def _timed(call: Any) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


def _sync_and_open_runs(
    texts: list[str], state_dir: Path, blocks: int
) -> tuple[float, list[float], list[float]]:
    """Both orchestrators open side by side, their runs in alternating blocks, so that the
    shared machine's load falls on both alike."""
    blocking = _orchestrator(state_dir)
    opened = _orchestrator(state_dir)
    loop = asyncio.new_event_loop()
    try:
        first = _timed(lambda: blocking.run(texts[0]))  # starts its server, loads its models
        loop.run_until_complete(opened.__aenter__())
        loop.run_until_complete(opened.arun(texts[0]))  # as for sync: first-run caches apart
        sync: list[float] = []
        arun: list[float] = []
        size = max(1, len(texts) // blocks)
        for i in range(0, len(texts), size):
            block = texts[i : i + size]
            sync += [_timed(lambda t=t: blocking.run(t)) for t in block]
            arun += [_timed(lambda t=t: loop.run_until_complete(opened.arun(t))) for t in block]
        return first, sync, arun
    finally:
        blocking.close()
        loop.run_until_complete(opened.aclose())
        loop.close()


def _per_call_runs(texts: list[str], state_dir: Path) -> list[float]:
    orc = _orchestrator(state_dir)
    times = []
    for text in texts:
        start = time.perf_counter()
        asyncio.run(orc.arun(text))  # opens and closes the server and models each time
        times.append((time.perf_counter() - start) * 1000)
    return times


def run(args: argparse.Namespace) -> dict[str, Any]:
    texts = support_messages(args.runs)
    with tempfile.TemporaryDirectory() as tmp:
        state_dir = Path(tmp)
        per_call = _per_call_runs(texts[: args.per_call], state_dir)
        first, sync, opened = _sync_and_open_runs(texts, state_dir, args.blocks)
    sync_s, open_s, per_call_s = _summary(sync), _summary(opened), _summary(per_call)
    return {
        "benchmark": "sync_pool",
        "machine": machine(),
        "data": data_source(),
        "graph": "support_triage (specialists over MCP stdio, memory checkpointer)",
        "sync": {**sync_s, "first_run_ms": round(first, 1)},
        "arun_open": open_s,
        "open_per_call": per_call_s,
        "sync_p50_over_arun_open_p50": round(sync_s["p50_ms"] / open_s["p50_ms"], 3),
        "target_ratio": 1.3,
        # The second blocking run of a script, before (it opened everything again) and now.
        "second_run_before_ms": round(per_call[1] if len(per_call) > 1 else per_call[0], 1),
        "second_run_now_ms": round(sync[0], 1),
    }


def show(result: dict[str, Any]) -> None:
    rows = []
    for label, key in (
        ("sync run() on one orchestrator", "sync"),
        ("await arun() inside async with", "arun_open"),
        ("open per call (run() before)", "open_per_call"),
    ):
        s = result[key]
        rows.append(
            [label, str(s["n"]), f"{s['p50_ms']:.1f}", f"{s['p90_ms']:.1f}", f"{s['mean_ms']:.1f}"]
        )
    print_table(
        "Sequential runs, support_triage over MCP stdio",
        ["", "runs", "p50 ms", "p90 ms", "mean ms"],
        rows,
    )
    print(
        f"sync p50 / open arun p50: {result['sync_p50_over_arun_open_p50']:.2f}x "
        f"(target <= {result['target_ratio']}x); "
        f"first sync run {result['sync']['first_run_ms']:.0f} ms; "
        f"second run: {result['second_run_before_ms']:.0f} ms before -> "
        f"{result['second_run_now_ms']:.0f} ms now"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="timed sync and arun calls")
    parser.add_argument("--blocks", type=int, default=5, help="alternating blocks of runs")
    parser.add_argument("--per-call", type=int, default=5, help="calls that open per call")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--out", help="where to write the JSON (default: benchmarks/results/)")
    args = parser.parse_args()
    result = run(args)
    path = write_json("sync_pool", result, args.out)
    if args.json:
        import json

        print(json.dumps(result, indent=2))
    else:
        show(result)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
