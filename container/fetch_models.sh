#!/usr/bin/env bash
# Fetch MuseTalk's and Fish Speech's files into the models volume (idempotent; `avatar box` does it at start).
set -euo pipefail
exec avatar fetch-models --models-dir "${AVATAR_MODELS_DIR:-/models}" "$@"
