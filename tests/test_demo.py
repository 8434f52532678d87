"""``avatar demo`` end to end as a real process."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import av
import pytest

pytestmark = pytest.mark.slow


async def test_demo_prints_a_join_url_and_records_the_stream(tmp_path: Path) -> None:
    out = tmp_path / "demo.mp4"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATAR_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "peer_local.cli",
        "demo",
        "--port",
        "0",
        "--no-browser",
        "--duration",
        "3",
        "--record",
        str(out),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    async with asyncio.timeout(60):
        stdout, _ = await process.communicate()
    assert process.returncode == 0
    assert re.search(r"http://127\.0\.0\.1:\d+/\?room=demo&token=\S{20,}", stdout.decode())
    with av.open(str(out)) as container:
        video = container.streams.video[0]
        frames = sum(1 for _ in container.decode(video=0))
        assert container.streams.audio
    assert frames >= 60  # ~3 s at 25 fps
    assert video.codec_context.width == 512
