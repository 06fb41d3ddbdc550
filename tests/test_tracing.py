"""OpenTelemetry spans: the tree of a run in memory, a served specialist's spans joining it
across a stdio MCP server, and OTLP/HTTP export to a receiver started here.

The frontier exchanges are replayed from tests/recordings through httpx2.MockTransport, as
in the planner's tests. The receiver is a stdlib HTTP server on 127.0.0.1 that decodes each
OTLP export request (protobuf) into the spans it carries.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from opentelemetry.util._once import Once

from orchestrator import ConfigurationError, Orchestrator
from orchestrator._tracing import child_span, enable_tracing
from orchestrator.cli._exit import ExitCode
from orchestrator.cli.main import main
from orchestrator.graph.spec import FrontierSpec
from orchestrator.specialists import SpecialistRegistry

from .processes import served_url
from .test_frontier import GRAPH as PLANNED_GRAPH
from .test_frontier import LADDER, Replay, _run

SCRIPTED_SERVER = Path(__file__).parent / "servers" / "scripted_server.py"


class _Forward(SpanExporter):
    """The one provider of this process hands its spans to the current test's exporter."""

    target: InMemorySpanExporter | None = None

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.target.export(spans) if self.target else SpanExportResult.SUCCESS


_FORWARD = _Forward()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(_FORWARD))


def _set_global_provider(provider: TracerProvider | None) -> None:
    # The API lets a process set its provider once; the tests install and remove theirs
    # (what opentelemetry's own test utilities do), so other tests run untraced.
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace._TRACER_PROVIDER = None
    if provider is not None:
        trace.set_tracer_provider(provider)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The application's own provider (an in-memory exporter), installed for one test."""
    exporter = InMemorySpanExporter()
    _FORWARD.target = exporter
    _set_global_provider(_PROVIDER)
    yield exporter
    _FORWARD.target = None
    _set_global_provider(None)


def _by_name(finished: Sequence[ReadableSpan]) -> dict[str, ReadableSpan]:
    return {s.name: s for s in finished}


def _parent(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def _id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def _trace_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.trace_id)


def test_a_run_is_one_tree_of_nodes_calls_rungs_and_frontier_calls(
    registry: SpecialistRegistry, spans: InMemorySpanExporter
) -> None:
    replay = Replay("anthropic_frontier_answers_subtask")
    result = _run(LADDER, registry, replay, "I am unsure what I want", tracing=True)
    assert result.status == "ok"
    # The application's provider is used, not replaced.
    assert trace.get_tracer_provider() is _PROVIDER
    finished = spans.get_finished_spans()
    named = _by_name(finished)
    run = named["run ladder"]
    assert run.parent is None
    assert run.attributes is not None
    assert run.attributes["orchestrator.status"] == "ok"
    assert run.attributes["orchestrator.thread.id"] == result.thread_id
    assert run.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert {_trace_id(s) for s in finished} == {_trace_id(run)}
    for node in ("work", "work.call", "work.verify", "work.escalate", "work.merge"):
        assert _parent(named[f"node {node}"]) == _id(run), node
    call = named["call first"]
    assert _parent(call) == _id(named["node work.call"])
    assert call.attributes is not None
    assert call.attributes["orchestrator.subtask.id"] == "a"
    assert call.attributes["orchestrator.specialist.name"] == "scripted"
    assert call.attributes["orchestrator.confidence"] == pytest.approx(0.3)
    assert call.attributes["orchestrator.model"] == "scripted-v1"
    verify = named["verify a"]
    assert _parent(verify) == _id(named["node work.verify"])
    assert verify.attributes is not None
    assert verify.attributes["orchestrator.verdict"] == "failed"
    assert verify.attributes["orchestrator.verdict.failed_checks"] == ("confidence",)
    # Each rung under the escalation step, in order; the frontier's call under its rung.
    vote, frontier = named["escalate vote"], named["escalate frontier"]
    assert _parent(vote) == _parent(frontier) == _id(named["node work.escalate"])
    assert vote.attributes is not None and frontier.attributes is not None
    assert vote.attributes["orchestrator.rung.answered"] is False
    assert frontier.attributes["orchestrator.verdict"] == "passed"
    assert frontier.attributes["orchestrator.source"] == "frontier"
    chat = named["chat claude-sonnet-5"]
    assert _parent(chat) == _id(frontier)
    assert chat.kind == trace.SpanKind.CLIENT
    assert dict(chat.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.system": "anthropic",
        "gen_ai.request.model": "claude-sonnet-5",
        "gen_ai.request.max_tokens": FrontierSpec(model="claude-sonnet-5").max_tokens,
        "gen_ai.response.model": "claude-sonnet-5",
        "gen_ai.usage.input_tokens": 305,  # as recorded
        "gen_ai.usage.output_tokens": 28,
        "gen_ai.usage.cache_read.input_tokens": 0,
        "gen_ai.usage.cache_creation.input_tokens": 0,
        "orchestrator.frontier.role": "escalation",
        "orchestrator.attempts": 1,
        "orchestrator.subtask.id": "a",
        "orchestrator.frontier.accepted": True,
    }
    # No request text in any span: it may be personal.
    values = [str(v) for s in finished for v in (s.attributes or {}).values()]
    assert not [v for v in values if "unsure" in v]


