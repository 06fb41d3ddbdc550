"""Online learning off the request path: a binding with ``learn: {every: N}`` is distilled in
the background after every N new teacher labels.

The distillation runs as its own process (``orchestrator distill NAME``): it never shares the
event loop or the interpreter lock with the runs, and it finishes even when the process that
started it (a one-shot ``orchestrator run``) has exited. Only the counting happens on the
request path. A lock file in the artifact store keeps one distillation per artifact at a time;
the promotion is written to the store's version index, so later runs (and every other
process) serve the promoted version. Each distillation is an event: started, promoted, kept
(the gate refused the candidate), skipped or failed, logged and kept in :attr:`events`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from orchestrator._errors import ConfigurationError
from orchestrator._logging import get_logger
from orchestrator._postgres import DATABASE_URL_ENV
from orchestrator._traces import TraceStore
from orchestrator.graph.model import SpecialistBinding
from orchestrator.specialists.artifacts import DEFAULT_STORE
from orchestrator.specialists.versions import VersionStore, parse_version_ref

__all__ = [
    "BackgroundLearner",
    "LearningEvent",
    "LearningPlan",
    "learning_plans",
    "waiting_labels",
]

log = get_logger(__name__)


@dataclass(frozen=True)
class LearningPlan:
    """What one binding learns: its artifact, where versions are kept, how often."""

    binding: str
    artifact: str
    store: Path
    every: int
    self_labels: bool = False
    """The worker runs ``distill --self-labels``."""


@dataclass(frozen=True)
class LearningEvent:
    binding: str
    artifact: str
    kind: Literal["started", "promoted", "kept", "skipped", "failed"]
    detail: str
    candidate: str | None = None
    at: float = field(default_factory=time.time)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class BackgroundLearner:
    """Counts teacher labels per binding and starts distillations in worker processes."""

    def __init__(
        self,
        plans: Sequence[LearningPlan],
        *,
        state_dir: str | Path,
        command: Sequence[str] | None = None,
        counted: dict[str, int] | None = None,
        database_url: str | None = None,
    ) -> None:
        """``command`` is how a distillation starts (default: this Python running
        ``orchestrator distill``); ``counted`` are labels already waiting per binding;
        ``database_url``: the traces are in this PostgreSQL database, not the state
        directory (the worker gets it in its environment, never on its command line)."""
        self.plans = {plan.binding: plan for plan in plans}
        self.state_dir = Path(state_dir)
        self._database_url = database_url
        self.command = list(command or [sys.executable, "-m", "orchestrator"])
        self.events: list[LearningEvent] = []
        self._counts = dict.fromkeys(self.plans, 0) | (counted or {})
        self._lock = threading.Lock()
        self._watchers: list[threading.Thread] = []
        #: Bumped on every promotion: a long-lived orchestrator reloads its tools when it moves.
        self.generation = 0

    def taught(self, binding: str, count: int) -> None:
        """Called on the request path: never waits for anything but a counter."""
        plan = self.plans.get(binding)
        if plan is None:
            return
        with self._lock:
            self._counts[binding] += count
            if self._counts[binding] < plan.every:
                return
            self._counts[binding] = 0
        self._start(plan)

    def _lock_file(self, plan: LearningPlan) -> Path:
        return plan.store / f".{plan.artifact}.distilling"

    def _claim(self, plan: LearningPlan) -> bool:
        """Take the artifact's distillation lock (one at a time, across processes)."""
        lock = self._lock_file(plan)
        lock.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                with contextlib.suppress(OSError, ValueError):
                    if _alive(int(lock.read_text().strip() or "0")):
                        return False
                lock.unlink(missing_ok=True)  # left by a distillation that died
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(str(os.getpid()))
            return True
        return False

    def _record(self, event: LearningEvent) -> None:
        with self._lock:
            self.events.append(event)
        log.info(
            "distillation " + event.kind,
            binding=event.binding,
            artifact=event.artifact,
            candidate=event.candidate,
            detail=event.detail,
        )

    def _start(self, plan: LearningPlan) -> None:
        if not self._claim(plan):
            self._record(
                LearningEvent(
                    plan.binding, plan.artifact, "skipped", "a distillation is already running"
                )
            )
            return
        logs = self.state_dir / "learning"
        logs.mkdir(parents=True, exist_ok=True)
        report = logs / f"{plan.artifact}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.json"
        args = [
            *self.command,
            "distill",
            plan.artifact,
            "--store",
            str(plan.store),
            "--state-dir",
            str(self.state_dir),
            "--min-labels",
            str(plan.every),
            "--lock",
            str(self._lock_file(plan)),
            "--json",
            *(["--self-labels"] if plan.self_labels else []),
        ]
        # `orchestrator distill` reads the traces where this orchestrator records them.
        env = {k: v for k, v in os.environ.items() if k != DATABASE_URL_ENV}
        if self._database_url:
            env[DATABASE_URL_ENV] = self._database_url
        try:
            with report.open("w") as out:
                process = subprocess.Popen(
                    args,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # outlives a one-shot `orchestrator run`
                    env=env,
                )
        except OSError as exc:
            self._lock_file(plan).unlink(missing_ok=True)
            self._record(LearningEvent(plan.binding, plan.artifact, "failed", str(exc)))
            return
        # The worker process owns the lock now; it removes it when it ends.
        self._lock_file(plan).write_text(str(process.pid))
        self._record(
            LearningEvent(plan.binding, plan.artifact, "started", f"pid {process.pid}: {report}")
        )
        watcher = threading.Thread(
            target=self._watch, args=(plan, process, report), daemon=True, name="learner"
        )
        watcher.start()
        self._watchers.append(watcher)

    def _watch(self, plan: LearningPlan, process: subprocess.Popen[bytes], report: Path) -> None:
        code = process.wait()
        try:
            outcome: dict[str, Any] = json.loads(report.read_text())
        except (OSError, ValueError):
            tail = report.read_text(errors="replace")[-300:] if report.is_file() else ""
            self._record(
                LearningEvent(plan.binding, plan.artifact, "failed", f"exit {code}: {tail}")
            )
            return
        if not outcome.get("distilled"):
            kind: Literal["promoted", "kept", "skipped"] = "skipped"
        else:
            kind = "promoted" if outcome.get("promoted") else "kept"
        if kind == "promoted":
            with self._lock:
                self.generation += 1
        self._record(
            LearningEvent(
                plan.binding,
                plan.artifact,
                kind,
                str(outcome.get("reason", "")),
                candidate=outcome.get("candidate"),
            )
        )

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the distillations started so far; False if some still run at `timeout`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for watcher in list(self._watchers):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            watcher.join(left)
        return not any(w.is_alive() for w in self._watchers)


