"""Where a specialist's model runs: the :class:`Backend` protocol, and the local backend.

A graph binding names a backend (``backend: NAME``). The framework builds the specialist
with its options, validates the binding's ``endpoint`` into the backend's ``config_model``
and hands both to :meth:`Backend.attach`, which returns the specialist with its model
moved: the same object with another engine inside, or a stand-in that keeps its contract.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel

from orchestrator.specialists._base import AnySpecialist

__all__ = ["Backend", "LocalBackend"]

ConfigT = TypeVar("ConfigT", bound=BaseModel)


@runtime_checkable
class Backend(Protocol[ConfigT]):
    """Runs specialists' models somewhere: this process, a model server, a cluster.

    Register one under a name with :func:`~orchestrator.specialists.backends.registry.
    register_backend`, or with an ``orchestrator.backends`` entry point naming a class that
    is built with no arguments; graph files then select it with ``backend: NAME``.
    """

    @property
    def config_model(self) -> type[ConfigT] | None:
        """What a binding's ``endpoint`` holds for this backend; ``None`` when it takes none."""
        ...

    def attach(self, specialist: AnySpecialist, config: ConfigT | None) -> AnySpecialist:
        """`specialist` with its model on this backend. Whatever is returned keeps the
        specialist's name, input and output schema, labels and :meth:`verify`."""
        ...


class LocalBackend:
    """The model runs in this process, on this machine's CPU (the default backend)."""

    config_model: type[BaseModel] | None = None

    def attach(self, specialist: AnySpecialist, config: Any) -> AnySpecialist:
        return specialist
