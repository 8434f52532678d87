"""Runs ``avatar local``: the local peer with its sinks, an optional time limit and measurement."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import statistics
from pathlib import Path

from media.measure import TestPatternMeter, summary_ms
from peer_local.service import LocalPeer
from peer_local.settings import LocalSettings
from peer_local.sinks import MediaSink, NullSink, RecorderSink
from signaling.server import install_stop_signals

logger = logging.getLogger(__name__)

PING_INTERVAL_S = 0.2


class LocalRun:
    """The local peer plus sinks, stopping on a signal or after ``duration`` seconds of media."""

    def __init__(
        self, settings: LocalSettings, duration: float | None, measure: Path | None, warmup_s: float = 2.0
    ) -> None:
        self.settings = settings
        self.duration = duration
        self.measure = measure
        self.warmup_s = warmup_s
        self.meter: TestPatternMeter | None = None
        self.rtts_ms: list[float] = []
        sinks: list[MediaSink] = [NullSink()]
        if settings.record:
            sinks.append(RecorderSink(settings.record))
        self.sinks = sinks
        self.peer = LocalPeer(settings, sinks)

    async def main(self) -> None:
        stop = asyncio.Event()
        install_stop_signals(stop)
        tasks = [asyncio.create_task(self.peer.run(stop), name="local-peer")]
        if self.duration is not None or self.measure is not None:
            tasks.append(asyncio.create_task(self._timed(stop), name="local-timer"))
        try:
            await asyncio.wait([tasks[0]], return_when=asyncio.FIRST_COMPLETED)
            tasks[0].result()
        finally:
            stop.set()
            for task in tasks[1:]:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for sink in self.sinks:
                await sink.close()
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
