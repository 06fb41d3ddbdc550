"""Specialist throughput and latency, with and without micro-batching; server memory.

Each built-in CPU specialist (intent, sentiment, on the bundled int8 MiniLM) is called by
``C`` threads at once, each sending one request after another (a closed loop, as the MCP
server's worker threads do), for C in 1, 8 and 32. The same specialist class runs twice per
repeat: ``micro_batch_wait_ms=0`` (every call its own forward pass: the baseline) and the
default (concurrent calls coalesced into one pass). Reported: requests/s and p50/p95 latency,
median and range over ``--repeats``, and per concurrency the batched / unbatched ratios
(targets at C=32: throughput >= 1.6x, p95 <= 2x).

Then the peak resident memory (VmHWM) of ``orchestrator serve`` hosting every registered
CPU specialist, after it has answered concurrent calls on each of them over MCP stdio.

    python benchmarks/specialists.py [--requests 192] [--repeats 3] [--json PATH]

Texts are real customer messages (Banking77/CLINC150 test sets in ../shared/data when
present), tagged per block so that the encoder's cache never answers.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import (
    data_source,
    fmt_spread,
    machine,
    percentile,
    print_table,
    spread,
    support_messages,
    write_json,
)

from orchestrator import configure_logging
from orchestrator.specialists import Specialist, TextInput, default_registry
from orchestrator.tools._config import MCPServerConfig
from orchestrator.tools._pool import MCPSessionPool

CONCURRENCY = (1, 8, 32)
MODES = {"unbatched": 0.0, "batched": 2.0}  # micro_batch_wait_ms


def closed_loop(
    specialist: Specialist[Any, Any], texts: Sequence[str], concurrency: int
) -> dict[str, float]:
    """``concurrency`` threads send ``texts`` one request at a time; rps and latencies."""
    latencies: list[float] = []
    lock = threading.Lock()
    todo = iter(texts)

    def worker() -> None:
        while True:
            with lock:
                text = next(todo, None)
            if text is None:
                return
            start = time.perf_counter()
            specialist.predict_batch([TextInput(text=text)])
            elapsed = (time.perf_counter() - start) * 1000
            with lock:
                latencies.append(elapsed)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for future in [pool.submit(worker) for _ in range(concurrency)]:
            future.result()
    wall = time.perf_counter() - start
    return {
        "rps": len(latencies) / wall,
        "p50_ms": statistics.median(latencies),
        "p95_ms": percentile(latencies, 0.95),
    }


def measure(name: str, args: argparse.Namespace, base: list[str]) -> list[dict[str, Any]]:
    registry = default_registry()
    instances = {
        mode: registry.create(name, {"micro_batch_wait_ms": wait}) for mode, wait in MODES.items()
    }
    for specialist in instances.values():
        specialist.ensure_loaded()
        closed_loop(specialist, [f"warm-up {i}: {t}" for i, t in enumerate(base[:32])], 8)
    rows = []
    for concurrency in CONCURRENCY:
        samples: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
        for rep in range(args.repeats):
            # Alternate the order so that load drifting on a shared machine hits both.
            order = list(MODES) if rep % 2 == 0 else list(reversed(MODES))
            for mode in order:
                # A short tag per block keeps the encoder cache from answering and adds ~3 tokens.
                texts = [f"{t} {name[0]}{mode[0]}{concurrency}-{rep}" for t in base]
                samples[mode].append(closed_loop(instances[mode], texts, concurrency))
        row: dict[str, Any] = {"specialist": name, "concurrency": concurrency}
        for mode in MODES:
            for key in ("rps", "p50_ms", "p95_ms"):
                row[f"{mode}_{key}"] = spread([s[key] for s in samples[mode]])
        pairs = list(zip(samples["batched"], samples["unbatched"], strict=True))
        row["rps_ratio"] = spread([b["rps"] / u["rps"] for b, u in pairs])
        row["p95_ratio"] = spread([b["p95_ms"] / u["p95_ms"] for b, u in pairs])
        rows.append(row)
        print(
            f"{name:>9} C={concurrency:<2} batched/unbatched rps x{fmt_spread(row['rps_ratio'])}",
            flush=True,
        )
    return rows


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(c) for c in text)
    return found


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


async def server_memory(texts: Sequence[str]) -> dict[str, Any]:
    """Peak RSS of ``orchestrator serve`` (all registered specialists) after real calls."""
    before = set(_children(os.getpid()))
    spec = MCPServerConfig(command=sys.executable, args=["-m", "orchestrator", "serve"])
    pool = MCPSessionPool("all", spec)
    await pool.start()
    try:
        names = sorted(t for t in pool.tools if not t.endswith("_batch"))
        for name in names:
            await asyncio.gather(
                *(pool.call_tool(name, {"text": f"[rss/{name}] {t}"}) for t in texts)
            )
        servers = [pid for pid in _children(os.getpid()) if pid not in before]
        peak = sum(_peak_rss_mb(pid) for pid in servers)
    finally:
        await pool.aclose()
    return {"specialists": names, "processes": len(servers), "peak_rss_mb": round(peak, 1)}


def plot(rows: list[dict[str, Any]], target: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name in sorted({r["specialist"] for r in rows}):
        mine = [r for r in rows if r["specialist"] == name]
        xs = [r["concurrency"] for r in mine]
        for mode, style in (("unbatched", "--"), ("batched", "-")):
            left.plot(
                xs,
                [r[f"{mode}_rps"]["median"] for r in mine],
                style,
                marker="o",
                label=f"{name} {mode}",
            )
            right.plot(
                xs,
                [r[f"{mode}_p95_ms"]["median"] for r in mine],
                style,
                marker="o",
                label=f"{name} {mode}",
            )
    left.set(xlabel="concurrent callers", ylabel="requests/s", xscale="log", title="throughput")
    right.set(xlabel="concurrent callers", ylabel="p95 ms", xscale="log", title="p95 latency")
    for ax in (left, right):
        ax.set_xticks(list(CONCURRENCY), [str(c) for c in CONCURRENCY])
        ax.legend(fontsize=7)
    fig.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target


def report(rows: list[dict[str, Any]], memory: dict[str, Any] | None, reqs: int) -> None:
    print_table(
        f"Specialists, {reqs} requests per block (median [min-max] over repeats)",
        [
            "specialist",
            "C",
            "rps off",
            "rps on",
            "p50 off",
            "p50 on",
            "p95 off",
            "p95 on",
            "rps on/off",
            "p95 on/off",
        ],
        [
            [
                r["specialist"],
                str(r["concurrency"]),
                fmt_spread(r["unbatched_rps"], digits=0),
                fmt_spread(r["batched_rps"], digits=0),
                fmt_spread(r["unbatched_p50_ms"], digits=1),
                fmt_spread(r["batched_p50_ms"], digits=1),
                fmt_spread(r["unbatched_p95_ms"], digits=1),
                fmt_spread(r["batched_p95_ms"], digits=1),
                fmt_spread(r["rps_ratio"]),
                fmt_spread(r["p95_ratio"]),
            ]
            for r in rows
        ],
    )
    if memory:
        print(
            f"server hosting {', '.join(memory['specialists'])}: peak RSS "
            f"{memory['peak_rss_mb']:.0f} MB"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=192, help="requests per block")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--specialists", nargs="+", default=["intent", "sentiment"])
    parser.add_argument("--no-memory", action="store_true", help="skip the server's RSS")
    parser.add_argument("--json", metavar="PATH", help="JSON output (default: results/)")
    parser.add_argument("--plot", metavar="PATH", help="PNG output (default: results/)")
    args = parser.parse_args()
    configure_logging(level="WARNING")
    base = support_messages(args.requests)
    rows = [row for name in args.specialists for row in measure(name, args, base)]
    memory = None if args.no_memory else asyncio.run(server_memory(base[:64]))
    report(rows, memory, args.requests)
    payload = {
        "machine": machine(),
        "inputs": data_source(),
        "requests": args.requests,
        "repeats": args.repeats,
        "rows": rows,
        "server_memory": memory,
    }
    out = write_json("specialists", payload, args.json)
    png = plot(rows, Path(args.plot) if args.plot else out.with_suffix(".png"))
    print(f"JSON: {out}" + (f"  PNG: {png}" if png else ""))
