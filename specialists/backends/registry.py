"""Which backend names exist: ``local`` and ``vllm`` built in, more through entry points.

Built-ins and plugins arrive through the same ``orchestrator.backends`` entry point group;
code can also register backends directly. Loading is lazy: the ``vllm`` backend (and the
``openai`` SDK it uses) is imported only when a binding asks for it.
"""

from __future__ import annotations

from typing import Any

from orchestrator._errors import ConfigurationError
from orchestrator.specialists._plugins import EntryPointRegistry
from orchestrator.specialists.backends.base import Backend

__all__ = ["BackendRegistry", "default_backends", "register_backend"]

# Used when the package runs from a source tree without installed metadata.
_BUILTINS = {
    "local": "orchestrator.specialists.backends.base:LocalBackend",
    "vllm": "orchestrator.specialists.backends.openai_compatible:OpenAICompatibleBackend",
}


class BackendRegistry(EntryPointRegistry[Backend[Any]]):
    """Maps backend names to backends; entry points are read lazily, once."""

    group = "orchestrator.backends"
    builtins = _BUILTINS
    kind = "backend"

    def _accept(self, value: object, origin: str) -> Backend[Any]:
        backend = value() if isinstance(value, type) else value
        if not isinstance(backend, Backend):
            raise ConfigurationError(
                f"{origin} is not a backend: it needs a `config_model` and an `attach` method"
            )
        return backend

    def _unknown(self, name: str) -> Exception:
        return ConfigurationError(
            f"unknown backend {name!r}; registered backends: {', '.join(self.names())}"
        )

    def register(self, name: str, backend: object, *, replace: bool = False) -> Backend[Any]:
        """Register `backend` (an object, or a class built with no arguments) as `name`."""
        return self._add(name, self._accept(backend, repr(backend)), replace=replace)


_default = BackendRegistry()


def default_backends() -> BackendRegistry:
    return _default


def register_backend(name: str, backend: object, *, replace: bool = False) -> Backend[Any]:
    """Register a backend in the default registry."""
    return _default.register(name, backend, replace=replace)