def test_the_planner_call_is_a_chat_span_under_its_node(
    registry: SpecialistRegistry, spans: InMemorySpanExporter
) -> None:
    replay = Replay("anthropic_plan_tool_use")
    result = _run(PLANNED_GRAPH, registry, replay, "refund 1234", tracing=True)
    assert result.status == "ok"
    named = _by_name(spans.get_finished_spans())
    chat = named["chat claude-sonnet-5"]
    assert _parent(chat) == _id(named["node work"])
    assert chat.attributes is not None
    assert chat.attributes["orchestrator.frontier.role"] == "planner"
    assert (chat.attributes["gen_ai.usage.input_tokens"], chat.attributes[
        "gen_ai.usage.output_tokens"
    ]) == (412, 96)
    assert chat.attributes["gen_ai.usage.cache_creation.input_tokens"] == 1830
    run = named["run frontier_graph"]
    assert run.attributes is not None
    assert run.attributes["orchestrator.frontier_calls"] == 1


FAILING = """\
name: failing
specialists:
  first:
    uses: scripted
    options: {fail: always, fail_with: specialist}
policies: {retries: 0}
nodes:
  work: {kind: specialists, subtasks: [{id: a, specialist: first}]}
edges:
  - {from: START, to: work}
"""


def test_a_failed_call_sets_its_span_status(
    registry: SpecialistRegistry, spans: InMemorySpanExporter
) -> None:
    result = _run(FAILING, registry, None, "refund", tracing=True)
    assert result.subtasks[0].ok is False
    call = _by_name(spans.get_finished_spans())["call first"]
    assert call.status.status_code == StatusCode.ERROR
    assert call.status.description == "scripted specialist failure"
    assert call.attributes is not None
    assert call.attributes["error.type"] == "SpecialistError"


def test_an_error_on_a_span_is_scrubbed_of_secrets(spans: InMemorySpanExporter) -> None:
    secret = "sk-ant-api03-" + "x" * 40
    with (
        trace.get_tracer("test").start_as_current_span("parent"),
        pytest.raises(RuntimeError),
        child_span("failing"),
    ):
        raise RuntimeError(f"401: invalid x-api-key {secret}")
    failing = _by_name(spans.get_finished_spans())["failing"]
    assert failing.status.status_code == StatusCode.ERROR
    assert failing.status.description is not None
    assert secret not in failing.status.description and "401" in failing.status.description
    assert failing.events == ()  # no exception event: its message and traceback are unscrubbed


