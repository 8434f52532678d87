"""media.events.Event: several listeners, in order, one failing listener does not silence the others."""

from __future__ import annotations

import asyncio
import logging

import pytest

from media.events import Event


def test_every_listener_hears_each_emit_in_subscription_order() -> None:
    heard: list[str] = []
    event: Event[[int]] = Event("count")
    event.connect(lambda n: heard.append(f"a{n}"))
    second = event.connect(lambda n: heard.append(f"b{n}"))
    event.emit(1)
    event.disconnect(second)
    event.emit(2)
    assert heard == ["a1", "b1", "a2"]
    assert len(event) == 1


def test_a_failing_listener_is_logged_and_the_rest_still_run(caplog: pytest.LogCaptureFixture) -> None:
    heard: list[int] = []
    event: Event[[int]] = Event("count")

    def broken(n: int) -> None:
        raise ValueError("boom")

    event.connect(broken)
    event.connect(heard.append)
    with caplog.at_level(logging.ERROR):
        event.emit(7)
    assert heard == [7]
    assert "a listener of count failed" in caplog.text


async def test_coroutine_listeners_run_as_tasks() -> None:
    done = asyncio.Event()
    heard: list[str] = []
    event: Event[[str]] = Event("said")

    async def listener(text: str) -> None:
        heard.append(text)
        done.set()

    event.connect(listener)
    event.emit("hello")
    await asyncio.wait_for(done.wait(), 5)
    assert heard == ["hello"]
