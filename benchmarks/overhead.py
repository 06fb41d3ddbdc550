"""Framework overhead: the shipped support graph against a bare LangGraph graph.

All run the same no-op specialists (the intent and sentiment contracts, answering a constant
prediction at once), so what is left is the framework's own cost. The baseline is a
hand-written ``StateGraph`` with the same node names and the same ``Send`` fan-out (plan ->
2 x call -> verify -> escalate -> merge -> a set node), calling the specialists directly,
on the same checkpointer with the same durability mode, written twice: with plain functions
(LangGraph runs each in a thread pool) and with the same bodies as coroutines (run on the
loop, as the framework runs its own nodes). Reported per configuration: median run time of
each, the ratio to the plain baseline (target <= 1.3x) and to the coroutine one, and the
overhead per run and per LangGraph step, each as the median and range over ``--repeats``
blocks that rotate the three.

    python benchmarks/overhead.py [--runs 40] [--repeats 5] [--postgres DSN | --no-postgres]
    python benchmarks/overhead.py --profile 300    # pyinstrument profile of the framework path

Without ``--postgres`` a throwaway cluster is started when ``initdb`` is on PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypedDict

import yaml
from _common import (
    fmt_spread,
    machine,
    print_table,
    spread,
    throwaway_postgres,
    write_json,
)
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from pydantic import BaseModel

from orchestrator import GraphSpec, Orchestrator, configure_logging
from orchestrator.graphs import shipped_graph
from orchestrator.specialists import Prediction, Specialist, SpecialistRegistry, TextInput
from orchestrator.specialists._text_classifier import LabelScore
from orchestrator.specialists.intent import IntentOutput
from orchestrator.specialists.sentiment import SentimentOutput

INTENTS = (
    "billing",
    "refund",
    "cancel_subscription",
    "order_status",
    "technical_issue",
    "account_access",
    "product_question",
)
SENTIMENTS = ("negative", "neutral", "positive")
URGENT_INTENTS = ("billing", "refund", "account_access", "cancel_subscription")


# -- no-op specialists ---------------------------------------------------------------------
class NoopIntent(Specialist[TextInput, IntentOutput]):
    """The intent contract with a constant answer: no model, no wait."""

    name: ClassVar[str] = "intent"
    description: ClassVar[str] = "No-op intent specialist (benchmark). Input: {text}."
    input_model: ClassVar[type[BaseModel]] = TextInput
    output_model: ClassVar[type[BaseModel]] = IntentOutput
    summary_fields: ClassVar[tuple[str, ...] | None] = ("label",)

    @property
    def labels(self) -> tuple[str, ...]:
        return INTENTS

    def predict_batch(self, inputs: Sequence[TextInput]) -> list[Prediction[IntentOutput]]:
        output = IntentOutput(label="billing", ranked=[LabelScore(label="billing", score=0.9)])
        return [Prediction(output, 0.9, 1) for _ in inputs]


class NoopSentiment(Specialist[TextInput, SentimentOutput]):
    """The sentiment contract with a constant answer."""

    name: ClassVar[str] = "sentiment"
    description: ClassVar[str] = "No-op sentiment specialist (benchmark). Input: {text}."
    input_model: ClassVar[type[BaseModel]] = TextInput
    output_model: ClassVar[type[BaseModel]] = SentimentOutput
    summary_fields: ClassVar[tuple[str, ...] | None] = ("label",)

    @property
    def labels(self) -> tuple[str, ...]:
        return SENTIMENTS

    def predict_batch(self, inputs: Sequence[TextInput]) -> list[Prediction[SentimentOutput]]:
        output = SentimentOutput(label="negative", ranked=[LabelScore(label="negative", score=0.8)])
        return [Prediction(output, 0.8, 1) for _ in inputs]


def noop_registry() -> SpecialistRegistry:
    registry = SpecialistRegistry(load_entry_points=False)
    registry.register(NoopIntent)
    registry.register(NoopSentiment)
    return registry


def inprocess_spec(registry: SpecialistRegistry) -> GraphSpec:
    """The shipped support graph with its specialists in process (no MCP server)."""
    path = shipped_graph("support_triage")
    assert path is not None
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data.pop("servers", None)
    for binding in data["specialists"].values():
        binding["via"] = "inprocess"
    return GraphSpec.from_dict(data, registry=registry)


# -- the bare LangGraph baseline -----------------------------------------------------------
def _merge(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any]:
    return {**(left or {}), **(right or {})}


class BareState(TypedDict, total=False):
    request: dict[str, Any]
    plan: list[str]
    results: Annotated[dict[str, Any], _merge]
    verdicts: Annotated[dict[str, Any], _merge]
    fields: Annotated[dict[str, Any], _merge]
    route: str


def _coroutine(fn: Callable[..., Any]) -> Callable[..., Any]:
    async def run(arg: Any) -> Any:
        return fn(arg)

    return run


def bare_graph(
    specialists: dict[str, Specialist[Any, Any]], *, coroutines: bool = False
) -> StateGraph[Any]:
    """What a careful engineer writes by hand for the same graph: same nodes, same fan-out,
    the same checks, no framework. Plain functions, as LangGraph's examples write them (it
    runs each in a thread pool), or with ``coroutines`` the same bodies as coroutines, run on
    the event loop as the framework runs its own: the stricter baseline."""
    wrap = _coroutine if coroutines else (lambda fn: fn)
    thresholds = {"intent": 0.35, "sentiment": 0.5}

    def plan(state: BareState) -> dict[str, Any]:
        return {"plan": ["intent", "sentiment"]}

    def dispatch(state: BareState) -> list[Send] | str:
        done = state.get("results", {})
        sends = [
            Send("triage.call", {"id": sid, "text": state["request"]["text"]})
            for sid in state["plan"]
            if sid not in done
        ]
        return sends or "triage.merge"

    def call(payload: dict[str, Any]) -> dict[str, Any]:
        specialist = specialists[payload["id"]]
        prediction = specialist.predict_batch([TextInput(text=payload["text"])])[0]
        return {
            "results": {
                payload["id"]: {
                    "output": prediction.output.model_dump(mode="json"),
                    "confidence": prediction.confidence,
                }
            }
        }

    def verify(state: BareState) -> dict[str, Any]:
        verdicts = {}
        for sid, result in state["results"].items():
            labels = specialists[sid].labels or ()
            verdicts[sid] = (
                result["output"]["label"] in labels and result["confidence"] >= thresholds[sid]
            )
        return {"verdicts": verdicts}

    def escalate(state: BareState) -> dict[str, Any]:
        return {}  # nothing fails verification with these specialists

    def merge(state: BareState) -> dict[str, Any]:
        results, verdicts = state["results"], state["verdicts"]
        intent, sentiment = results["intent"]["output"], results["sentiment"]["output"]
        if not verdicts["intent"]:
            route = "review"
        elif (
            sentiment["label"] == "negative"
            and verdicts["sentiment"]
            and intent["label"] in URGENT_INTENTS
        ):
            route = "urgent"
        else:
            route = "standard"
        fields = {f"{sid}.label": r["output"]["label"] for sid, r in results.items()}
        return {"fields": fields, "route": route}

    def setter(queue: str | None, priority: str, hours: int) -> Callable[[BareState], Any]:
        def set_fields(state: BareState) -> dict[str, Any]:
            label = queue or state["results"]["intent"]["output"]["label"]
            return {"fields": {"queue": label, "priority": priority, "reply_within_hours": hours}}

        return set_fields

    graph: StateGraph[Any] = StateGraph(BareState)
    graph.add_node("triage", wrap(plan))
    graph.add_node("triage.call", wrap(call))
    graph.add_node("triage.verify", wrap(verify))
    graph.add_node("triage.escalate", wrap(escalate))
    graph.add_node("triage.merge", wrap(merge))
    graph.add_node("urgent", wrap(setter(None, "high", 1)))
    graph.add_node("standard", wrap(setter(None, "normal", 24)))
    graph.add_node("review", wrap(setter("manual_review", "normal", 8)))
    graph.add_edge(START, "triage")
    graph.add_conditional_edges("triage", wrap(dispatch), ["triage.call", "triage.merge"])
    graph.add_edge("triage.call", "triage.verify")
    graph.add_edge("triage.verify", "triage.escalate")
    graph.add_conditional_edges("triage.escalate", wrap(dispatch), ["triage.call", "triage.merge"])
    graph.add_conditional_edges(
        "triage.merge",
        wrap(lambda s: s["route"]),
        {"urgent": "urgent", "standard": "standard", "review": "review"},
    )
    for name in ("urgent", "standard", "review"):
        graph.add_edge(name, END)
    return graph


# -- checkpointers ---------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def open_saver(kind: str, state_dir: Path, dsn: str | None) -> AsyncIterator[Any]:
    """The same saver instance serves both graphs of a configuration."""
    if kind == "none":
        yield None
    elif kind == "memory":
        yield InMemorySaver()
    elif kind == "sqlite":
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

        async with AsyncSqliteSaver.from_conn_string(str(state_dir / "bench.sqlite")) as saver:
            yield saver
    elif kind == "postgres":
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        assert dsn is not None
        async with AsyncPostgresSaver.from_conn_string(dsn) as saver:
            await saver.setup()
            yield saver
    else:
        raise ValueError(kind)


# -- measuring -------------------------------------------------------------------------------
async def _block(run: Callable[[str], Awaitable[Any]], texts: list[str]) -> list[float]:
    times = []
    for text in texts:
        start = time.perf_counter()
        await run(text)
        times.append((time.perf_counter() - start) * 1000)
    return times


async def _steps(compiled: Any) -> int:
    """LangGraph supersteps of one run of the bare graph (the same for both graphs)."""
    config = {"configurable": {"thread_id": uuid.uuid4().hex}}
    await compiled.ainvoke({"request": {"text": "count the steps"}}, config)
    return int((await compiled.aget_state(config)).metadata["step"])


async def measure(
    kind: str, durability: str, args: argparse.Namespace, dsn: str | None, state_dir: Path
) -> dict[str, Any]:
    registry = noop_registry()
    spec = inprocess_spec(registry)
    spec = spec.model_copy(
        update={"policies": spec.policies.model_copy(update={"durability": durability})}
    )
    specialists = {"intent": NoopIntent(), "sentiment": NoopSentiment()}
    async with open_saver(kind, state_dir, dsn) as saver:
        options: dict[str, Any] = {"durability": durability} if saver is not None else {}
        steps = await _steps(bare_graph(specialists).compile(checkpointer=InMemorySaver()))

        def runner(compiled: Any) -> Callable[[str], Awaitable[Any]]:
            async def run(text: str) -> Any:
                config = {"configurable": {"thread_id": uuid.uuid4().hex}}
                return await compiled.ainvoke({"request": {"text": text}}, config, **options)

            return run

        checkpointer: str | BaseCheckpointSaver[str] = saver if saver is not None else "none"
        async with Orchestrator(
            spec, checkpointer=checkpointer, registry=registry, frontier=False
        ) as orc:
            paths: dict[str, Callable[[str], Awaitable[Any]]] = {
                "bare": runner(bare_graph(specialists).compile(checkpointer=saver)),
                "bare_async": runner(
                    bare_graph(specialists, coroutines=True).compile(checkpointer=saver)
                ),
                "framework": orc.arun,
            }
            # Warm every path (imports, caches, the SQLite/Postgres tables) outside the timing.
            for i in range(args.warmup):
                for run in paths.values():
                    await run(f"warm {i}")
            medians: dict[str, list[float]] = {name: [] for name in paths}
            for rep in range(args.repeats):
                texts = [f"[{kind}/{durability}/{rep}] message {i}" for i in range(args.runs)]
                # Rotate who goes first, so a drift in machine load hits every path alike.
                names = list(paths)
                for name in names[rep % 3 :] + names[: rep % 3]:
                    medians[name].append(statistics.median(await _block(paths[name], texts)))
    fw = medians["framework"]
    ratios = [f / b for f, b in zip(fw, medians["bare"], strict=True)]
    overheads = [f - b for f, b in zip(fw, medians["bare"], strict=True)]
    return {
        "checkpointer": kind,
        "durability": durability if kind != "none" else "-",
        "steps": steps,
        "framework_ms": spread(fw),
        "bare_ms": spread(medians["bare"]),
        "bare_async_ms": spread(medians["bare_async"]),
        "ratio": spread(ratios),
        "ratio_vs_async": spread([f / b for f, b in zip(fw, medians["bare_async"], strict=True)]),
        "overhead_per_run_ms": spread(overheads),
        "overhead_per_step_ms": spread([o / steps for o in overheads]),
        "overhead_vs_async_per_run_ms": spread(
            [f - b for f, b in zip(fw, medians["bare_async"], strict=True)]
        ),
        "target_met": statistics.median(ratios) <= 1.3,
    }


def configurations(kinds: Sequence[str], with_postgres: bool) -> list[tuple[str, str]]:
    configs = [("none", "-")] if "none" in kinds else []
    for kind in kinds:
        if kind == "none" or (kind == "postgres" and not with_postgres):
            continue
        configs += [(kind, mode) for mode in ("sync", "async", "exit")]
    return configs


async def main(args: argparse.Namespace, dsn: str | None) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as state:
        for kind, durability in configurations(args.checkpointers, dsn is not None):
            row = await measure(kind, durability, args, dsn, Path(state))
            rows.append(row)
            print(
                f"{kind:>8} {row['durability']:>5}: x{fmt_spread(row['ratio'])}",
                flush=True,
            )
    return rows


async def profile(runs: int, kind: str) -> None:
    """Profile the framework path alone, to find its largest costs."""
    from pyinstrument import Profiler

    registry = noop_registry()
    spec = inprocess_spec(registry)
    spec = spec.model_copy(
        update={"policies": spec.policies.model_copy(update={"durability": "exit"})}
    )
    with tempfile.TemporaryDirectory() as state:
        async with (
            open_saver(kind, Path(state), None) as saver,
            Orchestrator(
                spec,
                checkpointer=saver if saver is not None else "none",
                registry=registry,
                frontier=False,
            ) as orc,
        ):
            for i in range(20):
                await orc.arun(f"warm {i}")
            profiler = Profiler(interval=0.0002, async_mode="enabled")
            with profiler:
                for i in range(runs):
                    await orc.arun(f"profiled message {i}")
    print(profiler.output_text(unicode=True, color=False, show_all=False))


def plot(rows: list[dict[str, Any]], target: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    labels = [f"{r['checkpointer']}\n{r['durability']}" for r in rows]
    xs = range(len(rows))
    fig, ax = plt.subplots(figsize=(max(6, len(rows) * 0.9), 4))
    bars = (
        ("bare_ms", "bare"),
        ("bare_async_ms", "bare, coroutines"),
        ("framework_ms", "framework"),
    )
    for offset, (key, label) in zip((-0.27, 0.0, 0.27), bars, strict=True):
        ax.bar([x + offset for x in xs], [r[key]["median"] for r in rows], 0.27, label=label)
    ax.set_xticks(list(xs), labels, fontsize=8)
    ax.set_ylabel("median ms per run")
    ax.set_yscale("log")
    ax.set_title("support_triage with no-op specialists: framework vs bare LangGraph")
    ax.legend()
    fig.tight_layout()
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target


def report(rows: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print_table(
        f"Framework overhead, support_triage with no-op specialists "
        f"({args.runs} runs x {args.repeats} repeats; median [min-max] over repeats)",
        [
            "checkpointer",
            "durability",
            "bare ms",
            "bare async ms",
            "framework ms",
            "ratio",
            "+ms/run",
            "+ms/step",
            "ratio vs async",
            "+ms/run vs async",
        ],
        [
            [
                r["checkpointer"],
                r["durability"],
                fmt_spread(r["bare_ms"]),
                fmt_spread(r["bare_async_ms"]),
                fmt_spread(r["framework_ms"]),
                fmt_spread(r["ratio"]) + ("" if r["target_met"] else " !"),
                fmt_spread(r["overhead_per_run_ms"]),
                fmt_spread(r["overhead_per_step_ms"], digits=3),
                fmt_spread(r["ratio_vs_async"]),
                fmt_spread(r["overhead_vs_async_per_run_ms"]),
            ]
            for r in rows
        ],
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="runs per block")
    parser.add_argument("--repeats", type=int, default=5, help="blocks per configuration")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument(
        "--checkpointers",
        nargs="+",
        default=["none", "memory", "sqlite", "postgres"],
        choices=["none", "memory", "sqlite", "postgres"],
    )
    parser.add_argument("--postgres", metavar="DSN", help="use this PostgreSQL database")
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--json", metavar="PATH", help="JSON output (default: results/)")
    parser.add_argument("--plot", metavar="PATH", help="PNG output (default: results/)")
    parser.add_argument("--profile", type=int, metavar="RUNS", help="profile instead")
    parser.add_argument("--profile-checkpointer", default="memory")
    args = parser.parse_args()
    configure_logging(level="WARNING")
    if args.profile:
        asyncio.run(profile(args.profile, args.profile_checkpointer))
        raise SystemExit(0)
    with contextlib.ExitStack() as stack:
        dsn = args.postgres
        if dsn is None and not args.no_postgres and "postgres" in args.checkpointers:
            dsn = stack.enter_context(throwaway_postgres())
        rows = asyncio.run(main(args, dsn))
    report(rows, args)
    meta = {"machine": machine(), "runs": args.runs, "repeats": args.repeats}
    out = write_json("overhead", {**meta, "rows": rows}, args.json)
    png = plot(rows, Path(args.plot) if args.plot else out.with_suffix(".png"))
    print(f"JSON: {out}" + (f"  PNG: {png}" if png else ""))