def test_tracing_follows_the_application_provider_unless_switched_off(
    registry: SpecialistRegistry, spans: InMemorySpanExporter
) -> None:
    _run(FAILING, registry, None, "refund", tracing=False)
    assert spans.get_finished_spans() == ()
    _run(FAILING, registry, None, "refund")  # tracing=None: the app's provider
    assert "run failing" in _by_name(spans.get_finished_spans())


def test_tracing_makes_the_installations_own_servers_export_too(
    registry: SpecialistRegistry, spans: InMemorySpanExporter
) -> None:
    own = {"command": "orchestrator", "args": ["--specialists", "mine.py", "serve", "intent"]}
    other = {"command": "python", "args": ["server.py"]}
    traced = Orchestrator.from_text(FAILING, registry=registry, tracing=True)
    assert traced._served_traced(own)["args"] == [*own["args"], "--otel"]
    assert traced._served_traced(other) == other
    untraced = Orchestrator.from_text(FAILING, registry=registry)
    assert untraced._served_traced(own) == own


def test_an_untraced_run_hands_out_the_graphs_own_events(registry: SpecialistRegistry) -> None:
    # No provider installed: the events come straight from the run, with no wrapper.
    orc = Orchestrator.from_text(FAILING, registry=registry, checkpointer="memory")
    events = orc.astream("refund")
    assert events.__qualname__ == "Orchestrator._astream"  # type: ignore[attr-defined]
    assert trace.get_current_span() is trace.INVALID_SPAN


# -- OTLP over HTTP ------------------------------------------------------------------------


@dataclass
class ExportedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]


class Receiver:
    """An OTLP/HTTP trace endpoint on 127.0.0.1: decodes each export request's spans."""

    def __init__(self) -> None:
        self.spans: list[ExportedSpan] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.paths.append(f"{self.path} {self.headers['Content-Type']}")
                receiver.take(ExportTraceServiceRequest.FromString(body))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def take(self, request: ExportTraceServiceRequest) -> None:
        for resource_spans in request.resource_spans:
            service = next(
                a.value.string_value
                for a in resource_spans.resource.attributes
                if a.key == "service.name"
            )
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.spans.append(
                        ExportedSpan(
                            service=service,
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            attributes={a.key: _any_value(a.value) for a in span.attributes},
                        )
                    )

    def wait_for(self, name: str, timeout: float = 15.0) -> ExportedSpan:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [s for s in self.spans if s.name == name]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no span {name!r}; got {sorted({s.name for s in self.spans})}")


def _any_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_any_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    found.thread.start()
    yield found
    found.server.shutdown()
    found.server.server_close()


def _one_call_graph(name: str, server: dict[str, Any]) -> str:
    """A graph of one subtask whose specialist is the `scripted` tool of MCP server `server`."""
    return f"""\
name: {name}
servers: {{models: {json.dumps(server)}}}
specialists:
  first: {{via: models, tool: scripted}}
nodes:
  work: {{kind: specialists, subtasks: [{{id: a, specialist: first}}]}}
edges:
  - {{from: START, to: work}}
"""


def _served_graph(receiver: Receiver) -> str:
    """The scripted server over stdio, exporting its spans to `receiver`."""
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_BSP_SCHEDULE_DELAY": "50"}
    server = {"command": sys.executable, "args": [str(SCRIPTED_SERVER), "--otel"], "env": env}
    return _one_call_graph("served", server)


