"""Micro-batching: concurrent calls coalesced into one encoder forward pass.

A transformer forward pass over 16 texts costs far less than 16 passes over one text, and on
a CPU concurrent passes only fight over the same cores. So at most ``max_passes`` passes run at
a time (one by default: a pass already uses every core through onnxruntime's threads); callers
that arrive meanwhile queue, and the next free caller leads: it takes everyone queued, runs one
pass over all their texts and hands each caller its rows.

A leader waits up to ``max_wait_s`` for company only when the previous pass served several
callers (they are likely to come back at once); a lone caller never waits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = ["MicroBatcher"]

Vectors = npt.NDArray[np.float32]


@dataclass
class _Request:
    texts: Sequence[str]
    # Set once: when the result (or error) is ready, or when the caller is asked to lead.
    wake: threading.Event = field(default_factory=threading.Event)
    done: bool = False
    result: Vectors | None = None
    error: BaseException | None = None


class MicroBatcher:
    """Coalesces concurrent ``encode`` calls; thread-safe, no background thread.

    Each waiting caller sleeps on its own event and is woken once (a broadcast to every
    waiter on each arrival cost more than the batching saved with 32 callers on 2 cores)."""

    def __init__(
        self,
        encode: Callable[[Sequence[str]], Vectors],
        *,
        max_wait_s: float = 0.002,
        max_batch: int = 64,
        max_passes: int = 1,
    ) -> None:
        if max_passes < 1:
            raise ValueError(f"max_passes must be at least 1, got {max_passes}")
        self._encode = encode
        self._max_wait_s = max_wait_s
        self._max_batch = max_batch
        self._max_passes = max_passes
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)  # wakes a leader gathering company
        self._queue: list[_Request] = []
        self._collecting = False  # a leader is gathering the next batch
        self._running = 0  # forward passes in progress
        self._last_callers = 1  # callers served by the latest pass
        self.passes = 0  # forward passes run (for benchmarks and tests)

    def __call__(self, texts: Sequence[str]) -> Vectors:
        request = _Request(texts)
        with self._lock:
            self._queue.append(request)
            lead = self._may_lead()
            if lead:
                self._collecting = True
            elif self._collecting:
                self._arrived.notify()
        if not lead:
            request.wake.wait()
            lead = not request.done  # woken to lead the next pass
        if lead:
            request.wake.clear()
            self._lead(request)
            request.wake.wait()
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    def _may_lead(self) -> bool:
        return not self._collecting and self._running < self._max_passes

    def _lead(self, own: _Request) -> None:
        deadline = time.monotonic() + self._max_wait_s
        with self._lock:
            company = min(self._last_callers, self._max_batch)
            while len(self._queue) < company and self._queued_texts() < self._max_batch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._arrived.wait(remaining)
            batch = self._take(own)
            self._collecting = False
            self._running += 1
            self._last_callers = len(batch)
            self.passes += 1
            self._promote()
        try:
            texts = [t for r in batch for t in r.texts]
            vectors = self._encode(texts)
            start = 0
            for r in batch:
                r.result = vectors[start : start + len(r.texts)]
                start += len(r.texts)
        except BaseException as exc:  # every waiter must learn of the failure, not hang
            for r in batch:
                r.error = exc
        finally:
            with self._lock:
                self._running -= 1
                self._promote()
            for r in batch:
                r.done = True
                r.wake.set()

    def _promote(self) -> None:
        """Ask the oldest queued caller to lead the next pass, if one may run now."""
        if self._queue and self._may_lead():
            self._collecting = True
            self._queue[0].wake.set()

    def _queued_texts(self) -> int:
        return sum(len(r.texts) for r in self._queue)

    def _take(self, own: _Request) -> list[_Request]:
        """The leader's own request (it has no one else to run it), then the oldest queued
        requests while they fit in ``max_batch`` texts."""
        self._queue.remove(own)
        batch, count = [own], len(own.texts)
        while self._queue and count + len(self._queue[0].texts) <= self._max_batch:
            request = self._queue.pop(0)
            batch.append(request)
            count += len(request.texts)
        return batch
