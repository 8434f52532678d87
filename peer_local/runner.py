"""Runs ``avatar local``: the laptop (peer_local/app.py) with an optional time limit and measurement."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import statistics
from pathlib import Path

from media.measure import TestPatternMeter, summary_ms
from peer_local.app import LocalApp
from peer_local.settings import LocalSettings
from signaling.server import install_stop_signals

logger = logging.getLogger(__name__)

PING_INTERVAL_S = 0.2


class LocalRun:
    """The laptop (:class:`LocalApp`), stopping on a signal or after ``duration`` seconds of media; with
    ``measure``, the remote's test pattern is read and latency figures written there on exit."""

    def __init__(
        self,
        settings: LocalSettings,
        duration: float | None,
        measure: Path | None,
        warmup_s: float = 2.0,
        explicit_input: bool = True,
        explicit_devices: frozenset[str] = frozenset(),
    ) -> None:
        self.settings = settings
        self.duration = duration
        self.measure = measure
        self.warmup_s = warmup_s
        self.meter: TestPatternMeter | None = None
        self.rtts_ms: list[float] = []
        self.app = LocalApp(settings, explicit_input, explicit_devices)
        self.peer = self.app.peer

    async def main(self) -> None:
        stop = asyncio.Event()
        install_stop_signals(stop)
        await self.app.start()
        peer_task = asyncio.create_task(self.peer.run(stop), name="local-peer")
        helpers: list[asyncio.Task[object]] = []
        if self.duration is not None or self.measure is not None:
            helpers.append(asyncio.create_task(self._timed(stop), name="local-timer"))
        if self.app.listener is not None:
            helpers.append(asyncio.create_task(self.app.listen(), name="local-listener"))
        try:
            await peer_task
        finally:
            stop.set()
            for task in helpers:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.app.close()
            if self.measure is not None:
                self._write_measurement()

    async def _timed(self, stop: asyncio.Event) -> None:
        session = await self.peer.wait_session()
        await session.media_started.wait()
        if self.measure is not None:
            await asyncio.sleep(self.warmup_s)
            self.meter = TestPatternMeter()
            self.peer.sinks.append(self.meter)
            session.sinks.append(self.meter)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.duration if self.duration is not None else float("inf"))
        while loop.time() < deadline and not stop.is_set():
            endpoint = self.peer.endpoint
            if self.measure is not None and endpoint is not None and endpoint.is_open:
                with contextlib.suppress(TimeoutError, ConnectionError):
                    self.rtts_ms.append(await endpoint.ping(timeout_s=1.0))
            await asyncio.sleep(min(PING_INTERVAL_S, max(0.0, deadline - loop.time())))
        stop.set()

    def _write_measurement(self) -> None:
        assert self.measure is not None
        report: dict[str, object] = self.meter.report() if self.meter else {"error": "no media received"}
        report["datachannel_rtt_ms"] = summary_ms(self.rtts_ms)
        if self.rtts_ms:
            report["datachannel_rtt_ms_mean"] = round(statistics.fmean(self.rtts_ms), 2)
        self.measure.parent.mkdir(parents=True, exist_ok=True)
        self.measure.write_text(json.dumps(report, indent=2))
        logger.info("measurement written to %s", self.measure)