def _assert_served_spans_join(spans: InMemorySpanExporter, receiver: Receiver) -> None:
    named = _by_name(spans.get_finished_spans())
    call = named["call first"]
    assert call.attributes is not None
    assert call.attributes["orchestrator.mcp.server"] == "models"
    assert call.attributes["orchestrator.mcp.tool"] == "scripted"
    # The mcp SDK's client span carries the context in the request's `_meta`...
    sent = named["MCP send tools/call scripted"]
    assert _parent(sent) == _id(call)
    # ... and the server's spans are its children, in the same trace.
    served = receiver.wait_for("tools/call scripted")
    predict = receiver.wait_for("predict scripted")
    assert served.service == predict.service == "scripted-server"
    assert served.trace_id == predict.trace_id == f"{_trace_id(call):032x}"
    assert served.parent_id == f"{_id(sent):016x}"
    assert predict.parent_id == served.span_id
    assert predict.attributes["orchestrator.model"] == "scripted-v1"
    assert predict.attributes["orchestrator.confidence"] == pytest.approx(0.95)
    assert all(p == "/v1/traces application/x-protobuf" for p in receiver.paths)


@pytest.mark.slow
def test_a_served_specialists_spans_join_the_runs_trace_over_stdio(
    spans: InMemorySpanExporter, receiver: Receiver
) -> None:
    orc = Orchestrator.from_text(_served_graph(receiver), checkpointer="memory", tracing=True)
    result = orc.run("refund please")  # opens and closes the server: it exports as it exits
    assert result.status == "ok"
    _assert_served_spans_join(spans, receiver)


@pytest.mark.slow
def test_a_served_specialists_spans_join_the_runs_trace_over_http(
    spans: InMemorySpanExporter, receiver: Receiver
) -> None:
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "50",  # the server goes on running: export as spans end
    }
    server = subprocess.Popen(
        [sys.executable, str(SCRIPTED_SERVER), "--transport", "http", "--port", "0", "--otel"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        graph = _one_call_graph("remote", {"url": served_url(server)})
        result = Orchestrator.from_text(graph, checkpointer="memory", tracing=True).run("refund")
        assert result.status == "ok"
        _assert_served_spans_join(spans, receiver)
    finally:
        server.terminate()
        server.wait(timeout=20)
        if server.stderr:
            server.stderr.close()


@pytest.mark.slow
def test_orchestrator_run_otel_exports_one_trace_with_its_servers_over_otlp_http(
    receiver: Receiver, tmp_path: Path
) -> None:
    module = tmp_path / "scripted_module.py"
    module.write_text(
        "from orchestrator import register_specialist\n"
        "from orchestrator.specialists.testing import ScriptedSpecialist\n"
        "register_specialist(ScriptedSpecialist)\n"
    )
    graph = tmp_path / "served.yaml"
    own = {"command": "orchestrator", "args": ["--specialists", str(module), "serve", "scripted"]}
    graph.write_text(_one_call_graph("served", own))
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_SERVICE_NAME": "triage-cli",
    }
    command = [sys.executable, "-m", "orchestrator", "run", str(graph), "-i", "refund"]
    done = subprocess.run(
        [*command, "--json", "--checkpointer", "none", "--otel"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "ok"  # stdout holds the result alone
    run = receiver.wait_for("run served")
    call = receiver.wait_for("call first")
    # `orchestrator serve` was started with --otel added: its spans are in the same trace.
    served = receiver.wait_for("tools/call scripted")
    predict = receiver.wait_for("predict scripted")
    assert run.service == "triage-cli" and run.parent_id == ""
    assert {s.trace_id for s in receiver.spans} == {run.trace_id}
    assert predict.parent_id == served.span_id
    assert call.attributes["orchestrator.subtask.id"] == "a"
    assert call.attributes["orchestrator.mcp.server"] == "models"
    assert run.attributes["orchestrator.status"] == "ok"


def test_an_exporter_tracing_cannot_build_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    # Refused when the orchestrator is made, before any model loads or server starts.
    assert main(["run", "support_triage", "-i", "x", "--otel"]) == ExitCode.INVALID
    shown = capsys.readouterr().err.strip()
    assert "OTEL_TRACES_EXPORTER=zipkin" in shown and "\n" not in shown
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    with pytest.raises(ConfigurationError, match="OTLP over HTTP"):
        enable_tracing()
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)
