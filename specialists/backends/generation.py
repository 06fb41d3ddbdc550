"""Generating JSON under a schema: the engine interface that generative specialists share.

A generative specialist (``function_call`` for one) never talks to a model runtime directly. It
asks a :class:`JSONGenerator` to continue chat messages with JSON that must match a JSON Schema;
the local CPU engine (llama.cpp) turns the schema into a grammar, a vLLM server into structured
outputs. Every constraint a specialist wants is therefore written as JSON Schema (``enum``,
``pattern``, ``minItems``...), so both engines enforce the same thing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

__all__ = ["ChatMessage", "Generated", "JSONGenerator", "UsesGenerator"]

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
