"""Micro-batching: concurrent calls coalesced into one encoder forward pass.

A transformer forward pass over 8 texts costs far less than 8 passes over one text, so when
several threads ask at once, the first caller becomes the leader: it waits up to
``max_wait_s`` for others (only while another pass is already running, so a lone caller
never waits), runs one pass over everyone's texts, and hands each caller its rows.
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
    done: threading.Event = field(default_factory=threading.Event)
    result: Vectors | None = None
    error: BaseException | None = None


class MicroBatcher:
    """Coalesces concurrent ``encode`` calls; thread-safe, no background thread."""

    def __init__(
        self,
        encode: Callable[[Sequence[str]], Vectors],
        *,
        max_wait_s: float = 0.002,
        max_batch: int = 64,
    ) -> None:
        self._encode = encode
        self._max_wait_s = max_wait_s
        self._max_batch = max_batch
        self._lock = threading.Condition()
        self._queue: list[_Request] = []
        self._collecting = False  # a leader is gathering the next batch
        self._running = 0  # forward passes in progress
        self.passes = 0  # forward passes run (for benchmarks and tests)

    def __call__(self, texts: Sequence[str]) -> Vectors:
        request = _Request(texts)
        with self._lock:
            self._queue.append(request)
            leader = not self._collecting
            if leader:
                self._collecting = True
            else:
                self._lock.notify_all()
        if leader:
            self._lead()
        request.done.wait()
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    def _lead(self) -> None:
        deadline = time.monotonic() + self._max_wait_s
        with self._lock:
            # Waiting only pays when others are active: then more requests are on their way.
            while self._running and sum(len(r.texts) for r in self._queue) < self._max_batch:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(remaining)
            batch, self._queue = self._queue, []
            self._collecting = False
            self._running += 1
            self.passes += 1
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
            for r in batch:
                r.done.set()
