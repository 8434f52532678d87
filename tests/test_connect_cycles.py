"""200 connect/disconnect cycles against one remote: sockets, tasks, threads and memory return to baseline."""

from __future__ import annotations

import json

import pytest

from benchmarks.cycles import run_cycles
from tests.conftest import ARTIFACTS


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_two_hundred_cycles_leave_no_sockets_tasks_threads_or_subscribers_behind() -> None:
    result = await run_cycles(200)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "connect-cycles.json").write_text(json.dumps(result, indent=2))
    growth = result["growth"]
    assert result["after"]["remote_subscribers"] == 0  # every call was torn down on the remote too
    assert growth["open_fds"] <= 0 and growth["asyncio_tasks"] <= 0 and growth["threads"] <= 0, growth
    # memory: allocator warm-up is a few MiB; a leak of one frame per cycle would be 200 x 60 KiB = 12 MiB more
    assert growth["rss_mib"] < 24, growth
