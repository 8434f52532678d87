"""The laptop's Windows device choices, checked here against device lists shaped as sounddevice and SoundCard
report them on Windows (tests/data/windows_devices_*.json: examples in the libraries' shapes, each file says
where its shape comes from): VB-Cable on WASAPI with auto_convert, DirectSound as the fallback, microphone arrays
with all their channels, and the meeting heard through the default output's loopback, never the cable's."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from peer_local.audio_input.base import AudioInputError
from peer_local.audio_input.devices import (
    AudioDevice,
    capture_channels,
    devices_from,
    name_match,
    resolve_input_device,
    resolve_loopback_device,
)
from peer_local.audio_input.meeting_audio import Endpoint, LoopbackAudioSource, choose_meeting_audio
from peer_local.audio_input.resampling import MonoResampler16k
from peer_local.sinks.virtual_mic import DEFAULT_WINDOWS_DEVICE, VirtualMicSink, find_output_devices
from tests.device_stand_ins import SoundCardStandIn, WindowsOutputStandIn

DATA = Path(__file__).resolve().parent / "data"


def sounddevice_example(name: str) -> list[AudioDevice]:
    recorded = json.loads((DATA / f"windows_devices_sounddevice_{name}.json").read_text())
    return devices_from(recorded["query_hostapis"], recorded["query_devices"])


def soundcard_example(name: str) -> tuple[Endpoint | None, list[Endpoint]]:
    recorded = json.loads((DATA / f"windows_devices_soundcard_{name}.json").read_text())
    speaker = recorded["default_speaker"]
    default = Endpoint(speaker["id"], speaker["name"]) if speaker else None
    return default, [
        Endpoint(m["id"], m["name"], m["isloopback"]) for m in recorded["all_microphones_include_loopback"]
    ]


def test_vb_cable_is_found_on_wasapi_first_then_directsound_then_mmes_truncated_name() -> None:
    devices = sounddevice_example("laptop")
    found = find_output_devices(DEFAULT_WINDOWS_DEVICE, devices, create=False)
    assert [(d.index, d.hostapi) for d in found] == [
        (13, "Windows WASAPI"),
        (11, "Windows DirectSound"),
        (5, "MME"),  # "CABLE Input (VB-Audio Virtual C": the name MME cuts to 31 characters
    ]


def test_names_match_through_mmes_truncation_and_a_localised_endpoint_but_not_the_cables_other_end() -> None:
    assert name_match(DEFAULT_WINDOWS_DEVICE, "CABLE Input (VB-Audio Virtual C") == 3
    assert name_match(DEFAULT_WINDOWS_DEVICE, "Avatar Mic (VB-Audio Virtual Cable)") == 1  # renamed endpoint
    assert name_match(DEFAULT_WINDOWS_DEVICE, "CABLE Output (VB-Audio Virtual Cable)") == 0
    assert name_match("Speakers (Realtek(R) Audio)", "Realtek Digital Output (Realtek(R) Audio)") == 1
    devices = sounddevice_example("laptop")
    localised = [
        AudioDevice(
            d.index, d.name.replace("CABLE Input", "Kabeleingang"), d.hostapi, 0, d.max_output_channels, 48_000.0
        )
        for d in devices
        if d.max_output_channels and "CABLE" in d.name
    ]
    assert find_output_devices(DEFAULT_WINDOWS_DEVICE, localised, create=False)[0].hostapi == "Windows WASAPI"


async def test_the_virtual_mic_opens_wasapi_with_auto_convert_so_a_44_1_khz_cable_takes_48_khz() -> None:
    devices = sounddevice_example("laptop")
    found = find_output_devices(DEFAULT_WINDOWS_DEVICE, devices, create=False)
    outputs = WindowsOutputStandIn(devices)
    sink = VirtualMicSink(found[0], fallbacks=found[1:], stream_factory=outputs)
    sink.start()
    try:
        assert outputs.attempts == [(13, "Windows WASAPI", True)]
        assert sink.device is not None and sink.device.hostapi == "Windows WASAPI"
        assert sink.describe().startswith("CABLE Input (VB-Audio Virtual Cable) (Windows WASAPI), 48000 Hz")
        assert sink.output_latency_s == pytest.approx(0.003)  # the device's latency feeds the camera's delay
    finally:
        await sink.close()


async def test_without_auto_convert_wasapi_refuses_the_rate_which_is_why_it_is_asked_for() -> None:
    devices = sounddevice_example("laptop")
    outputs = WindowsOutputStandIn(devices)
    with pytest.raises(Exception, match="Invalid sample rate"):
        outputs(device=13, samplerate=48_000, blocksize=480, callback=lambda *a: None)


async def test_directsound_is_the_fallback_when_wasapi_will_not_open() -> None:
    devices = sounddevice_example("laptop")
    found = find_output_devices(DEFAULT_WINDOWS_DEVICE, devices, create=False)
    outputs = WindowsOutputStandIn(devices, broken=("Windows WASAPI",))
    sink = VirtualMicSink(found[0], fallbacks=found[1:], stream_factory=outputs)
    sink.start()
    try:
        assert [(index, api) for index, api, _ in outputs.attempts] == [
            (13, "Windows WASAPI"),
            (11, "Windows DirectSound"),
        ]
        assert outputs.attempts[1][2] is False  # WASAPI settings are never handed to DirectSound
        assert sink.device is not None and sink.device.index == 11
        assert sink.output_latency_s == pytest.approx(0.12)
    finally:
        await sink.close()


async def test_when_no_host_api_opens_the_error_lists_each_attempt() -> None:
    devices = sounddevice_example("laptop")
    found = find_output_devices(DEFAULT_WINDOWS_DEVICE, devices, create=False)
    outputs = WindowsOutputStandIn(devices, broken=("Windows WASAPI", "Windows DirectSound", "MME"))
    sink = VirtualMicSink(found[0], fallbacks=found[1:], stream_factory=outputs)
    with pytest.raises(AudioInputError, match=r"(?s)cannot open the virtual microphone.*WASAPI.*DirectSound.*MME"):
        sink.start()


def test_a_microphone_array_is_found_on_wasapi_with_all_four_channels() -> None:
    device = resolve_input_device("Microphone Array", sounddevice_example("laptop"))
    assert (device.index, device.hostapi, device.max_input_channels) == (14, "Windows WASAPI", 4)


def test_inputs_open_with_all_of_a_wasapi_devices_channels_and_at_most_two_elsewhere() -> None:
    devices = {(d.index, d.hostapi): d for d in sounddevice_example("laptop")}
    assert capture_channels(devices[(14, "Windows WASAPI")]) == 4  # WASAPI takes its mix format's count only
    assert capture_channels(devices[(1, "MME")]) == 2
    assert capture_channels(AudioDevice(0, "pulse", "ALSA", 32, 32, 44_100.0)) == 2  # ALSA's pulse lists 32


def test_every_channel_of_a_four_channel_array_reaches_the_mono_mix() -> None:
    """An array whose voice is on channels 3 and 4 (the old code kept channels 1-2 only: silence)."""
    t = np.arange(4_800) / 48_000
    voice = (0.5 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    block = np.zeros((t.size, 4), dtype=np.float32)
    block[:, 2] = voice
    block[:, 3] = voice
    mono = MonoResampler16k().samples(block, 48_000)
    assert np.abs(mono[200:]).max() > 0.2


def test_the_meeting_is_heard_through_the_default_outputs_loopback_not_the_cables() -> None:
    default, microphones = soundcard_example("headset")
    assert microphones[0].name == "CABLE Input (VB-Audio Virtual Cable)" and microphones[0].isloopback  # listed first
    choices = choose_meeting_audio(default, microphones)
    assert (choices[0].kind, choices[0].endpoint.name) == ("loopback", "Headset Earphone (Jabra Evolve2 65)")
    assert choices[0].follows_default
    assert [c.endpoint.name for c in choices[1:]] == ["Stereo Mix (Realtek(R) Audio)"]  # the named fallback
    assert all("CABLE" not in c.endpoint.name for c in choices)


def test_the_cable_as_default_output_is_refused_with_the_fix() -> None:
    with pytest.raises(AudioInputError, match=r"clone would hear itself.*default output"):
        choose_meeting_audio(*soundcard_example("cable_default"))


def test_without_an_output_a_localised_stereo_mix_is_the_fallback() -> None:
    choices = choose_meeting_audio(*soundcard_example("german_no_output"))
    assert [(c.kind, c.endpoint.name) for c in choices] == [("stereo mix", "Stereomix (Realtek(R) Audio)")]
    assert not choices[0].follows_default


def test_nothing_to_hear_the_meeting_with_says_how_to_fix_it() -> None:
    _, microphones = soundcard_example("german_no_output")
    with pytest.raises(AudioInputError, match=r"no default output and no Stereo Mix.*Stereo Mix"):
        choose_meeting_audio(None, [m for m in microphones if "Stereomix" not in m.name])


def example_files() -> list[Any]:
    return sorted(DATA.glob("windows_devices_*.json"))


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.name)
def test_each_example_says_it_is_an_example_and_where_its_shape_comes_from(path: Path) -> None:
    note = json.loads(path.read_text())["note"]
    assert note.startswith("Example, not captured on a live machine") and ".py" in note


def test_without_soundcard_a_loopback_capable_portaudio_never_picks_the_cables_own_loopback() -> None:
    """PortAudio 19.7.1+ lists "[Loopback]" inputs on WASAPI; the cable's comes first in this list."""
    devices = [
        AudioDevice(20, "CABLE Input (VB-Audio Virtual Cable) [Loopback]", "Windows WASAPI", 2, 0, 44_100.0),
        AudioDevice(21, "Speakers (Realtek(R) Audio) [Loopback]", "Windows WASAPI", 2, 0, 48_000.0),
        AudioDevice(3, "Stereo Mix (Realtek(R) Audio)", "MME", 2, 0, 44_100.0),
    ]
    assert resolve_loopback_device(devices).index == 21