def learning_plans(bindings: Mapping[str, SpecialistBinding]) -> list[LearningPlan]:
    """The bindings that learn, with their artifact and store; a pinned version (``NAME@3``)
    cannot follow new ones and is refused."""
    plans: list[LearningPlan] = []
    for key, binding in bindings.items():
        if binding.learn is None:
            continue
        name = str(binding.options["artifact"])
        ref = parse_version_ref(name)
        if ref is None or ref.version is not None:
            raise ConfigurationError(
                f"specialist {key!r}: `learn` promotes new versions of a named artifact; "
                f"name it without a version (not {name!r}) so that the binding follows them"
            )
        store = Path(str(binding.options.get("store") or DEFAULT_STORE))
        plans.append(
            LearningPlan(key, ref.name, store, binding.learn.every, binding.learn.self_labels)
        )
    return plans


def waiting_labels(plan: LearningPlan, traces: TraceStore) -> int:
    """Teacher labels recorded since the artifact's newest version was written."""
    versions = VersionStore(plan.store)
    numbers = versions.versions(plan.artifact)
    card = versions.card(plan.artifact, numbers[-1]) if numbers else {}
    created = card.get("created")
    since = dt.datetime.fromisoformat(created).timestamp() if isinstance(created, str) else None
    return traces.count(plan.artifact, since=since, taught_only=True)
