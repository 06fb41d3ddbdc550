"""Model backends the specialists run on: the bundled ONNX sentence encoder and its
micro-batcher, llama.cpp for local generation, and OpenAI-compatible servers (vLLM).

A graph binding picks where its model runs by naming a :class:`Backend` (``backend: NAME``);
``local`` and ``vllm`` are built in, and plugins register more through the
``orchestrator.backends`` entry point group or :func:`register_backend`.
"""

from orchestrator.specialists.backends.base import Backend, LocalBackend
from orchestrator.specialists.backends.endpoint import EndpointConfig
from orchestrator.specialists.backends.registry import (
    BackendRegistry,
    default_backends,
    register_backend,
)

__all__ = [
    "Backend",
    "BackendRegistry",
    "EndpointConfig",
    "LocalBackend",
    "default_backends",
    "register_backend",
]
