"""A registry of named plugins, read lazily from an entry point group.

Specialists and backends are both found this way: built-ins and third-party packages declare
entry points in the same group, and code can register objects directly. Nothing is imported
until a name is asked for, and a graph file only ever names what is registered.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from importlib import import_module
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from orchestrator._errors import ConfigurationError

__all__ = ["EntryPointRegistry"]

T = TypeVar("T")


class EntryPointRegistry(ABC, Generic[T]):
    """Maps names to plugins; the entry point group is read once, on first use.

    ``builtins`` maps names to ``module:attribute`` targets too: they are used when the
    package runs from a source tree without installed metadata.
    """

    group: str
    builtins: dict[str, str]
    kind: str  # "specialist", "backend": how messages name what is registered

    def __init__(self, *, load_entry_points: bool = True) -> None:
        self._loaded: dict[str, T] = {}
        self._pending: dict[str, str] = {}
        self._entry_points_read = not load_entry_points
        self._lock = threading.Lock()

    @abstractmethod
    def _accept(self, value: object, origin: str) -> T:
        """`value` as a plugin of this registry, or a ConfigurationError naming `origin`."""

    @abstractmethod
    def _unknown(self, name: str) -> Exception:
        """The error for a name nothing is registered under."""

    def _add(self, key: str, value: T, *, replace: bool) -> T:
        self._read_entry_points()
        with self._lock:
            taken = key in self._pending or (key in self._loaded and self._loaded[key] is not value)
            if not replace and taken:
                raise ConfigurationError(
                    f"{self.kind} {key!r} is already registered; pass replace=True to override it"
                )
            self._loaded[key] = value
            self._pending.pop(key, None)
        return value

    def _read_entry_points(self) -> None:
        with self._lock:
            if self._entry_points_read:
                return
            self._entry_points_read = True
            found = {ep.name: ep.value for ep in entry_points(group=self.group)}
            for key, target in {**self.builtins, **found}.items():
                if key not in self._loaded:
                    self._pending[key] = target

    def names(self) -> list[str]:
        self._read_entry_points()
        return sorted({*self._loaded, *self._pending})

    def get(self, name: str) -> T:
        self._read_entry_points()
        if name in self._loaded:
            return self._loaded[name]
        target = self._pending.get(name)
        if target is None:
            raise self._unknown(name)
        module, _, attribute = target.partition(":")
        value = self._accept(getattr(import_module(module), attribute), f"entry point {target!r}")
        with self._lock:
            self._loaded[name] = value
            self._pending.pop(name, None)
        return value
