"""What tracing costs: the shipped support graph on no-op specialists, traced and not.

The specialists answer a constant prediction at once (those of ``overhead.py``), so what is
measured is the framework's own cost per run. Three configurations, rotated in blocks in
one process:

- ``no hooks``: the tracing hooks of the steps replaced by a bare ``nullcontext`` (what the
  code cost before it had them), the baseline;
- ``off``: as shipped with ``tracing=False`` (the same path as no TracerProvider at all: no
  node wrappers are compiled and each hook reads one context variable);
- ``on``: ``tracing=True``, the SDK's provider with its batch processor exporting OTLP/HTTP
  to a receiver in another process (it answers 200 and drops the spans).

Two measures, each the median and range over ``--repeats`` repeats, as a ratio to the
baseline taken per repeat: the median wall time of a run, with the three configurations
taking turns run by run (so that other work on a shared machine slows them alike), and the
CPU time of this process per run (every thread, the exporter's included), over a block of
``--runs`` runs per configuration ending with the exporter flushed, which other processes'
load leaves alone. Also reported: the spans one run exports.

    python benchmarks/tracing.py [--runs 150] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from _common import fmt_spread, machine, print_table, spread, write_json
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from overhead import inprocess_spec, noop_registry

from orchestrator import GraphSpec, Orchestrator, configure_logging
from orchestrator.specialists import SpecialistRegistry
from orchestrator.steps import call as call_step
from orchestrator.steps import escalate as escalate_step
from orchestrator.steps import verify as verify_step

CONFIGS = ("no hooks", "off", "on")
# The modules whose steps open spans (`child_span`), for the baseline without the hooks.
HOOKED = (call_step, verify_step, escalate_step)

RECEIVER = """\
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass

server = HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


class Counting(SpanExporter):
    """Counts the spans handed to the OTLP exporter it wraps."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.spans = 0

    def export(self, spans: Any) -> SpanExportResult:
        batch: list[ReadableSpan] = list(spans)
        self.spans += len(batch)
        return self.inner.export(batch)

    def shutdown(self) -> None:
        self.inner.shutdown()


@contextlib.contextmanager
def receiver() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}/v1/traces"
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def hooks_removed() -> Iterator[None]:
    def bare(*args: Any, **kwargs: Any) -> contextlib.nullcontext[Any]:
        return contextlib.nullcontext(trace.INVALID_SPAN)

    saved = [module.child_span for module in HOOKED]
    for module in HOOKED:
        module.child_span = bare  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module, original in zip(HOOKED, saved, strict=True):
            module.child_span = original  # type: ignore[attr-defined]


class Runner:
    """One open orchestrator per configuration, so that runs of each can be interleaved."""

    def __init__(self, spec: GraphSpec, registry: SpecialistRegistry) -> None:
        self.orcs = {
            config: Orchestrator(
                spec, registry=registry, checkpointer="memory", tracing=config == "on"
            )
            for config in CONFIGS
        }
        self.done = 0

    async def run(self, config: str) -> float:
        """One run; its wall time in ms."""
        hooks = hooks_removed() if config == "no hooks" else contextlib.nullcontext()
        with hooks:
            start = time.perf_counter()
            result = await self.orcs[config].arun(f"I was charged twice for order {self.done}")
            elapsed = (time.perf_counter() - start) * 1000
        assert result.status == "ok", result.error
        self.done += 1
        return elapsed


def rotated(repeat: int) -> tuple[str, ...]:
    # Each repeat starts with another configuration, so drift is shared out.
    return CONFIGS[repeat % 3 :] + CONFIGS[: repeat % 3]


async def measure(args: argparse.Namespace, endpoint: str) -> dict[str, Any]:
    exporter = Counting(OTLPSpanExporter(endpoint=endpoint))
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    registry = noop_registry()
    runner = Runner(inprocess_spec(registry), registry)
    wall: dict[str, list[float]] = {c: [] for c in CONFIGS}
    cpu: dict[str, list[float]] = {c: [] for c in CONFIGS}
    spans_per_run: list[float] = []
    async with contextlib.AsyncExitStack() as stack:
        for orc in runner.orcs.values():
            await stack.enter_async_context(orc)
        for config in CONFIGS:  # warm-up: compiled validators, the exporter's session
            for _ in range(10):
                await runner.run(config)
        provider.force_flush()
        for repeat in range(args.repeats):
            # Wall time: the configurations take turns run by run, so that the load of a
            # shared machine falls on all of them alike.
            times: dict[str, list[float]] = {c: [] for c in CONFIGS}
            for _ in range(args.runs):
                for config in rotated(repeat):
                    times[config].append(await runner.run(config))
            for config in CONFIGS:
                wall[config].append(statistics.median(times[config]))
            # CPU time of this process (every thread: the exporter's too), a block of runs
            # per configuration with the exporter flushed at its end; other processes' load
            # does not count.
            for config in rotated(repeat):
                provider.force_flush()
                before, spans = time.process_time(), exporter.spans
                for _ in range(args.runs):
                    await runner.run(config)
                provider.force_flush()
                cpu[config].append((time.process_time() - before) * 1000 / args.runs)
                if config == "on":
                    spans_per_run.append((exporter.spans - spans) / args.runs)
            print(
                f"repeat {repeat + 1}: wall "
                + ", ".join(f"{c} {wall[c][-1]:.2f}" for c in CONFIGS)
                + " ms; cpu "
                + ", ".join(f"{c} {cpu[c][-1]:.2f}" for c in CONFIGS)
                + " ms"
            )
    provider.shutdown()

    def ratios(values: dict[str, list[float]], config: str) -> dict[str, float]:
        base = values["no hooks"]
        return spread([v / b for v, b in zip(values[config], base, strict=True)])

    return {
        "machine": machine(),
        "runs_per_repeat": args.runs,
        "repeats": args.repeats,
        "graph": "support_triage (no-op specialists, in process, memory checkpointer)",
        "spans_per_run": statistics.median(spans_per_run),
        "configs": {
            config: {
                "wall_ms": spread(wall[config]),
                "wall_ratio": ratios(wall, config),
                "cpu_ms": spread(cpu[config]),
                "cpu_ratio": ratios(cpu, config),
            }
            for config in CONFIGS
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", help="JSON results (default benchmarks/results/tracing.json)")
    args = parser.parse_args()
    configure_logging(level="WARNING")
    with receiver() as endpoint:
        payload = asyncio.run(measure(args, endpoint))
    print_table(
        f"Tracing cost per run ({args.repeats} repeats of {args.runs} runs each; "
        f"{payload['spans_per_run']:.0f} spans a run when on)",
        ["configuration", "wall ms", "wall / no hooks", "CPU ms", "CPU / no hooks"],
        [
            [
                config,
                fmt_spread(row["wall_ms"], digits=3),
                fmt_spread(row["wall_ratio"], digits=3),
                fmt_spread(row["cpu_ms"], digits=3),
                fmt_spread(row["cpu_ratio"], digits=3),
            ]
            for config, row in payload["configs"].items()
        ],
    )
    print(f"written to {write_json('tracing', payload, args.out)}")


if __name__ == "__main__":
    main()
