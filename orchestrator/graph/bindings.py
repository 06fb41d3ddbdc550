"""A graph file's specialist bindings, built: the registered specialist with its options, its
model on the backend the binding names.

The backends know nothing of graph files: a binding's ``endpoint`` is handed to its backend
as the backend's own configuration (``config_model``), converted here.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel

from orchestrator.graph.model import SpecialistBinding
from orchestrator.specialists._base import AnySpecialist
from orchestrator.specialists._registry import SpecialistRegistry
from orchestrator.specialists.backends.base import Backend
from orchestrator.specialists.backends.registry import BackendRegistry, default_backends

__all__ = ["backend_config", "specialist_for_binding"]

ConfigT = TypeVar("ConfigT", bound=BaseModel)


def backend_config(backend: Backend[ConfigT], binding: SpecialistBinding) -> ConfigT | None:
    """The binding's ``endpoint`` as `backend`'s configuration (``None`` when either side
    has none); raises pydantic's ValidationError when it does not fit."""
    if backend.config_model is None or binding.endpoint is None:
        return None
    return backend.config_model.model_validate(binding.endpoint.model_dump(exclude_unset=True))


def specialist_for_binding(
    registry: SpecialistRegistry,
    name: str,
    binding: SpecialistBinding,
    *,
    backends: BackendRegistry | None = None,
) -> AnySpecialist:
    """Build the specialist a graph binding describes, on the backend it names."""
    specialist = registry.create(name, binding.options)
    backend = (backends or default_backends()).get(binding.backend)
    return backend.attach(specialist, backend_config(backend, binding))
