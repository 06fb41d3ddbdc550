"""call: one subtask's specialist call, with its timeout and retries, as a recorded result."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from opentelemetry.trace import SpanKind
from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from orchestrator._contracts import SpecialistResult, Subtask, ToolOutput
from orchestrator._errors import RunError, ToolTimeoutError, ToolTransportError
from orchestrator._logging import get_logger
from orchestrator._secrets import scrub_secrets
from orchestrator._state import CallPayload
from orchestrator._tracing import attributes, child_span, describe_result
from orchestrator.steps.context import StepContext, timing

__all__ = ["call", "call_subtask"]

log = get_logger(__name__)


async def call(ctx: StepContext, payload: CallPayload) -> dict[str, Any]:
    start = time.perf_counter()
    sub = Subtask.model_validate(payload["subtask"])
    result = await call_subtask(ctx, sub)
    return {
        "results": {sub.id: result.model_dump(mode="json")},
        "timings": [timing(sub.step or "", "call", start)],
    }


async def _attempt(ctx: StepContext, sub: Subtask, timeout: float) -> ToolOutput:
    # asyncio.timeout rather than wait_for: no extra task per call.
    try:
        async with asyncio.timeout(timeout):
            return await ctx.toolset.call_tool(sub.specialist, sub.input)
    except TimeoutError:
        raise ToolTimeoutError(
            f"{sub.specialist!r} did not answer within {timeout:g} s",
            subtask_id=sub.id,
            tool=sub.specialist,
        ) from None


async def call_subtask(ctx: StepContext, sub: Subtask) -> SpecialistResult:
    """Call the subtask's specialist; a failed call is a result with ``ok=False``, and a
    span of its own when the run is traced."""
    with child_span(f"call {sub.specialist}", kind=SpanKind.CLIENT) as span:
        if not span.is_recording():
            return await _call_subtask(ctx, sub)
        span.set_attributes(_call_attributes(ctx, sub))
        result = await _call_subtask(ctx, sub)
        describe_result(span, result)
        return result


def _call_attributes(ctx: StepContext, sub: Subtask) -> dict[str, Any]:
    """Which specialist, and where it is reached: the MCP server and tool, or in process."""
    binding = ctx.spec.specialists.get(sub.specialist)
    server, tool = ctx.mcp_routes.get(sub.specialist, (None, None))
    return attributes(
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": sub.specialist,
            "orchestrator.subtask.id": sub.id,
            "orchestrator.specialist": sub.specialist,
            "orchestrator.specialist.name": (
                ctx.spec.specialist_name(sub.specialist) if binding is not None else None
            ),
            "orchestrator.mcp.server": server,
            "orchestrator.mcp.tool": tool,
        }
    )


async def _call_subtask(ctx: StepContext, sub: Subtask) -> SpecialistResult:
    """The call itself.

    Transport errors and timeouts are retried as the graph's policies say. Only failures of
    the call itself are recorded (a :class:`RunError`, or a tool's output that fails its
    model's validation); any other exception is a bug and propagates.
    """
    policies = ctx.spec.policies
    timeout = (
        ctx.spec.timeout_s(sub.specialist)
        if sub.specialist in ctx.spec.specialists
        else policies.timeout_s
    )
    attempts = 0
    start = time.perf_counter()
    try:
        try:
            attempts += 1
            out = await _attempt(ctx, sub, timeout)
        except (ToolTransportError, ToolTimeoutError):
            if policies.retries == 0:
                raise
            # Only a failed call pays for tenacity: the first attempt above is the fast
            # path every call takes.
            await asyncio.sleep(policies.retry_backoff_s)
            async for retry in AsyncRetrying(
                stop=stop_after_attempt(policies.retries),
                wait=wait_exponential(multiplier=policies.retry_backoff_s * 2, max=30),
                retry=retry_if_exception_type((ToolTransportError, ToolTimeoutError)),
                reraise=True,
            ):
                with retry:
                    attempts += 1
                    out = await _attempt(ctx, sub, timeout)
    except (RunError, ValidationError) as exc:
        # What a call can legitimately fail with is recorded on the subtask; anything else
        # is a bug in the framework (or a toolset) and propagates.
        if isinstance(exc, RunError):
            exc.subtask_id = exc.subtask_id or sub.id
            exc.tool = exc.tool or sub.specialist
            kind = exc.kind
        else:
            kind = type(exc).__name__
        if kind != type(exc).__name__ or not isinstance(exc, RunError):
            # The specialist's own code raised, or its output failed validation: keep the
            # traceback in the log.
            log.warning("specialist raised", subtask=sub.id, error=repr(exc), exc_info=True)
        return SpecialistResult(
            subtask_id=sub.id,
            specialist=sub.specialist,
            ok=False,
            input=sub.input,
            latency_ms=(time.perf_counter() - start) * 1000,
            attempts=attempts,
            error=scrub_secrets(str(exc)) or kind,
            error_kind=kind,
        )
    return SpecialistResult(
        subtask_id=sub.id,
        specialist=sub.specialist,
        ok=True,
        input=sub.input,
        output=out.output,
        confidence=out.confidence,
        model=out.model,
        latency_ms=(time.perf_counter() - start) * 1000,
        compute_ms=out.compute_ms,
        tokens=out.tokens,
        attempts=attempts,
    )
