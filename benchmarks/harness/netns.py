"""Two network namespaces joined through a third that runs the impairment bridge (root, iproute2, ethtool)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import TracebackType

from benchmarks.harness.impairment import ImpairmentSpec

logger = logging.getLogger(__name__)


class NetnsError(RuntimeError):
    """Namespaces cannot be made here (not root, no iproute2/ethtool)."""


def _run(*argv: str) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
    if result.returncode != 0:
        raise NetnsError(f"{' '.join(argv)}: {result.stderr.strip() or result.returncode}")


class ImpairedNetwork:
    """Namespaces ``A`` and ``B`` (one address each in 10.<subnet>.0.0/24) joined by an impairing bridge."""

    def __init__(self, spec: ImpairmentSpec, subnet: int = 204, seed: int = 1, workdir: Path | None = None) -> None:
        tag = f"{os.getpid() % 100000}"
        self.a, self.m, self.b = f"avi{tag}a", f"avi{tag}m", f"avi{tag}b"
        self.a_ip, self.b_ip = f"10.{subnet}.0.1", f"10.{subnet}.0.2"
        self.spec = spec
        self.seed = seed
        self.workdir = workdir or Path("/tmp")
        self.stats_path = self.workdir / f"impairment-{tag}.json"
        self._bridge: asyncio.subprocess.Process | None = None

    @staticmethod
    def available() -> str | None:
        """None if this machine can build the network, else why not."""
        if os.geteuid() != 0:
            return "needs root for network namespaces"
        for tool in ("ip", "ethtool"):
            if shutil.which(tool) is None:
                return f"needs {tool}"
        return None

    def exec_argv(self, namespace: str, *argv: str) -> list[str]:
        return ["ip", "netns", "exec", namespace, *argv]

    def _create(self) -> None:
        for ns in (self.a, self.m, self.b):
            _run("ip", "netns", "add", ns)
        for side, ns, ip in (("a", self.a, self.a_ip), ("b", self.b, self.b_ip)):
            inner, outer = f"i{side}", f"m{side}"
            _run("ip", "link", "add", inner, "netns", ns, "type", "veth", "peer", "name", outer, "netns", self.m)
            _run("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", inner)
            _run("ip", "-n", ns, "link", "set", "dev", inner, "up")
            _run("ip", "-n", ns, "link", "set", "dev", "lo", "up")
            _run(
                "ip", "-n", self.m, "link", "set", "dev", outer, "up", "promisc", "on"
            )  # "dev": "ma" would read as "master"
            # the bridge copies frames as they are: checksums must be complete and no frame above the MTU
            for namespace, device in ((ns, inner), (self.m, outer)):
                _run(
                    *self.exec_argv(
                        namespace, "ethtool", "-K", device, "tx", "off", "tso", "off", "gso", "off", "gro", "off"
                    )
                )

    def _destroy(self) -> None:
        for ns in (self.a, self.m, self.b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20, check=False)

    async def __aenter__(self) -> ImpairedNetwork:
        problem = self.available()
        if problem:
            raise NetnsError(problem)
        self._destroy()  # leftovers of a killed run
        try:
            await asyncio.to_thread(self._create)
            self._bridge = await asyncio.create_subprocess_exec(
                *self.exec_argv(
                    self.m,
                    sys.executable,
                    "-m",
                    "benchmarks.harness.impairment",
                    "ma",
                    "mb",
                    "--spec",
                    self.spec.describe(),
                    "--seed",
                    str(self.seed),
                    "--stats",
                    str(self.stats_path),
                ),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            assert self._bridge.stdout is not None
            async with asyncio.timeout(20):
                line = await self._bridge.stdout.readline()  # it prints once its sockets are bound
            if not line.startswith(b"bridging"):
                raise NetnsError(f"impairment bridge did not start: {line.decode(errors='replace')}")
        except BaseException:
            await self._stop_bridge()
            await asyncio.to_thread(self._destroy)
            raise
        return self

    async def _stop_bridge(self) -> None:
        if self._bridge is None or self._bridge.returncode is not None:
            return
        self._bridge.terminate()
        try:
            async with asyncio.timeout(10):
                await self._bridge.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self._bridge.kill()
            await self._bridge.wait()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._stop_bridge()
        await asyncio.to_thread(self._destroy)
