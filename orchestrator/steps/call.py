"""call: one subtask's specialist call, with its timeout and retries, as a recorded result."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import ValidationError
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from orchestrator._contracts import SpecialistResult, Subtask, ToolOutput
from orchestrator._errors import RunError, ToolTimeoutError, ToolTransportError
from orchestrator._logging import get_logger
from orchestrator._secrets import scrub_secrets
from orchestrator._state import CallPayload
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
    """Call the subtask's specialist; a failed call is a result with ``ok=False``.

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
