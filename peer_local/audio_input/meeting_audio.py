"""What the meeting says: a loopback recording of the computer's default output through SoundCard (WASAPI
loopback on Windows, the default sink's monitor source on PulseAudio/PipeWire), following the default output
when it changes (a headset plugged in), never the virtual cable's own loopback (the clone would hear itself),
with Stereo Mix as the named fallback.

SoundCard's facts used here (soundcard/mediafoundation.py, soundcard/pulseaudio.py): ``all_microphones(
include_loopback=True)`` lists one loopback "microphone" per output, with the output's id and name on Windows
(IMMDevice::GetId, PKEY_Device_FriendlyName) and as the ``<sink>.monitor`` source on PulseAudio; a recorder
converts any rate in WASAPI shared mode (AUTOCONVERTPCM) and returns zeros while nothing plays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from peer_local.audio_input.base import AudioChunk, AudioInputError
from peer_local.audio_input.resampling import CaptureQueue, chunks_at_16k

logger = logging.getLogger(__name__)

CAPTURE_RATE = 48_000
BLOCK_FRAMES = 960  # 20 ms
QUEUE_BLOCKS = 250  # 5 s; beyond that the oldest audio is dropped and logged
FOLLOW_POLL_S = 1.0  # how often the default output is looked up
MAX_FAILURES = 4  # devices that failed to record before the source gives up

# the clone's own output: recording its loopback would make the clone hear itself
VIRTUAL_CABLE_HINTS = ("cable input", "cable in 16", "vb-audio", "voicemeeter", "avatar_mic")
# Stereo Mix as Realtek's and Creative's drivers name it, in English and in localised Windows installations
STEREO_MIX_NAMES = (
    "stereo mix",
    "stereomix",  # German, Dutch
    "mixage stéréo",  # French
    "mezcla estéreo",  # Spanish
    "missaggio stereo",  # Italian
    "mixagem estéreo",  # Portuguese (Brazil)
    "miks stereo",  # Polish
    "стерео микшер",  # Russian
    "ステレオ ミキサー",  # Japanese
    "立体声混音",  # Chinese (simplified)
    "what u hear",  # Creative
    "wave out mix",
)
DEFAULT_OUTPUT_FIX = (
    "set your speakers or headset as the default output (Windows: Settings > System > Sound > Output; "
    "Linux: pactl set-default-sink NAME)"
)


class SoundCardUnavailableError(AudioInputError):
    """SoundCard cannot load here (no sound server, an unsupported system)."""


@dataclass(frozen=True)
class Endpoint:
    """An output or input as SoundCard lists it."""

    id: str
    name: str
    isloopback: bool = False

    @property
    def is_virtual_cable(self) -> bool:
        text = f"{self.name} {self.id}".lower()
        return any(hint in text for hint in VIRTUAL_CABLE_HINTS)

    @property
    def is_stereo_mix(self) -> bool:
        return not self.isloopback and any(name in self.name.lower() for name in STEREO_MIX_NAMES)


@dataclass(frozen=True)
class MeetingAudioChoice:
    """One way to hear the meeting: the default output's loopback (followed when the default changes), or
    Stereo Mix."""

    endpoint: Endpoint
    kind: str  # "loopback" | "stereo mix"
    output: Endpoint | None = None  # the output it records

    @property
    def follows_default(self) -> bool:
        return self.kind == "loopback"

    def describe(self) -> str:
        if self.kind == "loopback":
            return f"loopback of the default output '{self.output.name if self.output else self.endpoint.name}'"
        return f"Stereo Mix '{self.endpoint.name}' (fallback)"


def choose_meeting_audio(default_output: Endpoint | None, microphones: Sequence[Endpoint]) -> list[MeetingAudioChoice]:
    """The ways to hear the meeting, best first: the default output's loopback, then Stereo Mix. Raises
    :class:`AudioInputError` with the fix when there is none, or when the default output is the clone's own
    virtual cable (the meeting would play into it and the clone would hear itself)."""
    if default_output is not None and default_output.is_virtual_cable:
        raise AudioInputError(
            f"the default output is the clone's own virtual cable '{default_output.name}': the clone would hear "
            f"itself; {DEFAULT_OUTPUT_FIX}"
        )
    choices: list[MeetingAudioChoice] = []
    if default_output is not None:
        loopback = next(
            (m for m in microphones if m.isloopback and m.id in (default_output.id, f"{default_output.id}.monitor")),
            None,
        )
        if loopback is not None:
            choices.append(MeetingAudioChoice(loopback, "loopback", default_output))
    choices += [MeetingAudioChoice(m, "stereo mix") for m in microphones if m.is_stereo_mix]
    if not choices:
        what = "no default output" if default_output is None else f"no loopback of '{default_output.name}'"
        raise AudioInputError(
            f"cannot hear the meeting: {what} and no Stereo Mix; {DEFAULT_OUTPUT_FIX}, or on Windows enable "
            "Stereo Mix (Sound settings > More sound settings > Recording > Show Disabled Devices)"
        )
    return choices


def load_soundcard() -> ModuleType:
    """Import SoundCard (it connects to the sound server on import), turning any failure into a clear error."""
    argv = sys.argv
    if argv[:1] == ["-c"] and len(argv) < 2:
        # SoundCard 0.4.6 names its PulseAudio client after sys.argv[1] when run as `python -c CODE`, and fails
        # on import (IndexError) when there is no further argument (pulseaudio.py, _infer_program_name)
        sys.argv = [*argv, "avatar"]
    try:
        import soundcard
    except Exception as exc:  # an AssertionError without PulseAudio, OSError without libpulse, NotImplementedError
        raise SoundCardUnavailableError(
            f"SoundCard cannot reach the sound system ({type(exc).__name__}: {exc})"
        ) from exc
    finally:
        sys.argv = argv
    return soundcard


def soundcard_endpoints(sc: Any) -> tuple[Endpoint | None, list[Endpoint]]:
    """The default output and every input (loopbacks included) as SoundCard lists them now."""
    try:
        speaker = sc.default_speaker()
        default: Endpoint | None = Endpoint(str(speaker.id), str(speaker.name))
    except Exception as exc:  # no output device at all (a COM error on Windows, IndexError on PulseAudio)
        logger.debug("no default output: %s", exc)
        default = None
    try:
        microphones = [Endpoint(str(m.id), str(m.name), bool(m.isloopback)) for m in sc.all_microphones(True)]
    except Exception as exc:
        raise AudioInputError(f"cannot list inputs through SoundCard: {exc}") from exc
    return default, microphones


def meeting_audio_choices(sc: Any | None = None) -> list[MeetingAudioChoice]:
    """The ways to hear the meeting on this computer now (see :func:`choose_meeting_audio`)."""
    return choose_meeting_audio(*soundcard_endpoints(sc if sc is not None else load_soundcard()))


def _default_output_id(sc: Any) -> str | None:
    try:
        return str(sc.default_speaker().id)
    except Exception:
        return None


class LoopbackAudioSource:
    """Records the meeting (:func:`meeting_audio_choices`) in a thread, 16 kHz mono chunks on the event loop;
    re-chooses when the default output changes."""

    def __init__(self, soundcard: Any | None = None, follow_poll_s: float = FOLLOW_POLL_S) -> None:
        self._sc = soundcard if soundcard is not None else load_soundcard()
        self.choices = meeting_audio_choices(self._sc)  # a clear error now, not once the call is up
        self.current: MeetingAudioChoice = self.choices[0]
        self.name = f"loopback:{self.current.endpoint.name}"
        self.follow_poll_s = follow_poll_s
        self.switches = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        loop = asyncio.get_running_loop()
        queue: CaptureQueue = asyncio.Queue(maxsize=QUEUE_BLOCKS)
        start = time.perf_counter()

        def put(item: tuple[np.ndarray, float] | BaseException) -> None:
            if queue.full():
                queue.get_nowait()
                logger.warning("meeting audio is not being consumed fast enough; dropping 20 ms")
            queue.put_nowait(item)

        def deliver(item: tuple[np.ndarray, float] | BaseException) -> None:
            if not self._stop.is_set():
                with contextlib.suppress(RuntimeError):  # the loop closed while this block was recorded
                    loop.call_soon_threadsafe(put, item)

        self._thread = threading.Thread(target=self._capture, args=(deliver, start), name="meeting-audio", daemon=True)
        self._thread.start()
        try:
            async for chunk in chunks_at_16k(queue, CAPTURE_RATE, lambda: self.current.endpoint.name):
                yield chunk
        finally:
            await self.close()

    def _capture(self, deliver: Any, start: float) -> None:
        """The capture thread: record the current choice; on a failure try the next one (Stereo Mix)."""
        failures: list[str] = []
        index = 0
        while not self._stop.is_set():
            choice = self.choices[index]
            try:
                switched = self._record(choice, deliver, start)
            except Exception as exc:  # SoundCard raises RuntimeError/AssertionError/IndexError for a bad device
                failures.append(f"{choice.describe()}: {exc}")
                logger.warning("cannot record %s: %s", choice.describe(), exc)
                fresh = self._fresh_choices()
                if len(failures) < MAX_FAILURES and fresh and fresh[0].endpoint.id != choice.endpoint.id:
                    self.choices, index = fresh, 0  # the device went away and the default moved on: follow it
                    continue
                index += 1
                if index >= len(self.choices) or len(failures) >= MAX_FAILURES:
                    deliver(AudioInputError("cannot record the meeting: " + "; ".join(failures)))
                    return
                continue
            if switched:
                index, failures = 0, []

    def _record(self, choice: MeetingAudioChoice, deliver: Any, start: float) -> bool:
        """Record ``choice`` until closed (False) or until the default output changes (True)."""
        microphone = self._sc.get_microphone(id=choice.endpoint.id, include_loopback=True)
        followed = choice.output.id if choice.output is not None else _default_output_id(self._sc)
        with microphone.recorder(samplerate=CAPTURE_RATE, blocksize=BLOCK_FRAMES) as recorder:
            self.current = choice
            self.name = f"loopback:{choice.endpoint.name}"
            logger.info("hearing the meeting through %s", choice.describe())
            check_at = time.perf_counter() + self.follow_poll_s
            while not self._stop.is_set():
                data = recorder.record(numframes=BLOCK_FRAMES)
                deliver((np.asarray(data, dtype=np.float32), time.perf_counter() - start - BLOCK_FRAMES / CAPTURE_RATE))
                if time.perf_counter() >= check_at:
                    check_at = time.perf_counter() + self.follow_poll_s
                    now = _default_output_id(self._sc)
                    if now != followed:
                        followed = now
                        if self._rechoose():
                            return True
        return False

    def _fresh_choices(self) -> list[MeetingAudioChoice] | None:
        try:
            return meeting_audio_choices(self._sc)
        except AudioInputError:
            return None

    def _rechoose(self) -> bool:
        """The default output changed: choose again; False (keep recording) if the new default cannot be heard."""
        try:
            choices = meeting_audio_choices(self._sc)
        except AudioInputError as exc:
            logger.warning("the default output changed, keeping %s: %s", self.current.describe(), exc)
            return False
        self.choices = choices
        self.switches += 1
        logger.info("the default output changed: now %s", choices[0].describe())
        return True

    async def close(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            # the recorder returns within a block (WASAPI gives zeros while nothing plays; a monitor always flows)
            await asyncio.to_thread(thread.join, 2.0)
