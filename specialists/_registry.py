"""Which specialist names exist, and how to build one.

Built-ins and plugins arrive through the same ``orchestrator.specialists`` entry point group;
code can also register classes directly. Graph files only ever name registered specialists:
nothing in a file is imported by module path.
"""

from __future__ import annotations

from typing import Any

from orchestrator._errors import ConfigurationError, UnknownSpecialistError
from orchestrator.specialists._base import AnySpecialist, Specialist
from orchestrator.specialists._plugins import EntryPointRegistry

__all__ = ["SpecialistRegistry", "default_registry", "register_specialist"]

# Used when the package runs from a source tree without installed metadata.
_BUILTINS = {
    "intent": "orchestrator.specialists.intent:IntentSpecialist",
    "sentiment": "orchestrator.specialists.sentiment:SentimentSpecialist",
    "clauses": "orchestrator.specialists.clauses:ClausesSpecialist",
    "function_call": "orchestrator.specialists.function_call:FunctionCallSpecialist",
}


class SpecialistRegistry(EntryPointRegistry[type[AnySpecialist]]):
    """Maps specialist names to classes; entry points are read lazily, once."""

    group = "orchestrator.specialists"
    builtins = _BUILTINS
    kind = "specialist"

    def _accept(self, value: object, origin: str) -> type[AnySpecialist]:
        if not (isinstance(value, type) and issubclass(value, Specialist)):
            raise ConfigurationError(f"{origin} is not a Specialist subclass")
        return value

    def _unknown(self, name: str) -> Exception:
        return UnknownSpecialistError(name, self.names())

    def register(
        self, cls: type[AnySpecialist], *, name: str | None = None, replace: bool = False
    ) -> type[AnySpecialist]:
        cls = self._accept(cls, repr(cls))
        return self._add(name or cls.name, cls, replace=replace)

    def create(self, name: str, options: dict[str, Any] | None = None) -> AnySpecialist:
        """Build a specialist; options are validated against its ``options_model``."""
        cls = self.get(name)
        return cls(cls.options_model.model_validate(options or {}))


_default = SpecialistRegistry()


def default_registry() -> SpecialistRegistry:
    """The registry of this process: built-ins, entry-point plugins and the classes passed to
    :func:`register_specialist`."""
    return _default


def register_specialist(
    cls: type[AnySpecialist] | None = None, *, name: str | None = None, replace: bool = False
) -> Any:
    """Register a specialist class in the default registry; usable as a decorator."""

    def apply(target: type[AnySpecialist]) -> type[AnySpecialist]:
        return _default.register(target, name=name, replace=replace)

    return apply(cls) if cls is not None else apply
