"""Versions of a trained artifact in the artifact store, and which one is promoted.

Layout beside today's unversioned artifacts (``<store>/<name>/``)::

    <store>/<name>@1/            one artifact directory per version (never changed once written)
    <store>/<name>@2/
    <store>/<name>.versions.json which version is promoted, and every promotion and rollback

A binding names ``NAME@3`` to pin a version, or ``NAME`` to follow the promoted one. A store
without an index for ``NAME`` serves the unversioned ``<store>/<name>/`` as before; the first
version written adopts it as ``NAME@1`` (a copy: a path that points at it keeps working).

Each version's directory appears in one rename, so a reader never sees half of one; the index
is rewritten atomically under a lock, so a background distillation and a person running
``specialists promote`` cannot lose each other's change.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator._errors import ConfigurationError

__all__ = [
    "VersionRef",
    "VersionStore",
    "parse_version_ref",
]

_REF = re.compile(r"^(?P<name>[^@/\\]+)@(?P<version>\d+)$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class VersionRef:
    """``NAME@N`` (``version`` set) or ``NAME`` (follow the promoted version)."""

    name: str
    version: int | None = None

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"


def parse_version_ref(text: str) -> VersionRef | None:
    """``NAME@N`` -> a pinned reference; a plain name -> a floating one; anything else (a
    path) -> ``None``."""
    match = _REF.match(text)
    if match:
        return VersionRef(match["name"], int(match["version"]))
    return VersionRef(text) if _NAME.match(text) else None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


class VersionStore:
    """The versions of artifacts kept under one store directory."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # -- reading ---------------------------------------------------------------------------
    def path(self, name: str, version: int) -> Path:
        return self.root / f"{name}@{version}"

    def _index_file(self, name: str) -> Path:
        return self.root / f"{name}.versions.json"

    def index(self, name: str) -> dict[str, Any]:
        """The index of `name`: ``{"promoted": N | None, "history": [...]}`` (empty when the
        artifact has no versions)."""
        file = self._index_file(name)
        if not file.is_file():
            return {"promoted": None, "history": []}
        try:
            raw = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"{file}: unreadable version index ({exc}); restore it or delete it to serve "
                f"the unversioned {self.root / name}"
            ) from None
        if not isinstance(raw, dict) or "history" not in raw:
            raise ConfigurationError(f"{file}: not a version index (no 'history')")
        return raw

    def versions(self, name: str) -> list[int]:
        """The version numbers written for `name`, oldest first."""
        if not self.root.is_dir():
            return []
        found = []
        for entry in self.root.iterdir():
            match = _REF.match(entry.name)
            if match and match["name"] == name and (entry / "artifact.json").is_file():
                found.append(int(match["version"]))
        return sorted(found)

    def promoted(self, name: str) -> int | None:
        value = self.index(name).get("promoted")
        return int(value) if value is not None else None

    def resolve(self, ref: VersionRef) -> Path | None:
        """The directory `ref` names, or ``None`` when the store holds no versions of it (the
        caller then looks for the unversioned artifact)."""
        if ref.version is not None:
            path = self.path(ref.name, ref.version)
            if (path / "artifact.json").is_file():
                return path
            have = self.versions(ref.name)
            raise ConfigurationError(
                f"no version {ref} in {self.root} (versions: "
                f"{', '.join(f'@{v}' for v in have) or 'none'}); list them with "
                f"`orchestrator specialists versions {ref.name}`"
            )
        promoted = self.promoted(ref.name)
        return self.path(ref.name, promoted) if promoted is not None else None

    def stamp(self, name: str) -> tuple[int, int] | None:
        """Which index of `name` is in place (``None``: it has none); cheap enough to ask on
        every request. Every write replaces the file, so a change shows in the inode even
        within one tick of the clock."""
        try:
            info = self._index_file(name).stat()
        except OSError:
            return None
        return info.st_ino, info.st_mtime_ns

    def card(self, name: str, version: int) -> dict[str, Any]:
        file = self.path(name, version) / "model_card.json"
        if not file.is_file():
            return {}
        card: dict[str, Any] = json.loads(file.read_text(encoding="utf-8"))
        return card

    # -- writing ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[dict[str, Any]]:
        """The index of `name`, locked against other writers; written back atomically."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / f".{name}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                index = self.index(name)
                yield index
                fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{name}.versions.tmp-")
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(json.dumps(index, indent=2) + "\n")
                os.replace(tmp, self._index_file(name))
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def add(self, name: str, folder: Path, stamp: Callable[[Path, int], None] | None = None) -> int:
        """Move a finished artifact directory in as the next version of `name`; returns its
        number. The folder must sit in the store (a rename, not a copy); ``stamp(folder, N)``
        writes the number into it first (the model card)."""
        with self._locked(name) as index:
            self._adopt_unversioned(name, index)
            version = max(self.versions(name), default=0) + 1
            if stamp is not None:
                stamp(folder, version)
            folder.rename(self.path(name, version))
            index["history"].append({"event": "added", "version": version, "at": _now()})
        return version

    def staging(self, name: str) -> Path:
        """A new path inside the store (not yet created) to write a version into before
        :meth:`add` renames it in place."""
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root / f".{name}.new-{uuid.uuid4().hex}"

    def _adopt_unversioned(self, name: str, index: dict[str, Any]) -> None:
        legacy = self.root / name
        if self.versions(name) or not (legacy / "artifact.json").is_file():
            return
        staging = self.staging(name)
        shutil.copytree(legacy, staging)
        staging.rename(self.path(name, 1))
        index["promoted"] = 1
        index["history"].append(
            {"event": "adopted", "version": 1, "from": str(legacy), "at": _now()}
        )

    def promote(self, name: str, version: int, *, reason: str = "") -> int | None:
        """Make `version` the one that ``NAME`` serves; returns the previously promoted one."""
        if version not in self.versions(name):
            raise ConfigurationError(
                f"no version {name}@{version} in {self.root}; list them with "
                f"`orchestrator specialists versions {name}`"
            )
        with self._locked(name) as index:
            previous = index.get("promoted")
            index["promoted"] = version
            index["history"].append(
                {"event": "promoted", "version": version, "previous": previous, "at": _now()}
                | ({"reason": reason} if reason else {})
            )
        return int(previous) if previous is not None else None

    def rollback(self, name: str, *, reason: str = "") -> int:
        """Serve the version that was promoted before the current one; returns its number."""
        with self._locked(name) as index:
            current = index.get("promoted")
            if current is None:
                raise ConfigurationError(
                    f"{name} has no promoted version in {self.root}; nothing to roll back"
                )
            target = _previous_promoted(index["history"], int(current))
            if target is None:
                raise ConfigurationError(
                    f"{name}@{current} is the first version promoted; there is nothing to roll "
                    "back to"
                )
            index["promoted"] = target
            index["history"].append(
                {"event": "rolled_back", "version": target, "previous": current, "at": _now()}
                | ({"reason": reason} if reason else {})
            )
        return target


def _previous_promoted(history: list[dict[str, Any]], current: int) -> int | None:
    """The version served before `current` became promoted, following earlier rollbacks."""
    # Replay the history as a stack of served versions: a promotion pushes, a rollback pops.
    served: list[int] = []
    for event in history:
        if event["event"] in ("promoted", "adopted"):
            served.append(int(event["version"]))
        elif event["event"] == "rolled_back" and served:
            served.pop()
            if not served or served[-1] != int(event["version"]):
                served.append(int(event["version"]))
    while served and served[-1] == current:
        served.pop()
    return served[-1] if served else None
