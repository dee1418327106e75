"""`simcity fault apply|heal|status`: drive faults by hand on a running stack, e.g. the one of
`simcity stack up`, while a person pokes at the app.

The proxy is found from `--proxy-url`, else from the env file `simcity stack up` writes
(`.simcity/stack.env`: SIMCITY_PROXY_URL, and the hop -> proxy names SIMCITY_PROXY_CLIENT_APP /
SIMCITY_PROXY_APP_DB; the local stack's names `app` / `app_db` when those are absent).

`apply NAME` takes a toxic type of `toxics.catalog` (latency, timeout, reset_peer, ...), `partition`,
or a fault profile (`toxics/profiles/`, or a .toml path). A name that is both (`latency`) is the
toxic when --attr/--toxicity/--stream is given, else the profile; `toxic:NAME` / `profile:NAME`
say which explicitly. Input is validated before the proxy is contacted: a bad toxic, attribute or
hop is a usage error (exit 2); a proxy that does not answer is infrastructure (exit 3).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from harness.errors import InfrastructureError, UsageError
from harness.stacks.base import HOPS
from toxics import Partition, Toxic, ToxiproxyAPIError, ToxiproxyController, list_profiles, load_profile
from toxics.catalog import DEFAULT_STREAM, REGISTRY
from toxics.control import Effect

ENV_FILE = Path(".simcity") / "stack.env"
HOP_ENV = {"client-app": "SIMCITY_PROXY_CLIENT_APP", "app-db": "SIMCITY_PROXY_APP_DB"}
LOCAL_NAMES = {"client-app": "app", "app-db": "app_db"}
MANUAL_PREFIX = "manual_"  # names of toxics applied by hand, so `status` tells them apart


@dataclass(frozen=True)
class Target:
    proxy_url: str
    names: Mapping[str, str]  # hop -> proxy name

    def proxy_of(self, hop: str) -> str:
        if hop not in self.names:
            raise UsageError(f"hop {hop!r} has no proxy on this stack (known: {', '.join(self.names)})")
        return self.names[hop]


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            values[key] = value
    return values


def find_target(proxy_url: str | None, env_file: Path | None) -> Target:
    path = env_file or ENV_FILE
    env: dict[str, str] = {}
    if path.is_file():
        env = read_env_file(path)
    elif env_file is not None:
        raise UsageError(f"{env_file}: no such env file")
    url = proxy_url or env.get("SIMCITY_PROXY_URL")
    if not url:
        raise InfrastructureError(f"no running stack found: no {path} with SIMCITY_PROXY_URL "
                                  "(start one with `simcity stack up`, or pass --proxy-url)")
    names = {hop: env.get(var) or LOCAL_NAMES[hop] for hop, var in HOP_ENV.items()}
    return Target(url, names)


def parse_attrs(pairs: Sequence[str]) -> dict[str, int]:
    attrs = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--attr wants key=value, got {pair!r}")
        try:
            attrs[key.strip()] = int(value)
        except ValueError:
            raise UsageError(f"--attr {key}: must be an integer, got {value!r}") from None
    return attrs


def plan_apply(name: str, hop: str | None, attrs: Mapping[str, int], toxicity: float | None,
               stream: str | None, toxic_name: str | None) -> list[tuple[str, Effect]]:
    """(hop, effect) pairs to apply, all validated; UsageError on any bad input."""
    if hop is not None and hop not in HOPS:
        raise UsageError(f"--hop must be one of {', '.join(HOPS)}, got {hop!r}")
    kind, _, bare = name.partition(":") if ":" in name else ("", "", name)
    if kind not in ("", "toxic", "profile"):
        raise UsageError(f"{name!r}: prefix must be toxic: or profile:")
    tuned = bool(attrs) or toxicity is not None or stream is not None or toxic_name is not None
    is_profile = bare in list_profiles() or bare.endswith(".toml") or "/" in bare
    is_toxic = bare in REGISTRY or bare == "partition"
    if kind == "toxic" or (kind == "" and is_toxic and (tuned or not is_profile)):
        return [_toxic_plan(bare, hop, attrs, toxicity, stream, toxic_name)]
    if kind == "profile" or is_profile:
        if tuned:
            raise UsageError("--attr, --toxicity, --stream and --name are for a single toxic, not a profile "
                             f"(use toxic:{bare} for the toxic)")
        return _profile_plan(bare, hop)
    known = ", ".join([*REGISTRY, "partition"])
    raise UsageError(f"unknown toxic or profile {bare!r}; toxics: {known}; profiles: {', '.join(list_profiles())}")


def _toxic_plan(type_: str, hop: str | None, attrs: Mapping[str, int], toxicity: float | None,
                stream: str | None, toxic_name: str | None) -> tuple[str, Effect]:
    if hop is None:
        raise UsageError(f"{type_}: --hop client-app|app-db is required for a single toxic")
    if type_ == "partition":
        if attrs or toxicity is not None or stream is not None:
            raise UsageError("partition takes no --attr, --toxicity or --stream")
        return hop, Partition()
    stream = stream or DEFAULT_STREAM
    toxic = Toxic(type=type_, attributes=dict(attrs), stream=stream,
                  toxicity=1.0 if toxicity is None else toxicity,
                  name=toxic_name or f"{MANUAL_PREFIX}{type_}_{stream}")
    return hop, toxic.checked()  # FaultConfigError (a UsageError) names the bad field


def _profile_plan(name: str, hop: str | None) -> list[tuple[str, Effect]]:
    profile = load_profile(name)  # ProfileError is a UsageError
    if not profile.faults:
        raise UsageError(f"profile {profile.name} has no faults (nothing to apply)")
    if hop is None:
        pairs = [(f.hop, f.effect) for f in profile.faults]
    else:
        # A profile may describe a fault on one hop only; its shape then serves the other (as in runs).
        effects = profile.effects(hop) or next((profile.effects(h) for h in profile.hops), ())
        pairs = [(hop, e) for e in effects]
    return [(h, e if isinstance(e, Partition) else replace(e, name=f"{MANUAL_PREFIX}{profile.name}_{e.name}"))
            for h, e in pairs]


def describe(effect: Effect) -> str:
    if isinstance(effect, Partition):
        return "partition"
    attrs = " ".join(f"{k}={v}" for k, v in effect.attributes.items())
    return f"{effect.name}: {effect.type} {effect.stream} toxicity={effect.toxicity:g} {attrs}".rstrip()


def controller(target: Target) -> ToxiproxyController:
    return ToxiproxyController(target.proxy_url, timeout_s=5.0, retry_for_s=2.0)


def packet_loss_note(name: str) -> str | None:
    """A profile's [[packet_loss]] needs the stack's kernel (Compose runs); `fault` drives the proxy only."""
    bare = name.partition(":")[2] if name.startswith(("profile:", "toxic:")) else name
    if bare in REGISTRY or bare == "partition" or name.startswith("toxic:"):
        return None
    try:
        profile = load_profile(bare)
    except UsageError:
        return None
    if not profile.packet_loss:
        return None
    losses = ", ".join(f"{hop} {p:g}" for hop, p in profile.packet_loss)
    return f"note: not applied: the profile's IP packet loss ({losses}) needs kernel access, not the proxy"


def apply(target: Target, plan: Sequence[tuple[str, Effect]]) -> list[str]:
    lines = []
    with _open(target) as ctl:
        for hop, effect in plan:
            proxy = target.proxy_of(hop)
            try:
                ctl.apply(proxy, effect)
            except ToxiproxyAPIError as exc:
                if exc.status == 409:
                    raise UsageError(f"a toxic named {getattr(effect, 'name', '?')} is already on {hop} "
                                     f"(proxy {proxy}); `simcity fault heal --hop {hop}` first, or --name") from None
                raise
            lines.append(f"applied on {hop} (proxy {proxy}): {describe(effect)}")
    return lines


def heal(target: Target, hop: str | None) -> list[str]:
    if hop is not None and hop not in HOPS:
        raise UsageError(f"--hop must be one of {', '.join(HOPS)}, got {hop!r}")
    with _open(target) as ctl:
        if hop is None:
            ctl.heal()
            return ["healed every hop"]
        ctl.heal(target.proxy_of(hop))
        return [f"healed {hop} (proxy {target.proxy_of(hop)})"]


def status(target: Target) -> dict[str, object]:
    with _open(target) as ctl:
        proxies = ctl.status()
    by_name = {name: hop for hop, name in target.names.items()}
    out: dict[str, object] = {"proxy_url": target.proxy_url, "hops": {}}
    hops: dict[str, object] = {}
    for name, state in sorted(proxies.items()):
        hops[by_name.get(name, name)] = {
            "proxy": name, "listen": state.listen, "upstream": state.upstream,
            "partitioned": not state.enabled,
            "toxics": [{"name": t.name, "type": t.type, "stream": t.stream, "toxicity": t.toxicity,
                        "attributes": dict(t.attributes)} for t in state.toxics],
        }
    out["hops"] = hops
    return out


def render_status(data: Mapping[str, object]) -> str:
    lines = [f"proxy API {data['proxy_url']}"]
    hops = data["hops"]
    assert isinstance(hops, dict)
    for hop, info in hops.items():
        state = "PARTITIONED" if info["partitioned"] else "up"
        toxics = info["toxics"]
        lines.append(f"{hop} (proxy {info['proxy']}, {info['listen']} -> {info['upstream']}): {state}, "
                     f"{len(toxics)} toxic(s)")
        for t in toxics:
            attrs = " ".join(f"{k}={v}" for k, v in t["attributes"].items())
            lines.append(f"  - {t['name']}: {t['type']} {t['stream']} toxicity={t['toxicity']:g} {attrs}".rstrip())
    if not any(info["toxics"] or info["partitioned"] for info in hops.values()):
        lines.append("no faults active")
    return "\n".join(lines)


class _open:
    """A controller for one command that, unlike ToxiproxyController's own context manager, does
    NOT heal on entry or exit: hand-applied faults are meant to stay until `fault heal`."""

    def __init__(self, target: Target) -> None:
        self.ctl = controller(target)

    def __enter__(self) -> ToxiproxyController:
        return self.ctl

    def __exit__(self, *exc: object) -> None:
        self.ctl.close()


def to_json(data: Mapping[str, object]) -> str:
    return json.dumps(data, indent=2)