def soundcard_listing(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"windows_devices_soundcard_{name}.json").read_text())  # type: ignore[no-any-return]


def speaker(listing: dict[str, Any], name: str) -> dict[str, Any]:
    return next(
        {"id": m["id"], "name": m["name"]} for m in listing["all_microphones_include_loopback"] if m["name"] == name
    )


async def levels_heard(source: LoopbackAudioSource, until: Any, limit: int = 400) -> list[float]:
    """The level of each chunk heard, until ``until(levels)`` holds (bounded by ``limit`` chunks)."""
    levels: list[float] = []
    async with asyncio.timeout(20):
        async for chunk in source.chunks():
            levels.append(round(float(np.median(chunk.samples)), 2))
            if until(levels) or len(levels) >= limit:
                break
    await source.close()
    return levels


async def test_on_windows_the_recording_follows_the_default_output_to_a_plugged_in_headset() -> None:
    listing = soundcard_listing("headset")
    realtek, headset = "Speakers (Realtek(R) Audio)", "Headset Earphone (Jabra Evolve2 65)"
    listing["default_speaker"] = speaker(listing, realtek)
    card = SoundCardStandIn(listing)
    source = LoopbackAudioSource(card, follow_poll_s=0.05)
    assert source.name == f"loopback:{realtek}"

    def plug_in_the_headset_after_a_while(levels: list[float]) -> bool:
        if len(levels) == 10:
            card.default = speaker(listing, headset)
        return levels[-1] == card.level_of(headset)

    levels = await levels_heard(source, plug_in_the_headset_after_a_while)
    assert card.level_of(realtek) in levels and levels[-1] == card.level_of(headset)
    assert card.opened == [realtek, headset] and source.switches == 1
    assert source.name == f"loopback:{headset}"


