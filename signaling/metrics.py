"""Counters of the signaling server, rendered as Prometheus text."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class SignalingMetrics:
    """Monotonic counters plus gauges read at render time."""

    connections_total: int = 0
    messages_relayed_total: int = 0
    auth_failures_total: int = 0
    connections_refused_total: int = 0
    messages_rejected: Counter[str] = field(default_factory=Counter)

    def render(self, *, active_connections: int, rooms: int, uptime_s: float) -> str:
        """Prometheus exposition format (text/plain; version=0.0.4)."""
        lines = [
            "# HELP avatar_signaling_connections_total WebSocket connections accepted.",
            "# TYPE avatar_signaling_connections_total counter",
            f"avatar_signaling_connections_total {self.connections_total}",
            "# HELP avatar_signaling_connections_active WebSocket connections open now.",
            "# TYPE avatar_signaling_connections_active gauge",
            f"avatar_signaling_connections_active {active_connections}",
            "# HELP avatar_signaling_rooms Rooms with at least one peer.",
            "# TYPE avatar_signaling_rooms gauge",
            f"avatar_signaling_rooms {rooms}",
            "# HELP avatar_signaling_messages_relayed_total Messages relayed between peers.",
            "# TYPE avatar_signaling_messages_relayed_total counter",
            f"avatar_signaling_messages_relayed_total {self.messages_relayed_total}",
            "# HELP avatar_signaling_auth_failures_total Connections refused for a missing or wrong token.",
            "# TYPE avatar_signaling_auth_failures_total counter",
            f"avatar_signaling_auth_failures_total {self.auth_failures_total}",
            "# HELP avatar_signaling_connections_refused_total Connections refused by limits or bad parameters.",
            "# TYPE avatar_signaling_connections_refused_total counter",
            f"avatar_signaling_connections_refused_total {self.connections_refused_total}",
            "# HELP avatar_signaling_messages_rejected_total Client messages answered with an error.",
            "# TYPE avatar_signaling_messages_rejected_total counter",
        ]
        for reason in sorted(self.messages_rejected) or ["bad-json"]:
            lines.append(
                f'avatar_signaling_messages_rejected_total{{reason="{reason}"}} {self.messages_rejected[reason]}'
            )
        lines += [
            "# HELP avatar_signaling_uptime_seconds Seconds since the server started.",
            "# TYPE avatar_signaling_uptime_seconds gauge",
            f"avatar_signaling_uptime_seconds {uptime_s:.3f}",
        ]
        return "\n".join(lines) + "\n"
