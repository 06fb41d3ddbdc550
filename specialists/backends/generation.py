"""Generating JSON under a schema: the engine interface that generative specialists share.

A generative specialist (``function_call`` for one) never talks to a model runtime directly. It
asks a :class:`JSONGenerator` to continue chat messages with JSON that must match a JSON Schema;
the local CPU engine (llama.cpp) turns the schema into a grammar, a vLLM server into structured
outputs. Every constraint a specialist wants is therefore written as JSON Schema (``enum``,
``pattern``, ``minItems``...), so both engines enforce the same thing.

A server with native tool calling (vLLM started with ``--enable-auto-tool-choice``, llama.cpp's
server with a function-calling chat format) can instead be handed the functions themselves
(:class:`ToolCaller`): the model then decides on its own whether any applies, which, and with
what arguments, under its own chat template.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

__all__ = [
    "CalledTools",
    "ChatMessage",
    "Generated",
    "JSONGenerator",
    "ToolCaller",
    "UsesGenerator",
    "UsesToolCaller",
]

ChatMessage = dict[str, str]


class Generated(NamedTuple):
    """One generation: the raw text (JSON under the schema) and the tokens it took."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: Mean log-probability of the generated tokens, when the engine reports it.
    mean_logprob: float | None = None


@runtime_checkable
class JSONGenerator(Protocol):
    """Continues chat messages with JSON valid against ``schema``."""

    @property
    def model_id(self) -> str:
        """The model behind the generator, recorded in provenance."""
        ...

    def generate(
        self, messages: Sequence[ChatMessage], schema: dict[str, Any], *, max_tokens: int
    ) -> Generated: ...


@runtime_checkable
class UsesGenerator(Protocol):
    """A specialist whose model is a :class:`JSONGenerator` that can be swapped, for example
    for a vLLM server (``backend: vllm`` in a graph file)."""

    def use_generator(self, generator: JSONGenerator) -> None: ...


class CalledTools(NamedTuple):
    """A model's answer to a request with tools: the calls it made and any text it wrote."""

    #: (function name, arguments as the JSON text the model wrote), in order.
    calls: list[tuple[str, str]]
    #: Text beside or instead of the calls (why no function applies, when none is called).
    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: Mean log-probability of the generated tokens, when the engine reports it.
    mean_logprob: float | None = None


@runtime_checkable
class ToolCaller(Protocol):
    """Answers chat messages with native tool calls (OpenAI ``tools``, ``tool_choice``)."""

    @property
    def model_id(self) -> str: ...

    def call_tools(
        self,
        messages: Sequence[ChatMessage],
        tools: list[dict[str, Any]],
        *,
        max_tokens: int,
    ) -> CalledTools: ...


@runtime_checkable
class UsesToolCaller(Protocol):
    """A specialist that can hand its functions to a model with native tool calling
    (``endpoint.mode: tools`` in a graph file)."""

    def use_tool_caller(self, caller: ToolCaller) -> None: ...
