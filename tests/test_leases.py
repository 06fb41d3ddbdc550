"""Thread leases: one runner per thread, a dead holder taken over, the start request kept."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator import ThreadBusyError
from orchestrator._leases import MemoryThreadLeases, SqliteThreadLeases, ThreadLeases
from orchestrator._leases_postgres import PostgresThreadLeases

StoreFactory = Callable[..., ThreadLeases]


@pytest.fixture(params=["sqlite", "postgres"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """Stores shared by processes: each call opens another handle on the same one."""
    if request.param == "sqlite":
        return lambda ttl_s=30.0: SqliteThreadLeases(tmp_path / "threads.sqlite", ttl_s=ttl_s)
    url = request.getfixturevalue("database_url")
    return lambda ttl_s=30.0: PostgresThreadLeases(url=url, ttl_s=ttl_s)


@pytest.fixture(params=["sqlite", "postgres", "memory"])
def leases(request: pytest.FixtureRequest, tmp_path: Path) -> ThreadLeases:
    if request.param == "sqlite":
        return SqliteThreadLeases(tmp_path / "threads.sqlite")
    if request.param == "postgres":
        return PostgresThreadLeases(url=request.getfixturevalue("database_url"))
    return MemoryThreadLeases()


def test_a_held_thread_refuses_a_second_runner_and_frees_on_return(leases: ThreadLeases) -> None:
    async def scenario() -> None:
        async with leases.hold("t1"):
            with pytest.raises(ThreadBusyError, match="'t1' is being run by another runner"):
                async with leases.hold("t1"):
                    pass
            async with leases.hold("t2"):  # other threads are free
                pass
        async with leases.hold("t1"):  # released on return
            pass
        await leases.aclose()

    asyncio.run(scenario())


def test_a_waiting_runner_gets_the_lease_when_the_holder_returns(leases: ThreadLeases) -> None:
    order: list[str] = []

    async def first() -> None:
        async with leases.hold("t"):
            order.append("first in")
            await asyncio.sleep(0.2)
            order.append("first out")

    async def second() -> None:
        await asyncio.sleep(0.05)
        async with leases.hold("t", wait_s=5.0):
            order.append("second in")

    async def scenario() -> None:
        await leases.start_request("t")  # a store that connects does so before the race
        await asyncio.gather(first(), second())
        await leases.aclose()

    asyncio.run(scenario())
    assert order == ["first in", "first out", "second in"]


def test_the_start_request_is_kept_once(shared: StoreFactory) -> None:
    leases = shared()

    async def scenario() -> None:
        assert await leases.start_request("t") is None
        async with leases.hold("t", request={"text": "first", "metadata": {}}):
            pass
        async with leases.hold("t", request={"text": "second", "metadata": {}}):
            pass
        assert await leases.start_request("t") == {"text": "first", "metadata": {}}
        await leases.aclose()

    asyncio.run(scenario())


def test_this_process_s_leases_keep_a_request_only_while_its_run_holds_it() -> None:
    leases = MemoryThreadLeases()

    async def scenario() -> None:
        async with leases.hold("t", request={"text": "go", "metadata": {}}):
            assert await leases.start_request("t") == {"text": "go", "metadata": {}}
        assert await leases.start_request("t") is None

    asyncio.run(scenario())


def test_an_expired_lease_of_another_host_is_taken_over(shared: StoreFactory) -> None:
    async def scenario() -> None:
        store = shared()
        assert await store.acquire("t", "elsewhere:1:abc", 0.3, None) is None
        assert await store.acquire("t", "mine:2:def", 30.0, None) == "elsewhere:1:abc"
        await asyncio.sleep(0.35)
        assert await store.acquire("t", "mine:2:def", 30.0, None) is None
        await store.aclose()

    asyncio.run(scenario())


def test_the_heartbeat_keeps_a_long_run_s_lease(shared: StoreFactory) -> None:
    async def scenario() -> None:
        store = shared(ttl_s=0.3)
        async with store.hold("t"):
            await asyncio.sleep(0.7)  # over twice the lease's life: renewed meanwhile
            assert await store.acquire("t", "other:1:x", 0.3, None) is not None
        await store.aclose()

    asyncio.run(scenario())


HOLDER = """\
import asyncio, sys, time
from orchestrator._leases import SqliteThreadLeases
from orchestrator._leases_postgres import PostgresThreadLeases
async def main():
    where = sys.argv[1]
    store = PostgresThreadLeases(url=where) if "://" in where else SqliteThreadLeases(where)
    async with store.hold("t"):
        print("held", flush=True)
        await asyncio.sleep(600)
asyncio.run(main())
"""


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_killed_holder_on_this_host_is_taken_over_at_once(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    where = (
        request.getfixturevalue("database_url") if kind == "postgres" else str(tmp_path / "t.db")
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, where], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        store: ThreadLeases = (
            PostgresThreadLeases(url=where) if kind == "postgres" else SqliteThreadLeases(where)
        )
        with pytest.raises(ThreadBusyError):
            asyncio.run(_hold_once(store))
    finally:
        proc.kill()  # SIGKILL: no release, the lease stays in the file until it expires
        proc.wait()
        if proc.stdout:
            proc.stdout.close()
    asyncio.run(_hold_once(store))  # its process is gone: taken without waiting 30 s
    asyncio.run(store.aclose())


async def _hold_once(store: ThreadLeases) -> None:
    async with store.hold("t"):
        pass
