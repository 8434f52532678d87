#!/usr/bin/env bash
# The GPU box's entrypoint: `avatar box` fetches missing models, starts signaling, coturn, vLLM and Fish Speech,
# waits for their health endpoints, then runs the avatar peer; it restarts crashed sidecars and reports them on
# GET /healthz. Settings: AVATAR_* variables (AVATAR_TOKEN is required) or extra flags passed to the container.
set -euo pipefail
if [[ -z "${AVATAR_TOKEN:-}" ]]; then
  echo "entrypoint: set AVATAR_TOKEN (the laptop presents the same token)" >&2
  exit 2
fi
exec avatar box "$@"
