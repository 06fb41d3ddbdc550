"""Which specialist names exist, and how to build one.

Built-ins and plugins arrive through the same ``orchestrator.specialists`` entry point group;
code can also register classes directly. Graph files only ever name registered specialists:
nothing in a file is imported by module path.
"""

from __future__ import annotations

import threading
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from orchestrator._errors import ConfigurationError, UnknownSpecialistError
from orchestrator.specialists._base import AnySpecialist, Specialist

__all__ = ["SpecialistRegistry", "default_registry", "register_specialist"]

# Used when the package runs from a source tree without installed metadata.
_BUILTINS = {
    "intent": "orchestrator.specialists.intent:IntentSpecialist",
    "sentiment": "orchestrator.specialists.sentiment:SentimentSpecialist",
    "clauses": "orchestrator.specialists.clauses:ClausesSpecialist",
    "function_call": "orchestrator.specialists.function_call:FunctionCallSpecialist",
}


def _load_target(target: str) -> type[AnySpecialist]:
    module, _, attr = target.partition(":")
    cls = getattr(import_module(module), attr)
    if not (isinstance(cls, type) and issubclass(cls, Specialist)):
        raise ConfigurationError(f"entry point {target!r} is not a Specialist subclass")
    return cls


class SpecialistRegistry:
    """Maps specialist names to classes; entry points are read lazily, once."""

    def __init__(self, *, load_entry_points: bool = True) -> None:
        self._classes: dict[str, type[AnySpecialist]] = {}
        self._pending: dict[str, str] = {}
        self._entry_points_read = not load_entry_points
        self._lock = threading.Lock()

    def register(
        self, cls: type[AnySpecialist], *, name: str | None = None, replace: bool = False
    ) -> type[AnySpecialist]:
        if not (isinstance(cls, type) and issubclass(cls, Specialist)):
            raise ConfigurationError(f"{cls!r} is not a Specialist subclass")
        key = name or cls.name
        self._read_entry_points()
        with self._lock:
            taken = key in self._pending or (key in self._classes and self._classes[key] is not cls)
            if not replace and taken:
                raise ConfigurationError(
                    f"specialist {key!r} is already registered; pass replace=True to override it"
                )
            self._classes[key] = cls
            self._pending.pop(key, None)
        return cls

    def _read_entry_points(self) -> None:
        with self._lock:
            if self._entry_points_read:
                return
            self._entry_points_read = True
            found = {ep.name: ep.value for ep in entry_points(group="orchestrator.specialists")}
            for key, target in {**_BUILTINS, **found}.items():
                if key not in self._classes:
                    self._pending[key] = target

    def names(self) -> list[str]:
        self._read_entry_points()
        return sorted({*self._classes, *self._pending})

    def get(self, name: str) -> type[AnySpecialist]:
        self._read_entry_points()
        if name in self._classes:
            return self._classes[name]
        target = self._pending.get(name)
        if target is None:
            raise UnknownSpecialistError(name, self.names())
        cls = _load_target(target)
        with self._lock:
            self._classes[name] = cls
            self._pending.pop(name, None)
        return cls

    def create(self, name: str, options: dict[str, Any] | None = None) -> AnySpecialist:
        """Build a specialist; options are validated against its ``options_model``."""
        cls = self.get(name)
        return cls(cls.options_model.model_validate(options or {}))


_default = SpecialistRegistry()


def default_registry() -> SpecialistRegistry:
    return _default


def register_specialist(
    cls: type[AnySpecialist] | None = None, *, name: str | None = None, replace: bool = False
) -> Any:
    """Register a specialist class in the default registry; usable as a decorator."""

    def apply(target: type[AnySpecialist]) -> type[AnySpecialist]:
        return _default.register(target, name=name, replace=replace)

    return apply(cls) if cls is not None else apply
