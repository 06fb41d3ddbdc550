"""OpenTelemetry spans of a run, off unless asked for.

The spans go through the OpenTelemetry API alone: without a TracerProvider the API's no-op
tracer answers, and a run that is not traced starts no span at all (each step checks once
whether its parent span records). :func:`enable_tracing` installs the SDK's provider with an
OTLP/HTTP exporter configured by the standard ``OTEL_*`` variables, unless the application
installed a provider of its own, which is then used as it is.

The mcp SDK already carries the trace context to MCP servers in each request's ``_meta``
(W3C ``traceparent``) and starts a server's span for each request as its child, so a served
specialist's spans join the run's trace without anything done here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncGenerator, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer

from orchestrator._contracts import RunEvent, SpecialistResult, Verdict
from orchestrator._errors import ConfigurationError
from orchestrator._recorder import artifact_of
from orchestrator._secrets import scrub_secrets
from orchestrator._version import __version__

__all__ = [
    "attributes",
    "child_span",
    "describe_result",
    "describe_verdict",
    "enable_tracing",
    "failed",
    "traced_run",
    "tracer",
    "tracing_installed",
]

_EXTRA = "pip install 'specialist-orchestrator[otel]'"
# Exporters this module can build from OTEL_TRACES_EXPORTER; OTLP over HTTP is the default.
_EXPORTERS = ("otlp", "console", "none")


# The API's proxy: the no-op tracer until a provider is set, that provider's tracer after
# (looked up once; asking the provider for a tracer at every span costs more than the span).
_TRACER = trace.get_tracer("orchestrator", __version__)


def tracer() -> Tracer:
    """The framework's tracer."""
    return _TRACER


