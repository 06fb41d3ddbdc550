"""The boundary between the graph and the specialists.

The graph's nodes only see a :class:`Toolset`: list the tools, call one with JSON arguments,
get a :class:`~orchestrator.ToolOutput` back. The in-process toolset below calls registered
specialists directly; an MCP toolset reaches the same specialists served as MCP tools.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from pydantic import ValidationError

from orchestrator._contracts import ToolInfo, ToolOutput
from orchestrator._errors import ConfigurationError, RunError, SpecialistError, one_line
from orchestrator.specialists._base import AnySpecialist

__all__ = ["InProcessToolset", "Toolset"]


@runtime_checkable
class Toolset(Protocol):
    """What the graph needs from wherever its specialists live."""

    async def list_tools(self) -> list[ToolInfo]: ...

    async def call_tool(self, name: str, arguments: Mapping[str, Any]) -> ToolOutput:
        """Run one tool. Raise SpecialistError for a bad call, ToolTransportError when the
        tool cannot be reached (the caller retries those)."""
        ...

    async def warm_up(self) -> None:
        """Load what can be loaded before the first call."""
        ...

    async def aclose(self) -> None: ...


class InProcessToolset:
    """Calls specialists in this process; the model runs in a worker thread.

    ``specialists`` maps tool names to specialist instances.
    """

    def __init__(self, specialists: Mapping[str, AnySpecialist]) -> None:
        self._specialists = dict(specialists)

    def _get(self, name: str) -> AnySpecialist:
        try:
            return self._specialists[name]
        except KeyError:
            known = ", ".join(sorted(self._specialists)) or "none"
            raise ConfigurationError(
                f"no tool named {name!r} in this toolset (has: {known})"
            ) from None

    async def list_tools(self) -> list[ToolInfo]:
        # A specialist may read its label set from a file: kept off the event loop.
        return await asyncio.to_thread(self._tool_infos)

    def _tool_infos(self) -> list[ToolInfo]:
        # Tools are named by their key here, so one specialist can be bound twice with
        # different options (say, two intent label sets).
        return [
            s.tool_info().model_copy(update={"name": key}) for key, s in self._specialists.items()
        ]

    async def warm_up(self) -> None:
        await asyncio.gather(
            *(asyncio.to_thread(s.ensure_loaded) for s in self._specialists.values())
        )

    async def call_tool(self, name: str, arguments: Mapping[str, Any]) -> ToolOutput:
        specialist = self._get(name)
        try:
            parsed = specialist.input_model.model_validate(dict(arguments))
        except ValidationError as exc:
            raise SpecialistError(
                f"invalid arguments for {name!r}: {one_line(exc)}", tool=name
            ) from exc
        return await asyncio.to_thread(self._predict, name, specialist, parsed)

    @staticmethod
    def _predict(name: str, specialist: AnySpecialist, parsed: Any) -> ToolOutput:
        try:
            specialist.ensure_loaded()
            start = time.perf_counter()
            prediction = specialist.predict_batch([parsed])[0]
            compute_ms = (time.perf_counter() - start) * 1000
        except RunError:
            raise  # the specialist reports a run failure itself (a service it uses is down)
        except Exception as exc:
            # The specialist's own code failed: a failure of this tool that the run records.
            raise SpecialistError.wrapping(exc, tool=name) from exc
        try:
            return ToolOutput(
                output=prediction.output.model_dump(mode="json"),
                confidence=min(1.0, max(0.0, float(prediction.confidence))),
                model=specialist.model_id,
                compute_ms=compute_ms,
                tokens=prediction.tokens,
            )
        except (ValidationError, TypeError, ValueError) as exc:
            raise SpecialistError(
                f"{name!r} answered outside its contract: {exc}", tool=name
            ) from exc

    async def aclose(self) -> None:
        for specialist in self._specialists.values():
            specialist.close()
