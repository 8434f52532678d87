"""Events with several listeners, instead of one callback attribute that the last writer overwrites.

As aiortc's ``pc.on("track")``, but typed: an owner declares ``self.turn_ended: Event[Turn] = Event("turn_ended")``,
anyone subscribes with ``owner.turn_ended.connect(listener)`` (and may ``disconnect`` it), and the owner calls
``self.turn_ended.emit(turn)``. Listeners run in subscription order; a listener that raises is logged and does not
stop the others. Coroutine listeners are scheduled as tasks (kept until done) so ``emit`` never blocks.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, ParamSpec

logger = logging.getLogger(__name__)

P = ParamSpec("P")


class Event(Generic[P]):
    """A named event; ``Event[[int, str]]`` passes an int and a str to each listener."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._listeners: list[Callable[P, Any]] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    def connect(self, listener: Callable[P, Any]) -> Callable[P, Any]:
        """Subscribe ``listener`` (returned, so this works as a decorator)."""
        self._listeners.append(listener)
        return listener

    def disconnect(self, listener: Callable[P, Any]) -> None:
        """Unsubscribe ``listener``; unknown listeners are ignored."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def __len__(self) -> int:
        return len(self._listeners)

    def emit(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Call every listener with these arguments."""
        for listener in list(self._listeners):
            try:
                result = listener(*args, **kwargs)
            except Exception:
                logger.exception("a listener of %s failed", self.name)
                continue
            if inspect.isawaitable(result):
                self._schedule(result)

    def cancel_pending(self) -> None:
        """Cancel the coroutine listeners still running (their owner is closing)."""
        for task in list(self._tasks):
            task.cancel()

    def _schedule(self, awaitable: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("a listener of %s failed", self.name, exc_info=task.exception())
