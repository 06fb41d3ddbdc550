"""The SDK entry point: load a graph, run it, stream it, resume it."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Coroutine,
    Iterable,
    Mapping,
)
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar, cast

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from orchestrator._checkpointers import CheckpointerKind, open_checkpointer
from orchestrator._contracts import RunEvent, RunRequest, RunResult, ToolInfo
from orchestrator._errors import ConfigurationError, RunError
from orchestrator._learner import (
    BackgroundLearner,
    LearningEvent,
    learning_plans,
    waiting_labels,
)
from orchestrator._leases import (
    LEASES_FILE,
    MemoryThreadLeases,
    SqliteThreadLeases,
    ThreadLeases,
)
from orchestrator._ledger import PriceTable
from orchestrator._logging import get_logger
from orchestrator._postgres import database_url
from orchestrator._recorder import TraceRecorder
from orchestrator._result import build_run_result
from orchestrator._schemas import output_problems
from orchestrator._state import RunState, run_finished
from orchestrator._sync_loop import LoopThread
from orchestrator._traces import TraceStore, open_trace_store
from orchestrator._tracing import enable_tracing, traced_run, tracing_installed
from orchestrator.agents._frontier import FrontierModel, frontier_from_spec
from orchestrator.agents._planner import LocalPlanner, Planner
from orchestrator.agents.answerer import FrontierAnswerer
from orchestrator.agents.composer import Composer
from orchestrator.agents.frontier_planner import FrontierPlanner
from orchestrator.graph.bindings import specialist_for_binding
from orchestrator.graph.compiler import build_state_graph
from orchestrator.graph.spec import ComposeNodeSpec, GraphSpec, SpecialistsNodeSpec
from orchestrator.specialists._registry import SpecialistRegistry, default_registry
from orchestrator.steps import StepContext
from orchestrator.tools._config import MCPServerConfig
from orchestrator.tools._toolset import InProcessToolset, Toolset
from orchestrator.tools.mcp_toolset import CompositeToolset, MCPToolset

__all__ = ["DEFAULT_STATE_DIR", "Orchestrator"]

T = TypeVar("T")
DEFAULT_STATE_DIR = Path(".orchestrator")
log = get_logger(__name__)

_EVENT_KINDS = {"plan": "planned", "call": "called", "verify": "verified", "merge": "merged"}


def _refuse_in_loop(call: str, instead: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise ConfigurationError(
        f"{call} was called inside a running event loop; use {instead} there instead"
    )


def _close_kept(loop: LoopThread, kept: list[AsyncExitStack]) -> None:
    """Close what an orchestrator's blocking calls kept open, then its loop (on close(),
    when the orchestrator is collected, or at the interpreter's exit). Holds no reference
    to the orchestrator, so that it can be collected."""

    async def closing() -> None:
        while kept:
            await kept.pop().aclose()

    loop.stop(closing)


class Orchestrator:
    """Runs one graph file.

    The blocking calls (:meth:`run`, :meth:`resume`) open the checkpointer, the MCP servers
    and the models on the first call and keep them for the next ones, on an event loop in a
    thread of this orchestrator's own, until :meth:`close` (or ``with``, or the
    interpreter's exit). The async calls open and close them per call, unless the
    orchestrator is open as an async context manager::

        with Orchestrator.from_file("graphs/support_triage.yaml") as orc:
            result = orc.run("I was charged twice and nobody answers my emails")

        async with Orchestrator.from_file(path) as orc:
            results = await asyncio.gather(*(orc.arun(text) for text in texts))

    Blocking calls from several threads at once run concurrently on that one loop, as
    ``asyncio.gather`` over :meth:`arun` would. One orchestrator is used either blocking or
    async at a time: :meth:`close` it before switching.
    """

    def __init__(
        self,
        spec: GraphSpec,
        *,
        checkpointer: CheckpointerKind | BaseCheckpointSaver[str] = "sqlite",
        state_dir: str | Path = DEFAULT_STATE_DIR,
        registry: SpecialistRegistry | None = None,
        toolset: Toolset | None = None,
        planner: Planner | None = None,
        inprocess: bool = False,
        base_dir: str | Path | None = None,
        frontier: FrontierModel | bool | None = True,
        prices: str | Path | PriceTable | None = None,
        leases: ThreadLeases | None = None,
        lease_wait_s: float = 0.0,
        traces: bool | TraceStore | None = None,
        tracing: bool | None = None,
        database_url: str | None = None,
    ) -> None:
        """
        Args:
            spec: the graph, from :meth:`GraphSpec.from_file` and friends.
            checkpointer: ``sqlite`` (default, resumable), ``postgres`` (resumable by any
                worker of one database), ``memory``, ``none`` or a LangGraph checkpointer
                instance.
            state_dir: where the SQLite checkpoints live.
            registry: where specialist names are looked up (default: the global registry).
            toolset: use this toolset instead of the one the graph's bindings describe.
            planner: the planner (default: :class:`LocalPlanner`).
            inprocess: run every registered specialist in this process, even those the graph
                reaches over MCP (third-party MCP tools still go over MCP).
            base_dir: directory that relative paths in the graph (a server's ``cwd``) are
                relative to; defaults to the graph file's directory.
            frontier: the frontier model; ``True`` (default) builds it from the graph's
                ``frontier:`` section when its API key is set, ``False``/``None`` never uses one.
            prices: the price table for the cost ledger (default: the shipped one).
            leases: where thread leases and start requests are kept (default: a
                ``threads.sqlite`` next to the SQLite checkpoints, else this process only).
            lease_wait_s: how long a run of a thread that another runner holds waits for
                it before :class:`ThreadBusyError` (default: refuse at once).
            traces: where finished subtasks are recorded for distillation (see
                ``orchestrator traces``): ``None`` (default) keeps them in
                ``state_dir/traces.sqlite`` when the run state is kept on disk (the sqlite
                checkpointer) or a binding learns; ``True`` always there, ``False`` never,
                or a :class:`TraceStore` of your own. Bindings choose with ``record``.
                With the postgres checkpointer, leases and traces are kept in its database.
            tracing: OpenTelemetry spans of each run (see ``docs/observability.md``):
                ``True`` installs a TracerProvider exporting OTLP over HTTP as the
                ``OTEL_*`` variables say (needs the ``otel`` extra) unless the application
                installed one; ``None`` (default) traces only when the application installed
                one; ``False`` never.
            database_url: the PostgreSQL database of the ``postgres`` checkpointer
                (default: the ``ORCHESTRATOR_DATABASE_URL`` variable).
        """
        self.spec = spec
        self._inprocess = inprocess
        self._frontier_arg = frontier
        self._prices = prices if isinstance(prices, PriceTable) else PriceTable.load(prices)
        self._base_dir = Path(base_dir) if base_dir is not None else None
        self.state_dir = Path(state_dir)
        self._checkpointer = checkpointer
        self._database_url = database_url
        self._memory = InMemorySaver() if checkpointer == "memory" else None
        self._leases_arg = leases
        self._lease_wait_s = lease_wait_s
        # Without a store shared across processes, the leases of this process are enough.
        self._local_leases = MemoryThreadLeases()
        self._leases: ThreadLeases | None = None
        self._registry = registry or default_registry()
        self._toolset = toolset
        self._planner: Planner = planner or LocalPlanner()
        self._traces_arg = traces
        self._tracing = tracing
        if tracing:
            enable_tracing()  # here, so that a missing extra fails before anything runs
        self._routes: dict[str, tuple[str, str]] = {}
        self._stack: AsyncExitStack | None = None
        self._graph: Any = None
        self._recorder: TraceRecorder | None = None
        self._learner: BackgroundLearner | None = None
        self._learned = 0  # the learner's generation the compiled graph was built at
        self._open: tuple[Toolset, Any] | None = None
        # The blocking API's loop and what it keeps open (see `_blocking`).
        self._sync_loop: LoopThread | None = None
        self._sync_lock = threading.Lock()
        self._sync_opening: asyncio.Lock | None = None
        self._kept: list[AsyncExitStack] = []
        self._finalizer: weakref.finalize[Any, Any] | None = None

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> Orchestrator:
        registry = kwargs.get("registry")
        kwargs.setdefault("base_dir", Path(path).resolve().parent)
        return cls(GraphSpec.from_file(path, registry=registry), **kwargs)

    @classmethod
    def from_text(cls, text: str, **kwargs: Any) -> Orchestrator:
        registry = kwargs.get("registry")
        return cls(GraphSpec.from_text(text, registry=registry), **kwargs)

    @property
    def _may_pause(self) -> bool:
        """Whether a run can stop for a person (only a ``human`` escalation rung does)."""
        spec = self.spec
        return any(r.kind == "human" for key in spec.specialists for r in spec.ladder(key))

    # -- resources --------------------------------------------------------------------------
    def _default_toolset(self) -> Toolset:
        """In-process specialists and MCP servers, as the graph's bindings say."""
        local: dict[str, Any] = {}
        remote: dict[str, tuple[str, str]] = {}
        registered = set(self._registry.names())
        for key, binding in self.spec.specialists.items():
            name = self.spec.specialist_name(key)
            if binding.via == "inprocess" or (self._inprocess and name in registered):
                local[key] = specialist_for_binding(self._registry, name, binding)
            else:
                remote[key] = (binding.via, self.spec.tool_name(key))
        self._routes = dict(remote)
        if not remote:
            return InProcessToolset(local)
        # The tools layer has its own server configuration: the file's spec converts to it.
        servers = {
            name: MCPServerConfig.model_validate(self._served_traced(server.model_dump()))
            for name, server in self.spec.servers.items()
        }
        mcp = MCPToolset(servers, remote, base_dir=self._base_dir)
        if not local:
            return mcp
        inproc = InProcessToolset(local)
        return CompositeToolset({**dict.fromkeys(local, inproc), **dict.fromkeys(remote, mcp)})

    def _served_traced(self, server: dict[str, Any]) -> dict[str, Any]:
        """With ``tracing=True``, this installation's own ``orchestrator serve`` exports its
        spans too (``--otel``), so the run's trace holds what its specialists did."""
        args = list(server.get("args") or [])
        own = server.get("command") == "orchestrator" and "serve" in args
        if self._tracing and own and "--otel" not in args:
            return {**server, "args": [*args, "--otel"]}
        return server

    async def __aenter__(self) -> Orchestrator:
        self._check_loop()
        if self._stack is not None:
            raise ConfigurationError("this Orchestrator is already open")
        stack = AsyncExitStack()
        try:
            saver = await stack.enter_async_context(
                open_checkpointer(
                    self._checkpointer, self.state_dir, self._memory, self._database_url
                )
            )
            self._leases = await asyncio.to_thread(self._open_leases, saver)
            if self._leases is not None and self._leases is not self._leases_arg:
                stack.push_async_callback(self._leases.aclose)
            toolset = self._toolset or self._default_toolset()
            if self._toolset is None:
                stack.push_async_callback(toolset.aclose)
            await toolset.warm_up()
            await asyncio.to_thread(self._open_recording, stack)  # SQLite files
            self._open = (toolset, saver)
            await self._build()
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    def _open_leases(self, saver: BaseCheckpointSaver[str] | None) -> ThreadLeases | None:
        """The lease store for this session of runs: none when nothing is checkpointed (no
        thread can be resumed), a file next to the SQLite checkpoints, else this process's."""
        if self._leases_arg is not None:
            return self._leases_arg
        if saver is None:
            return None
        if self._checkpointer == "sqlite":
            return SqliteThreadLeases(self.state_dir / LEASES_FILE)
        if self._checkpointer == "postgres":
            from orchestrator._leases_postgres import PostgresThreadLeases

            return PostgresThreadLeases(saver.conn)  # type: ignore[attr-defined]
        return self._local_leases

    async def _build(self) -> None:
        """Compile the graph over the open toolset; run again when the background learner
        promoted a version, so that verification reads the new thresholds."""
        assert self._open is not None
        toolset, saver = self._open
        tools = await self._tool_infos(toolset)
        ctx = self._context(toolset, tools)
        self._graph = build_state_graph(ctx).compile(checkpointer=saver)
        self._learned = self._learner.generation if self._learner else 0

    def _wants_traces(self) -> bool:
        if self._traces_arg is not None and not isinstance(self._traces_arg, bool):
            return True
        if self._traces_arg is not None:
            return self._traces_arg
        learns = any(b.learn is not None for b in self.spec.specialists.values())
        return learns or self._checkpointer in ("sqlite", "postgres")

    def _open_recording(self, stack: AsyncExitStack) -> None:
        """The trace store, its recorder, and the background learner (when a binding learns)."""
        self._recorder = self._learner = None
        if not self._wants_traces():
            if any(b.learn is not None for b in self.spec.specialists.values()):
                raise ConfigurationError(
                    "a binding has `learn`, which needs the trace store that traces=False "
                    "switches off"
                )
            return
        store: TraceStore
        if isinstance(self._traces_arg, bool) or self._traces_arg is None:
            if self._checkpointer == "postgres":
                from orchestrator._traces_postgres import PostgresTraceStore

                store = PostgresTraceStore(database_url(self._database_url))
            else:
                store = open_trace_store(self.state_dir)
            stack.callback(store.close)
        else:
            store = self._traces_arg
        plans = learning_plans(self.spec.specialists)
        if plans:
            self._learner = BackgroundLearner(
                plans,
                state_dir=self.state_dir,
                counted={plan.binding: waiting_labels(plan, store) for plan in plans},
                database_url=(
                    database_url(self._database_url)
                    if self._checkpointer == "postgres" and self._traces_arg in (True, None)
                    else None
                ),
            )
        recorder = TraceRecorder(
            store, self.spec.specialists, self._learner.taught if self._learner else None
        )
        stack.callback(recorder.close)
        self._recorder = recorder

    @property
    def learning_events(self) -> list[LearningEvent]:
        """What the background learner did while this orchestrator was open (distillations
        started, promoted, kept, skipped, failed)."""
        return list(self._learner.events) if self._learner else []

    async def acompile(self, checkpointer: BaseCheckpointSaver[str] | None = None) -> Any:
        """The compiled LangGraph graph on this orchestrator's toolset, for hosts that run
        graphs themselves (``langgraph dev``, LangGraph Platform) with their own checkpointer.
        The toolset stays open for the life of the process. What reads files (specialists'
        options and label sets) runs in a thread: the host's event loop must not block."""
        toolset = self._toolset
        if toolset is None:
            toolset = await asyncio.to_thread(self._default_toolset)
        await toolset.warm_up()
        tools = await self._tool_infos(toolset)
        ctx = await asyncio.to_thread(self._context, toolset, tools)
        return build_state_graph(ctx).compile(checkpointer=checkpointer, name=self.spec.name)

    def _frontier(self) -> FrontierModel | None:
        if isinstance(self._frontier_arg, FrontierModel):
            return self._frontier_arg
        if self._frontier_arg is True and self.spec.frontier is not None:
            return frontier_from_spec(self.spec.frontier)
        return None

    def _context(self, toolset: Toolset, tools: dict[str, ToolInfo]) -> StepContext:
        model = self._frontier()
        if model is None:
            for name, node in self.spec.nodes.items():
                if (
                    isinstance(node, SpecialistsNodeSpec)
                    and node.planner == "frontier"
                    and not node.subtasks
                ):
                    key = self.spec.frontier.key_env() if self.spec.frontier else "an API key"
                    raise ConfigurationError(
                        f"node {name!r} is planned by the frontier model and declares no "
                        f"subtasks to fall back on, but {key} is not set"
                    )
        return StepContext(
            spec=self.spec,
            toolset=toolset,
            planner=self._planner,
            tools=tools,
            frontier_planner=FrontierPlanner(model, fallback=LocalPlanner()),
            answerer=FrontierAnswerer(model) if model else None,
            composer=Composer(model) if model else None,
            verifiers=self._verifiers(),
            recorder=self._recorder,
            mcp_routes=self._routes,
            traced=self._traced(),
        )

    def _traced(self) -> bool:
        """Whether runs start spans: asked for, or a TracerProvider is installed."""
        return self._tracing is not False and tracing_installed()

    def _verifiers(self) -> dict[str, Any]:
        """The output checks of every binding whose registered specialist has its own
        (``Specialist.verify``); they run here whether the specialist runs in process or
        behind an MCP server."""
        registered = set(self._registry.names())
        checks: dict[str, Any] = {}
        for key, binding in self.spec.specialists.items():
            name = self.spec.specialist_name(key)
            if name in registered and self._registry.get(name).has_verify():
                checks[key] = self._registry.create(name, binding.options).verify_json
        return checks

    async def _tool_infos(self, toolset: Toolset) -> dict[str, ToolInfo]:
        published = {t.name: t for t in await toolset.list_tools()}
        tools: dict[str, ToolInfo] = {}
        for key, binding in self.spec.specialists.items():
            info = published.get(key)
            if info is None:
                raise ConfigurationError(
                    f"the toolset has no tool {key!r} for specialist binding {key!r}; "
                    f"it has: {', '.join(sorted(published)) or 'none'}"
                )
            if binding.description:
                info = info.model_copy(update={"description": binding.description})
            tools[key] = info
        return tools

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        stack, self._stack, self._graph, self._open = self._stack, None, None, None
        self._leases = None
        if stack is not None:
            await stack.aclose()

    # -- the blocking API's loop ------------------------------------------------------------
    def _blocking(self, call: Callable[[], Coroutine[Any, Any, T]], name: str, instead: str) -> T:
        """Run ``call()`` on this orchestrator's own loop (started on first use), where the
        first run opens the toolset and checkpointer and later runs find them open."""
        _refuse_in_loop(f"Orchestrator.{name}", instead)
        with self._sync_lock:
            if self._stack is not None and self._sync_loop is None:
                raise ConfigurationError(
                    f"Orchestrator.{name} was called while it is open in `async with`; "
                    f"use {instead} there"
                )
            if self._sync_loop is None or not self._sync_loop.alive:
                loop = LoopThread(f"orchestrator-{self.spec.name}")
                self._sync_loop, self._sync_opening, self._kept = loop, asyncio.Lock(), []
                self._finalizer = weakref.finalize(self, _close_kept, loop, self._kept)
            loop = self._sync_loop
        return loop.call(call())

    async def _keep_open(self) -> None:
        """Open on the blocking API's loop, once, and keep it open (see `_blocking`)."""
        assert self._sync_opening is not None
        async with self._sync_opening:
            if self._stack is None:
                await self.__aenter__()
                assert self._stack is not None
                self._kept.append(self._stack)

    def _check_loop(self) -> None:
        """Refuse async use of an orchestrator whose blocking calls keep it open: its
        sessions belong to another event loop."""
        loop = self._sync_loop
        if loop is not None and loop.alive and not loop.in_loop():
            raise ConfigurationError(
                "this Orchestrator keeps its servers open for its blocking calls (run, "
                "resume); call close() before using it with await, or keep to one style"
            )

    def __enter__(self) -> Orchestrator:
        self._blocking(self._keep_open, "__enter__", "`async with Orchestrator(...)`")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the servers, models and checkpointer that blocking calls kept open, and
        their loop's thread. The orchestrator can run again afterwards (it reopens them)."""
        with self._sync_lock:
            finalizer, self._finalizer, self._sync_loop = self._finalizer, None, None
            if finalizer is not None:
                finalizer()
                self._stack, self._graph, self._open, self._leases = None, None, None, None

    @asynccontextmanager
    async def _opened(self) -> AsyncIterator[Any]:
        self._check_loop()
        if self._stack is None and self._sync_loop is not None:
            await self._keep_open()
        if self._stack is not None:
            if self._learner is not None and self._learner.generation != self._learned:
                await self._build()  # a version was promoted since: serve it
            yield self._graph
            return
        async with self:
            yield self._graph

    # -- running ----------------------------------------------------------------------------
    def astream(
        self,
        request: str | RunRequest | None = None,
        *,
        thread_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        review: Mapping[str, Any] | None = None,
    ) -> AsyncGenerator[RunEvent, None]:
        """Run (or resume) and yield progress events; the last one carries the result.

        With a ``thread_id`` whose run did not finish (a crash, a killed process), the run
        resumes from its last checkpoint: finished subtasks are not run again. Pass
        ``request=None`` to resume without repeating the request. A run paused for a person
        (status ``awaiting_human``) resumes with ``review``: subtask id -> decision, see
        :meth:`aresume`.
        """
        events = self._astream(request, thread_id=thread_id, metadata=metadata, review=review)
        return traced_run(events, self.spec.name) if self._traced() else events

    async def _astream(
        self,
        request: str | RunRequest | None,
        *,
        thread_id: str | None,
        metadata: Mapping[str, Any] | None,
        review: Mapping[str, Any] | None,
    ) -> AsyncGenerator[RunEvent, None]:
        tid = thread_id or uuid.uuid4().hex
        if isinstance(request, str):
            request = RunRequest(text=request, metadata=dict(metadata or {}))
        if thread_id is not None and self._stack is None:
            # Showing a finished run reads its checkpoint: nothing is started or loaded.
            stored = await self._finished_state(tid, request)
            if stored is not None:
                if review is not None:
                    raise ConfigurationError(f"thread {tid!r} is not waiting for a review")
                result = self._result(tid, stored, total_ms=0.0, pending=[])
                yield RunEvent(kind="finished", thread_id=tid, elapsed_ms=0.0, result=result)
                return
        opening = time.perf_counter()
        # One thread, one runner: the lease is held from the checkpoint read to the result.
        async with self._opened() as graph, self._thread_lease(tid, request):
            # Loading models when this call opened the orchestrator is reported apart from
            # the run itself, so that run timings mean the same in a server and a script.
            startup_ms = (time.perf_counter() - opening) * 1000
            start = time.perf_counter()
            config: dict[str, Any] = {
                "configurable": {"thread_id": tid},
                "recursion_limit": self.spec.policies.max_steps * 4,
            }
            mode, graph_input = await self._input_for(
                graph, config, request, metadata, tid, fresh=thread_id is None
            )
            if review is not None and mode != "review":
                raise ConfigurationError(f"thread {tid!r} is not waiting for a review")
            if mode == "review":
                if review is None:
                    raise ConfigurationError(
                        f"thread {tid!r} waits for a person: resume it with a review (CLI: "
                        "orchestrator resume GRAPH --thread ID --approve | --reject | "
                        "--answer KEY=VALUE)"
                    )
                assert graph_input is not None
                resume_with: Any = Command(resume=_check_review(review, graph_input["pending"]))
                graph_input = resume_with

            def event(kind: str, node: str = "", **detail: Any) -> RunEvent:
                elapsed = (time.perf_counter() - start) * 1000
                return RunEvent.model_validate(
                    {
                        "kind": kind,
                        "node": node,
                        "thread_id": tid,
                        "elapsed_ms": elapsed,
                        "detail": detail,
                    }
                )

            final: RunState | None = None
            if mode == "done":
                final = cast(RunState, graph_input)
            else:
                yield event("started" if mode == "start" else "resumed")
                options: dict[str, Any] = {"stream_mode": ["updates", "values"]}
                if graph.checkpointer is not None:
                    options["durability"] = self.spec.policies.durability
                async for kind, chunk in graph.astream(
                    None if mode == "resume" else graph_input, config, **options
                ):
                    if kind == "values":
                        final = chunk
                        continue
                    for node_name, update in chunk.items():
                        for progress in _progress(self.spec, node_name, update or {}):
                            yield event(*progress[:2], **progress[2])
                if final is None or "request" not in final:
                    final = (await graph.aget_state(config)).values
            assert final is not None
            # Only a review node pauses a run: without one, skip the checkpoint read.
            pending = await _pending_review(graph, config) if self._may_pause else []
            if mode == "resume" and not pending and not run_finished(final):
                # Never report a run that did not end as a result (its fields would be
                # missing, with status ok): the positive marker decides.
                raise RunError(
                    f"thread {tid!r} stopped before it finished and resuming it ran nothing "
                    "further; its checkpoint is incomplete: run the request again under a "
                    "new thread id"
                )
            if pending:
                yield event("awaiting_human", pending=pending)
            if self._recorder is not None:
                # A finished run's traces are on disk before it says so.
                await asyncio.to_thread(self._recorder.flush)
            result = self._result(
                tid,
                final,
                total_ms=(time.perf_counter() - start) * 1000,
                pending=[p["subtask_id"] for p in pending],
                startup_ms=startup_ms if startup_ms >= 1.0 else None,
            )
            log.info(
                "run finished",
                graph=self.spec.name,
                thread_id=tid,
                status=result.status,
                ms=round(result.timings_ms["total"], 1),
            )
            finished = event("finished")
            yield finished.model_copy(update={"result": result})

    def _result(
        self,
        tid: str,
        state: RunState | dict[str, Any],
        *,
        total_ms: float,
        pending: list[str],
        startup_ms: float | None = None,
    ) -> RunResult:
        return build_run_result(
            self.spec.name,
            tid,
            cast(RunState, state),
            planner=self._planner.name,
            total_ms=total_ms,
            startup_ms=startup_ms,
            prices=self._prices,
            frontier_model=self.spec.frontier.model if self.spec.frontier else None,
            pending_review=pending,
        )

    @asynccontextmanager
    async def _thread_lease(self, tid: str, request: RunRequest | None) -> AsyncIterator[None]:
        if self._leases is None:
            yield
            return
        # The request is kept with the lease before any step runs: a run killed before its
        # first checkpoint starts again from it.
        start = request.model_dump(mode="json") if request is not None else None
        async with self._leases.hold(tid, request=start, wait_s=self._lease_wait_s):
            yield

    async def _input_for(
        self,
        graph: Any,
        config: dict[str, Any],
        request: str | RunRequest | None,
        metadata: Mapping[str, Any] | None,
        tid: str,
        *,
        fresh: bool = False,
    ) -> tuple[str, dict[str, Any] | None]:
        """("start", input), ("resume", None) or ("done", stored state) for this thread.

        A thread holds one run. Asking again for a finished thread's request returns its
        stored result without running anything; another request on it is refused. A
        ``fresh`` thread id (one this call just made up) has nothing stored, so the
        checkpoint read is skipped.
        """
        stored: dict[str, Any] = {}
        unfinished = False
        given = request.text if isinstance(request, RunRequest) else request
        if graph.checkpointer is not None and not fresh:
            snapshot = await graph.aget_state(config)
            stored, unfinished = dict(snapshot.values or {}), bool(snapshot.next)
        if "request" not in stored and not fresh and self._leases is not None:
            # A thread whose process died before its first checkpoint: only the lease store
            # knows its request.
            started = await self._leases.start_request(tid)
            if started is not None and given is None:
                log.warning("running again a run killed before its first step", thread_id=tid)
                return "start", {"request": started}
            if started is not None and given != started.get("text"):
                raise ConfigurationError(
                    f"thread {tid!r} was started for another request ({started.get('text')!r}); "
                    "use a new thread id for a new request"
                )
        if "request" in stored:
            stored_text = stored["request"].get("text")
            if unfinished and given is None:
                pending = await _pending_review(graph, config)
                if pending:
                    return "review", {"pending": pending}
            if given is not None and given != stored_text:
                state = "an unfinished" if unfinished else "a finished"
                raise ConfigurationError(
                    f"thread {tid!r} holds {state} run for another request ({stored_text!r}); "
                    "use a new thread id for a new request"
                )
            if unfinished:
                log.info("resuming run", thread_id=tid)
                return "resume", None
            if run_finished(stored):
                return "done", stored
            if not stored.get("path"):
                # No node ran: the checkpoint holds only the input (a process killed while
                # writing its first steps). The run starts again from its stored request.
                log.warning("running again a run that never started", thread_id=tid)
                return "start", {"request": stored["request"]}
            # LangGraph's `next` is also empty when every task of the last saved step had
            # finished (their writes saved) but the process died before the next step's
            # checkpoint: resuming applies those writes and goes on, running nothing twice.
            log.info("resuming run after its last finished step", thread_id=tid)
            return "resume", None
        if request is None:
            raise ConfigurationError(
                f"thread {tid!r} has no run to resume; pass a request to start one"
            )
        if isinstance(request, str):
            request = RunRequest(text=request, metadata=dict(metadata or {}))
        return "start", {"request": request.model_dump(mode="json")}

    async def arun(
        self,
        request: str | RunRequest | None = None,
        *,
        thread_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> RunResult:
        """Run the graph on one request (or resume ``thread_id``) and return the result."""
        result: RunResult | None = None
        async for event in self.astream(request, thread_id=thread_id, metadata=metadata):
            result = event.result or result
        assert result is not None
        return result

    def run(
        self,
        request: str | RunRequest | None = None,
        *,
        thread_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> RunResult:
        """Blocking form of :meth:`arun`; refuses to run inside an event loop. The servers
        and models stay open for the next call, until :meth:`close`."""
        return self._blocking(
            lambda: self.arun(request, thread_id=thread_id, metadata=metadata),
            "run()",
            "`await orchestrator.arun(...)`",
        )

    async def pending_review(self, thread_id: str) -> list[dict[str, Any]]:
        """What a paused thread waits on a person for: subtask, input, output, reason (read
        from the checkpoints alone: no server started, no model loaded)."""
        async with self._stored() as graph:
            return await _pending_review(graph, {"configurable": {"thread_id": thread_id}})

    @asynccontextmanager
    async def _stored(self) -> AsyncIterator[Any]:
        """The graph over the checkpointer only, to read threads: the open one when this
        orchestrator is open, else one compiled without tools."""
        self._check_loop()
        if self._stack is not None:
            yield self._graph
            return
        async with open_checkpointer(
            self._checkpointer, self.state_dir, self._memory, self._database_url
        ) as saver:
            bare = StepContext(
                spec=self.spec, toolset=InProcessToolset({}), planner=self._planner, tools={}
            )
            yield build_state_graph(bare).compile(checkpointer=saver)

    async def _finished_state(
        self, tid: str, request: str | RunRequest | None
    ) -> dict[str, Any] | None:
        """The stored state of `tid` when its run has finished (and was for `request`, when
        one is given), read without opening the toolset; else None."""
        if self._checkpointer == "none":
            return None
        async with self._stored() as graph:
            if graph.checkpointer is None:
                return None
            snapshot = await graph.aget_state({"configurable": {"thread_id": tid}})
        values = dict(snapshot.values or {})
        given = request.text if isinstance(request, RunRequest) else request
        if "request" not in values or snapshot.next or not run_finished(values):
            # Unfinished, never started, or stopped between a step's writes and the next
            # checkpoint (also an empty `next`): the full path below runs it.
            return None
        if given is not None and given != values["request"].get("text"):
            return None  # the full path below refuses it with the reason
        return values

    async def afinished(self, thread_ids: Iterable[str]) -> dict[str, RunResult]:
        """The results of those threads whose runs have finished, read from the checkpoints
        alone (nothing runs, no server starts; unfinished and unknown threads are left out)."""
        found: dict[str, RunResult] = {}
        async with self._stored() as graph:
            if graph.checkpointer is None:
                return found
            for tid in thread_ids:
                snapshot = await graph.aget_state({"configurable": {"thread_id": tid}})
                values = dict(snapshot.values or {})
                if "request" in values and not snapshot.next and run_finished(values):
                    found[tid] = self._result(tid, values, total_ms=0.0, pending=[])
        return found

    async def aresume(
        self, thread_id: str, *, review: Mapping[str, Any] | None = None
    ) -> RunResult:
        """Resume a thread: after a crash, or after a pause for a person.

        ``review`` answers a pause: subtask id -> ``{"action": "approve"}`` (accept the
        specialist's answer), ``{"action": "reject"}`` (leave it unverified) or
        ``{"action": "answer", "output": {...}}`` (the correct output, checked against the
        specialist's schema and labels). ``{"*": decision}`` applies to every pending subtask.
        """
        result: RunResult | None = None
        async for event in self.astream(None, thread_id=thread_id, review=review):
            result = event.result or result
        assert result is not None
        return result

    def resume(self, thread_id: str, *, review: Mapping[str, Any] | None = None) -> RunResult:
        """Blocking form of :meth:`aresume` (the servers stay open, as for :meth:`run`)."""
        return self._blocking(
            lambda: self.aresume(thread_id, review=review),
            "resume()",
            "`await orchestrator.aresume(...)`",
        )


async def _pending_review(graph: Any, config: dict[str, Any]) -> list[dict[str, Any]]:
    """The items a paused run waits on a person for (empty when it is not paused)."""
    if graph.checkpointer is None:
        return []
    snapshot = await graph.aget_state(config)
    items: list[dict[str, Any]] = []
    for task in snapshot.tasks:
        for pause in getattr(task, "interrupts", ()):
            value = getattr(pause, "value", None)
            if isinstance(value, dict):
                items.extend(value.get("pending", []))
    return items


def complete_answer(answer: Any, item: Mapping[str, Any]) -> Any:
    """A person's answer completed from the specialist's own output: the fields the person
    gave win, the others are the specialist's. A ranked list of labels puts the person's
    label first (with score 1), and an ``accepted`` flag becomes true."""
    theirs = item.get("output")
    if not isinstance(answer, dict) or not isinstance(theirs, dict):
        return answer
    completed = {**theirs, **answer}
    label = answer.get("label")
    ranked = completed.get("ranked")
    if label is not None and "ranked" not in answer and isinstance(ranked, list):
        rest = [r for r in ranked if not (isinstance(r, dict) and r.get("label") == label)]
        completed["ranked"] = [{"label": label, "score": 1.0}, *rest][: len(ranked) or 1]
    if "accepted" in theirs and "accepted" not in answer:
        completed["accepted"] = True
    return completed


def _check_review(review: Mapping[str, Any], pending: list[dict[str, Any]]) -> dict[str, Any]:
    """Expand and check a review before the run resumes with it: a bad answer is refused
    here, with what to fix, instead of being written into the run."""
    decisions: dict[str, Any] = {}
    for item in pending:
        sid = item["subtask_id"]
        decision = review.get(sid, review.get("*"))
        if decision is None:
            raise ConfigurationError(
                f"the review has no decision for subtask {sid!r} (pending: "
                f"{', '.join(p['subtask_id'] for p in pending)})"
            )
        action = decision.get("action")
        if action not in ("approve", "reject", "answer"):
            raise ConfigurationError(f"{sid}: action must be approve, reject or answer")
        if action == "answer":
            output = complete_answer(decision.get("output"), item)
            decision = {**decision, "output": output}
            problem = output_problems(
                output,
                ToolInfo(
                    name=item["specialist"],
                    description="",
                    input_schema={},
                    output_schema=item.get("output_schema") or {},
                    labels=item.get("labels"),
                ),
            )
            if problem:
                raise ConfigurationError(
                    f"{sid}: the answer does not fit the specialist: {problem}"
                )
        decisions[sid] = dict(decision)
    return decisions


def _progress(
    spec: GraphSpec, node_name: str, update: dict[str, Any]
) -> list[tuple[str, str, dict[str, Any]]]:
    events: list[tuple[str, str, dict[str, Any]]] = []
    node, _, kind = node_name.partition(".")
    if kind in ("escalate", "review"):
        # Each ladder walked (and each person's decision): which rungs, and what came of it.
        for sid, record in update.get("escalations", {}).items():
            events.append(
                (
                    "escalated",
                    node,
                    {
                        "subtask": sid,
                        "outcome": record["outcome"],
                        "resolved_by": record.get("resolved_by"),
                        "rungs": [
                            {"rung": s["rung"], "passed": s["passed"], "detail": s["detail"]}
                            for s in record.get("steps", [])
                        ],
                    },
                )
            )
        return events
    if not kind:
        if "plans" in update:
            plan = update["plans"][node]
            events.append(
                (
                    "planned",
                    node,
                    {
                        "subtasks": [s["id"] for s in plan["subtasks"]],
                        "skipped": plan.get("skipped", {}),
                    },
                )
            )
        elif "fields" in update:
            composed = isinstance(spec.nodes.get(node), ComposeNodeSpec)
            events.append(
                ("composed" if composed else "set", node, {"fields": sorted(update["fields"])})
            )
        return events
    if kind == "call":
        for sid, result in update.get("results", {}).items():
            events.append(
                (
                    "called",
                    node,
                    {
                        "subtask": sid,
                        "ok": result["ok"],
                        "confidence": result.get("confidence"),
                        "latency_ms": result["latency_ms"],
                        "error": result.get("error"),
                    },
                )
            )
    elif kind == "verify":
        for sid, verdict in update.get("verdicts", {}).items():
            events.append(
                (
                    "verified",
                    node,
                    {"subtask": sid, "passed": verdict["passed"], "reasons": verdict["reasons"]},
                )
            )
    elif kind == "merge":
        decision = (update.get("decisions") or [{}])[-1]
        events.append(
            (
                "merged",
                node,
                {"fields": sorted(update.get("fields", {})), "next": decision.get("to")},
            )
        )
    return events