async def test_on_windows_a_loopback_that_will_not_open_falls_back_to_stereo_mix() -> None:
    listing = soundcard_listing("headset")
    card = SoundCardStandIn(listing, broken=("Headset Earphone (Jabra Evolve2 65)",))
    source = LoopbackAudioSource(card)
    stereo_mix = "Stereo Mix (Realtek(R) Audio)"
    levels = await levels_heard(source, lambda levels: len(levels) >= 5)
    assert card.opened == [stereo_mix] and set(levels[2:]) == {card.level_of(stereo_mix)}
    assert source.current.kind == "stereo mix"


async def test_on_windows_an_unplugged_headset_hands_over_to_the_new_default_output() -> None:
    listing = soundcard_listing("headset")
    realtek, headset = "Speakers (Realtek(R) Audio)", "Headset Earphone (Jabra Evolve2 65)"
    card = SoundCardStandIn(listing)
    source = LoopbackAudioSource(card, follow_poll_s=10.0)  # the failure, not the poll, must notice

    def unplug_after_a_while(levels: list[float]) -> bool:
        if len(levels) == 10:
            card.unplugged.add(headset)
            card.default = speaker(listing, realtek)
        return levels[-1] == card.level_of(realtek)

    levels = await levels_heard(source, unplug_after_a_while)
    assert levels[-1] == card.level_of(realtek) and card.opened == [headset, realtek]
