"""Which stack a `simcity sc1` run attacks: `--stack`, or `auto` (Compose when a Docker engine
answers, else the embedded local stack; an explicit `--target-url` means the user's own app)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from rich.console import Console

from harness.auth import service_key_from_env
from harness.errors import UsageError
from harness.stacks.base import Stack

if TYPE_CHECKING:
    from harness.stacks.external import ExternalTarget


def docker_engine_answers() -> bool:
    try:
        import docker  # noqa: PLC0415

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means: no usable engine here
        return False


def choose_stack(args: argparse.Namespace, console: Console) -> Stack:
    kind = args.stack
    distance = getattr(args, "distance_map", None) or {}
    if kind == "auto":
        if distance and not args.target_url:
            kind = "local"
            console.print("stack auto: --distance is a setting of the embedded local stack, using it")
        elif args.target_url:
            kind = "external"
        elif compose_available():
            kind = "compose"
            console.print("stack auto: a Docker engine answers, using the Compose stack")
        else:
            kind = "local"
            console.print("stack auto: no Docker engine reachable, using the embedded local stack")
    # Not every caller's namespace has the app-db flags (`make_stack` builds its own).
    db_upstream, db_listen = getattr(args, "db_upstream", None), getattr(args, "db_listen", None)
    if kind != "external" and (args.target_url or args.rest_url or args.restart_cmd or args.proxy
                               or db_upstream or db_listen):
        raise UsageError("--target-url, --rest-url, --restart-cmd, --proxy, --db-upstream and --db-listen "
                         "are for --stack external")
    if distance and kind != "local":
        raise UsageError(f"--distance is for --stack local (this run would use {kind})")
    if kind == "external":
        external = external_target(args).stack(service_key_from_env())
        if external.db_proxy_notice:  # before the start, which waits for the app to reach its database
            console.print(external.db_proxy_notice, highlight=False, markup=False, soft_wrap=True)
        return external
    if kind == "compose":
        from harness.stacks.compose import ComposeStack  # noqa: PLC0415

        return ComposeStack(args.app_env_map)
    from harness.stacks.local import LocalStack  # noqa: PLC0415

    return LocalStack(args.app_env_map, distance=distance)


def external_target(args: argparse.Namespace) -> "ExternalTarget":
    """The user's own app as `--target-url`, `--rest-url`, ... name it (sc1 and certify alike)."""
    if not args.target_url or not args.rest_url:
        raise UsageError("--stack external needs --target-url and --rest-url")
    from harness.stacks.external import ExternalTarget  # noqa: PLC0415

    return ExternalTarget(args.target_url, args.rest_url, restart_cmd=args.restart_cmd, proxy=args.proxy,
                          db_upstream=getattr(args, "db_upstream", None), db_listen=getattr(args, "db_listen", None),
                          version=getattr(args, "target_version", None),
                          checkout=getattr(args, "target_checkout", None))


def compose_available() -> bool:
    """Compose is usable when an engine answers and the Compose stack is part of this install."""
    try:
        import harness.stacks.compose  # noqa: F401, PLC0415
    except ImportError:
        return False
    return docker_engine_answers()