def tracing_installed() -> bool:
    """Whether a TracerProvider was installed (by :func:`enable_tracing` or the app)."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def _exporter_name() -> str:
    name = os.environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    if name not in _EXPORTERS:
        raise ConfigurationError(
            f"OTEL_TRACES_EXPORTER={name}: tracing exports with one of "
            f"{', '.join(_EXPORTERS)}; set it to one of them (or unset it for OTLP/HTTP)"
        )
    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    ).strip()
    if name == "otlp" and protocol not in ("", "http/protobuf"):
        raise ConfigurationError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: tracing exports OTLP over HTTP "
            "(http/protobuf); unset it, or install a provider of your own for another protocol"
        )
    return name


def enable_tracing(service_name: str = "orchestrator") -> None:
    """Install the SDK's TracerProvider, exporting as the ``OTEL_*`` variables say (OTLP over
    HTTP by default, to ``OTEL_EXPORTER_OTLP_ENDPOINT``); keep one the app installed.

    ``service_name`` is used when neither ``OTEL_SERVICE_NAME`` nor
    ``OTEL_RESOURCE_ATTRIBUTES`` names the service.
    """
    if tracing_installed():
        return
    name = _exporter_name()
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError as exc:
        raise ConfigurationError(f"tracing needs the otel extra: {_EXTRA}") from exc
    named = "OTEL_SERVICE_NAME" in os.environ or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    resource = Resource.create({} if named else {"service.name": service_name})
    # The SDK flushes and shuts the provider down at exit: spans still queued are exported.
    provider = TracerProvider(resource=resource)
    if name == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise ConfigurationError(f"tracing needs the otel extra: {_EXTRA}") from exc
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    elif name == "console":
        # stderr: stdout carries the command's own output (`--json`, or an MCP stdio stream).
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(out=sys.stderr)))
    trace.set_tracer_provider(provider)


def attributes(values: Mapping[str, Any]) -> dict[str, Any]:
    """Span attributes from ``values``, ``None`` dropped. They are names, numbers and
    verdicts from the configuration and the results, never text of a request or an error
    (errors go to the span's status through :func:`failed`, scrubbed)."""
    return {key: value for key, value in values.items() if value is not None}


def child_span(
    name: str, values: Mapping[str, Any] | None = None, kind: SpanKind = SpanKind.INTERNAL
) -> AbstractContextManager[Span]:
    """A span under the current one, when the current one records; else the current
    (non-recording) span itself, so that an untraced run pays one context-variable read."""
    parent = trace.get_current_span()
    if not parent.is_recording():
        return nullcontext(parent)
    return _current_span(name, kind, attributes(values or {}))


@contextmanager
def _current_span(name: str, kind: SpanKind, values: dict[str, Any]) -> Iterator[Span]:
    with tracer().start_as_current_span(
        name,
        kind=kind,
        attributes=values,
        # The SDK would store the exception's message and traceback unscrubbed.
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except BaseException as exc:
            failed(span, exc)
            raise


def failed(span: Span, exc: BaseException) -> None:
    """An exception on its span: the status, and the error's type; the message scrubbed."""
    span.set_attribute("error.type", type(exc).__qualname__)
    span.set_status(StatusCode.ERROR, scrub_secrets(str(exc)) or type(exc).__qualname__)


def describe_result(span: Span, result: SpecialistResult) -> None:
    """What a specialist answered, on its span: model, artifact version, confidence; a
    failed call sets the span's status (no input or output text: it may be personal)."""
    span.set_attributes(
        attributes(
            {
                "orchestrator.ok": result.ok,
                "orchestrator.model": result.model,
                "orchestrator.artifact": artifact_of(result.model),
                "orchestrator.confidence": result.confidence,
                "orchestrator.attempts": result.attempts,
                "orchestrator.source": result.source,
            }
        )
    )
    if not result.ok:
        span.set_attribute("error.type", result.error_kind or "error")
        span.set_status(StatusCode.ERROR, scrub_secrets(result.error or "the call failed"))


def describe_verdict(span: Span, verdict: Verdict) -> None:
    """The verdict on its span: passed or not, and the names of the checks that failed."""
    failing = sorted(name for name, ok in verdict.checks.items() if not ok)
    span.set_attribute("orchestrator.verdict", "passed" if verdict.passed else "failed")
    if failing:
        span.set_attribute("orchestrator.verdict.failed_checks", failing)


async def traced_run(
    events: AsyncGenerator[RunEvent, None], graph: str
) -> AsyncGenerator[RunEvent, None]:
    """A run's events, with the run's span current while each step of the run goes on.

    The span is attached around each step of ``events`` and detached before each event is
    handed on, so the caller's own context never holds it (attaching it across a ``yield``
    would leave it current in the caller's code and fail to detach when the caller stops
    early)."""
    span = tracer().start_span(
        f"run {graph}",
        attributes={"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": graph},
    )
    context = trace.set_span_in_context(span)
    try:
        while True:
            token = otel_context.attach(context)
            try:
                event = await anext(events)
            except StopAsyncIteration:
                break
            finally:
                otel_context.detach(token)
            _describe_event(span, event)
            yield event
    except Exception as exc:
        failed(span, exc)
        raise
    finally:
        token = otel_context.attach(context)
        try:
            await events.aclose()
        finally:
            otel_context.detach(token)
            span.end()


def _describe_event(span: Span, event: RunEvent) -> None:
    if event.kind in ("started", "resumed"):
        span.set_attribute("orchestrator.thread.id", event.thread_id)
        span.set_attribute("orchestrator.resumed", event.kind == "resumed")
    result = event.result
    if result is None:
        return
    span.set_attribute("orchestrator.thread.id", event.thread_id)
    span.set_attribute("orchestrator.status", result.status)
    if result.ledger is not None:
        span.set_attributes(
            {
                "orchestrator.cost_usd": result.ledger.total_usd,
                "orchestrator.frontier_calls": result.ledger.frontier_calls,
                "orchestrator.specialist_calls": result.ledger.specialist_calls,
                "gen_ai.usage.input_tokens": result.ledger.input_tokens,
                "gen_ai.usage.output_tokens": result.ledger.output_tokens,
            }
        )
    if result.status == "failed":
        span.set_status(StatusCode.ERROR, scrub_secrets(result.error or "the run failed"))
