"""An event loop in a daemon thread, for the blocking API (``Orchestrator.run``).

``asyncio.run`` per call would start the MCP servers and load the models again each time;
a loop that lives as long as the orchestrator keeps them open between blocking calls.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar, cast

__all__ = ["LoopThread"]

T = TypeVar("T")


class LoopThread:
    """An event loop running in its own daemon thread; coroutines are submitted to it.

    A daemon thread, so that a loop nobody closed never holds the interpreter open; its
    owner closes it with :meth:`stop` (explicitly, or from a finalizer at exit, which runs
    while daemon threads still run).
    """

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        while True:
            try:
                self.loop.run_forever()
                return  # stopped by `stop`
            except (KeyboardInterrupt, SystemExit):
                # A task raised it (asyncio lets these two out of the loop) and holds it as
                # its result: the loop goes on, and whoever awaits that task receives it.
                continue

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self.loop.is_closed()

    def in_loop(self) -> bool:
        """Whether the caller runs on this loop's thread."""
        return threading.current_thread() is self._thread

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for its result (Ctrl-C cancels it there)."""

        async def guarded() -> tuple[T | None, BaseException | None]:
            # asyncio re-raises KeyboardInterrupt and SystemExit out of the loop itself,
            # which would end the thread and leave the caller waiting: carried back instead.
            try:
                return await coro, None
            except (KeyboardInterrupt, SystemExit) as exc:
                return None, exc

        future = asyncio.run_coroutine_threadsafe(guarded(), self.loop)
        try:
            value, stopped = future.result(timeout)
        except (KeyboardInterrupt, concurrent.futures.TimeoutError):
            future.cancel()
            raise
        if stopped is not None:
            raise stopped
        return cast(T, value)

    def stop(
        self, closing: Callable[[], Awaitable[None]] | None = None, timeout: float = 30.0
    ) -> None:
        """Await ``closing()`` on the loop, then stop the loop and end the thread.

        Called from the loop's own thread (a finalizer that the garbage collector runs
        there), it schedules the same and returns without waiting.
        """
        if self.loop.is_closed():
            return

        async def finish() -> None:
            try:
                if closing is not None:
                    await closing()
            finally:
                await self.loop.shutdown_asyncgens()

        if self.in_loop():
            task = self.loop.create_task(finish())
            task.add_done_callback(lambda _task: self.loop.stop())
            return
        if self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(finish(), self.loop).result(timeout)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self._thread.join(timeout)
        if not self._thread.is_alive():
            self.loop.close()
