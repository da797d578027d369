"""`Services.call` and `Services.in_thread`: store calls made on the event loop where SQLite
answers them at once, in worker threads otherwise, with the request's context, never abandoned."""

from __future__ import annotations

import asyncio
import contextvars
import threading

from ayeto.api.services import Services
from ayeto.config import Settings
from ayeto.store import Store

REQUEST: contextvars.ContextVar[str] = contextvars.ContextVar("request", default="none")


def services(store: Store) -> Services:
    return Services.of(store, Settings())


def test_a_call_runs_in_another_thread_with_the_callers_context(store: Store) -> None:
    shared = services(store)

    async def request() -> str:
        REQUEST.set("r-1")
        return await shared.in_thread(REQUEST.get)

    assert asyncio.run(request()) == "r-1"
    assert asyncio.run(shared.in_thread(threading.get_ident)) != threading.get_ident()


def test_a_cancelled_call_is_waited_for_before_the_cancellation_goes_on(store: Store) -> None:
    shared = services(store)
    started, release = threading.Event(), threading.Event()
    steps: list[str] = []

    def slow() -> None:
        started.set()
        release.wait(5)
        steps.append("call ended")

    async def request() -> None:
        try:
            await shared.in_thread(slow)
        except asyncio.CancelledError:
            steps.append("cancelled")
            raise

    async def main() -> None:
        task = asyncio.create_task(request())
        await asyncio.to_thread(started.wait, 5)
        task.cancel()
        await asyncio.sleep(0.05)
        # The request stays in its call while the thread works, however often it is cancelled.
        task.cancel()
        await asyncio.sleep(0.05)
        assert steps == []
        assert not task.done()
        release.set()
        try:
            await task
        except asyncio.CancelledError:
            steps.append("task cancelled")

    asyncio.run(main())
    assert steps == ["call ended", "cancelled", "task cancelled"]
