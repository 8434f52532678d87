"""``avatar control ACTION``: drive a running ``avatar local``/``avatar demo`` from a hotkey tool or a shell."""

from __future__ import annotations

import argparse
import http.client
import json
import sys
from pathlib import Path
from typing import Any

from avatar.options import add_config_flag, load_settings
from peer_local.control import ACTIONS
from peer_local.control_secret import ControlSecretError, read_secret, secret_path
from peer_local.settings import InChargeSettings

TIMEOUT_S = 5.0


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "control",
        help="take over, hand back, mute, unmute or skip the running clone (or print its state)",
        description="Call the control endpoint of the `avatar local` (or `avatar demo`) running on this machine, "
        "with this run's secret read from the file it wrote (readable by you only). Prints the new state as JSON. "
        'A hotkey tool can do the same with: curl -X POST -H "Authorization: Bearer $(cat SECRET_FILE)" '
        "http://127.0.0.1:8766/control/take-over",
    )
    parser.add_argument("action", choices=[*ACTIONS, "state"], help="what to do; state only prints the state")
    port = parser.add_argument(
        "--port", type=int, dest="control_port", help="the endpoint's port, as given to avatar local"
    )
    port.shown_default = InChargeSettings.model_fields["control_port"].default  # type: ignore[attr-defined]
    parser.add_argument(
        "--secret-file", type=Path, metavar="PATH", help="the secret file (unset: the one avatar local wrote)"
    )
    add_config_flag(parser)
    parser.set_defaults(func=run)


def call(port: int, secret: str, action: str) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) of one request to the endpoint on 127.0.0.1:``port``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
    try:
        method, path = ("GET", "/control") if action == "state" else ("POST", f"/control/{action}")
        connection.request(method, path, headers={"Authorization": f"Bearer {secret}"})
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    try:
        body = json.loads(raw)
    except ValueError:
        body = {"error": raw.decode("utf-8", "replace")[:200]}
    return response.status, body if isinstance(body, dict) else {"error": str(body)}


def run(args: argparse.Namespace) -> int:
    settings = load_settings(InChargeSettings, args, "local", {"control_port": args.control_port})
    if settings is None:
        return 2
    port = settings.control_port
    if not 0 < port < 65536:
        print("avatar control: --port must be the endpoint's port (1-65535)", file=sys.stderr)
        return 2
    try:
        secret = read_secret(port, path=args.secret_file)
    except ControlSecretError as exc:
        print(f"avatar control: {exc}", file=sys.stderr)
        return 1
    try:
        status, body = call(port, secret, args.action)
    except ConnectionRefusedError:
        print(
            f"avatar control: nothing listens on 127.0.0.1:{port}: is `avatar local` running "
            f"(its secret file {args.secret_file or secret_path(port)} is left from an earlier run)?",
            file=sys.stderr,
        )
        return 1
    except (OSError, http.client.HTTPException) as exc:
        print(f"avatar control: 127.0.0.1:{port} did not answer: {exc}", file=sys.stderr)
        return 1
    if status != 200:
        hint = " (the secret file is not this run's: is another program on this port?)" if status == 401 else ""
        print(f"avatar control: refused ({status}): {body.get('error', body)}{hint}", file=sys.stderr)
        return 1
    print(json.dumps(body))
    return 0
