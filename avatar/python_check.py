"""The Python the laptop peer needs: on Windows 3.11.9 or newer within 3.11."""

from __future__ import annotations

import sys

# CPython before 3.11.9: on Windows the Proactor event loop stops receiving on a UDP socket after an
# ICMP "port unreachable" (WSAECONNRESET), so a WebRTC call freezes the first time a peer's port closes.
WINDOWS_MINIMUM = (3, 11, 9)


def windows_python_problem(version: tuple[int, int, int] | None = None, platform: str | None = None) -> str | None:
    """Why this Python cannot run a call on Windows, with the fix; None when it can (or not on Windows)."""
    major, minor, micro = version or tuple(sys.version_info[:3])
    if (platform or sys.platform) != "win32" or (major, minor, micro) >= WINDOWS_MINIMUM:
        return None
    return (
        f"Python {major}.{minor}.{micro} on Windows stops receiving UDP after an ICMP port-unreachable (fixed in "
        "3.11.9), which freezes a call. Reinstall with a newer 3.11 (uv fetches one if needed): "
        'uv sync --python ">=3.11.9,<3.12"'
    )
