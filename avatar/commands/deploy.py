"""``avatar deploy vast search|create|status|destroy``: the GPU box on Vast.ai in one command."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from peer_remote.box.plan import laptop_command
from peer_remote.box.vast import (
    BoxRequest,
    DeployError,
    OfferFilter,
    VastDeployer,
    component_summary,
    endpoint_of,
    read_healthz,
)


def register(subparsers: Any) -> None:
    deploy = subparsers.add_parser(
        "deploy",
        help="deploy the GPU box (peer_remote) to a cloud; `avatar deploy vast --help`",
        description="Deploy the GPU box. The Vast.ai API key comes from VAST_API_KEY or `vastai set api-key`.",
    )
    clouds = deploy.add_subparsers(dest="cloud", metavar="CLOUD", required=True)
    vast = clouds.add_parser("vast", help="Vast.ai", description="Rent an RTX 4090 on Vast.ai and run the box on it.")
    vast.add_argument("--api-url", help="Vast.ai API base URL (unset: the SDK's)")
    ops = vast.add_subparsers(dest="op", metavar="OPERATION", required=True)

    search = ops.add_parser("search", help="list matching offers, cheapest first")
    _add_filter_flags(search)
    search.add_argument("--limit", type=int, default=5, help="offers to list")
    search.set_defaults(func=run_search)

    create = ops.add_parser(
        "create",
        help="rent an offer, start the box, wait until healthy, print the laptop's command",
        description="Needs AVATAR_TOKEN (the laptop uses the same one). HF_TOKEN is passed on when set "
        "(MamayLM/Gemma weights need an accepted licence).",
    )
    _add_filter_flags(create)
    create.add_argument("--offer", type=int, help="offer id to rent (unset: the cheapest matching one)")
    create.add_argument("--image", default=os.environ.get("AVATAR_IMAGE"), help="the box image (or AVATAR_IMAGE)")
    create.add_argument("--disk", type=float, default=80, help="disk in GB for the image and models")
    create.add_argument("--room", default="demo", help="room the avatar joins")
    create.add_argument("--no-wait", action="store_true", help="return once the instance is created")
    create.add_argument("--timeout", type=float, default=2400, help="seconds to wait for health")
    create.add_argument("--poll", type=float, default=10, help="seconds between status checks")
    create.set_defaults(func=run_create)

    status = ops.add_parser("status", help="this account's avatar boxes, or one box with its component health")
    status.add_argument("instance", type=int, nargs="?", help="instance id (unset: list every avatar box)")
    status.set_defaults(func=run_status)

    destroy = ops.add_parser("destroy", help="destroy an instance (stops billing; the models volume goes with it)")
    destroy.add_argument("instance", type=int, help="instance id")
    destroy.set_defaults(func=run_destroy)


def _add_filter_flags(parser: argparse.ArgumentParser) -> None:
    defaults = OfferFilter()
    parser.add_argument("--gpu", default=defaults.gpu_name, help="GPU model")
    parser.add_argument("--max-price", type=float, default=defaults.max_dollars_per_hour, help="max $/hour")
    parser.add_argument("--min-reliability", type=float, default=defaults.min_reliability, help="min host reliability")


def _filter(args: argparse.Namespace) -> OfferFilter:
    return OfferFilter(gpu_name=args.gpu, max_dollars_per_hour=args.max_price, min_reliability=args.min_reliability)


def _offer_line(offer: dict[str, Any]) -> str:
    return (
        f"{offer.get('id'):>10}  {offer.get('gpu_name', '?'):<10} ${offer.get('dph_total', 0):.3f}/h  "
        f"reliability {offer.get('reliability', offer.get('reliability2', 0)):.3f}  "
        f"down {offer.get('inet_down', 0):.0f} Mbit/s  up {offer.get('inet_up', 0):.0f} Mbit/s  "
        f"ports {offer.get('direct_port_count', '?')}  {offer.get('geolocation', '')}"
    )


def _fail(exc: Exception) -> int:
    print(f"avatar deploy vast: {exc}", file=sys.stderr)
    return 1


def run_search(args: argparse.Namespace) -> int:
    try:
        offers = VastDeployer(args.api_url).search(_filter(args), args.limit)
    except DeployError as exc:
        return _fail(exc)
    if not offers:
        print("no offers match; try a higher --max-price or a lower --min-reliability")
        return 1
    for offer in offers:
        print(_offer_line(offer))
    return 0


def run_create(args: argparse.Namespace) -> int:
    token = os.environ.get("AVATAR_TOKEN")
    if not token:
        print(
            "avatar deploy vast: set AVATAR_TOKEN first (the box and the laptop share it), e.g. "
            'export AVATAR_TOKEN="$(python -c "import secrets; print(secrets.token_urlsafe(24))")"',
            file=sys.stderr,
        )
        return 2
    if not args.image:
        print(
            "avatar deploy vast: pass --image (the pushed container/Dockerfile image) or set AVATAR_IMAGE",
            file=sys.stderr,
        )
        return 2
    extra = {"HF_TOKEN": os.environ["HF_TOKEN"]} if os.environ.get("HF_TOKEN") else {}
    request = BoxRequest(image=args.image, token=token, disk_gb=args.disk, room=args.room, extra_env=extra)
    try:
        deployer = VastDeployer(args.api_url)
        offer = args.offer
        if offer is None:
            offers = deployer.search(_filter(args), 1)
            if not offers:
                print("avatar deploy vast: no offer matches the filters", file=sys.stderr)
                return 1
            print(f"renting {_offer_line(offers[0]).strip()}")
            offer = int(offers[0]["id"])
        instance_id = deployer.create(offer, request)
        print(f"created instance {instance_id} (destroy it with: avatar deploy vast destroy {instance_id})", flush=True)
        if args.no_wait:
            return 0
        endpoint = deployer.wait_healthy(
            instance_id, args.timeout, args.poll, report=lambda line: print(line, flush=True)
        )
    except DeployError as exc:
        return _fail(exc)
    print("on the laptop, with the same AVATAR_TOKEN:")
    print(f"  {laptop_command(endpoint.signaling_url, args.room)}")
    return 0


def run_status(args: argparse.Namespace) -> int:
    try:
        deployer = VastDeployer(args.api_url)
        instances = [deployer.instance(args.instance)] if args.instance else deployer.ours()
    except DeployError as exc:
        return _fail(exc)
    if not instances:
        print("no avatar boxes in this account")
    for instance in instances:
        endpoint = endpoint_of(instance)
        where = endpoint.signaling_url if endpoint else "no public port yet"
        print(f"{instance.get('id')}: {instance.get('actual_status')} ${instance.get('dph_total', 0):.3f}/h {where}")
        if args.instance and endpoint:
            health = read_healthz(endpoint.signaling_url)
            print(f"  health {component_summary(health)}" if health else "  health: signaling not answering")
            for name, component in ((health or {}).get("components") or {}).items():
                print(f"    {name}: {component.get('state')}, restarts {component.get('restarts', 0)}")
    return 0


def run_destroy(args: argparse.Namespace) -> int:
    try:
        VastDeployer(args.api_url).destroy(args.instance)
    except DeployError as exc:
        return _fail(exc)
    print(f"destroyed instance {args.instance}")
    return 0
