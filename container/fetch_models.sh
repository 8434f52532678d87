#!/usr/bin/env bash
# Fetch MuseTalk's (UNet, VAE, whisper-tiny, DWPose landmarks) and Fish Speech's files into the models volume
# (idempotent; `avatar box` does it at start; the list is peer_remote/box/model_fetch.py).
set -euo pipefail
exec avatar fetch-models --models-dir "${AVATAR_MODELS_DIR:-/models}" "$@"
