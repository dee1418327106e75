"""One vocabulary of faults: every fault kind a schedule can name, in one table.

A fault step names a kind and a hop (`latency(app-db)`); the kind's row says which shipped fault
profile gives it its toxics (`toxics/profiles/<name>.toml`), which hops it applies to, how often
each action mix draws it, and whether it may be aimed at the requests of the burst before it.
`--profile NAME` means one thing everywhere (`sc1`, `certify`, `fault apply`): NAME is a fault
profile, i.e. toxics; `plan_for_profile` says which mix of actions a run with it draws and which
profile serves each kind. The mix of actions is the generator's business (`ActionMix`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from harness.errors import UsageError
from harness.history import Action, Hop


@dataclass(frozen=True)
class FaultKind:
    action: Action
    profile: str  # the shipped profile whose toxics this kind injects by default
    hops: tuple[Hop, ...]
    # How many of an action mix's draws are this kind, per mix (absent: never drawn).
    weights: Mapping[str, int] = field(default_factory=dict)
    # It acts on connections already open, so timing it against a burst in flight means something.
    aimable: bool = False
    # A transient fault lifts itself this long after it began (None: it lasts until a heal).
    lasts_s: float | None = None


BOTH = (Hop.CLIENT_APP, Hop.APP_DB)
KINDS: Mapping[Action, FaultKind] = MappingProxyType({kind.action: kind for kind in (
    FaultKind(Action.LATENCY, "latency", BOTH, {"standard": 2, "chaotic": 4}),
    FaultKind(Action.JITTER, "jitter", BOTH, {"standard": 1, "chaotic": 3}),
    FaultKind(Action.DROPS, "drops", BOTH, {"standard": 1, "chaotic": 4}, aimable=True),
    FaultKind(Action.TIMEOUTS, "timeouts", BOTH, {"standard": 1, "chaotic": 3}, aimable=True),
    FaultKind(Action.PARTITION, "partition", BOTH, {"standard": 1, "chaotic": 3}, aimable=True),
    FaultKind(Action.CUT, "cut", (Hop.CLIENT_APP,), {"standard": 1, "chaotic": 2}, aimable=True),
    # A database hiccup (a checkpoint, a failover): long enough to cross the app's own timeouts,
    # short enough that an app restarted in it still comes up within seconds.
    FaultKind(Action.STALL, "stall", (Hop.APP_DB,), {"standard": 1, "chaotic": 2}, lasts_s=2.5),
)})
FAULT_ACTIONS = frozenset(KINDS)

# The action mix a profile implies when `--mix` does not say: calm is the control run (no faults,
# no crashes), storm is everything often; every other profile keeps the standard mix.
MIX_OF_PROFILE: Mapping[str, str] = MappingProxyType({"calm": "quiet", "storm": "chaotic"})
MIXES = ("quiet", "standard", "chaotic")
# Profiles that stand for one kind although not named after it.
KIND_OF_PROFILE: Mapping[str, Action] = MappingProxyType({
    **{kind.profile: action for action, kind in KINDS.items()}, "resets": Action.DROPS,
})


@dataclass(frozen=True)
class FaultPlan:
    """What `--profile` (and `--mix`) mean for a run: the action mix to draw, the fault kinds it
    may draw (None: all of them), and the profile serving each kind."""

    profile: str
    mix: str
    only: Action | None
    sources: Mapping[Action, str]


def plan_for_profile(profile: str, mix: str | None = None) -> FaultPlan:
    """`default`: every kind, each with its own profile. A kind's profile (`latency`, `resets`, ...):
    that kind only, from that file. Any other profile (`storm`, a `.toml` path): every kind, each
    injecting that profile's toxics for its hop."""
    # Here, not at the top: toxics imports harness.errors, which loads this package.
    from toxics.profiles import list_profiles, load_profile  # noqa: PLC0415

    if mix is not None and mix not in MIXES:
        raise UsageError(f"unknown mix {mix!r}; known: {', '.join(MIXES)}")
    own = {action: kind.profile for action, kind in KINDS.items()}
    chosen = mix or MIX_OF_PROFILE.get(profile, "standard")
    if profile == "default":
        return FaultPlan(profile, chosen, None, own)
    if profile in KIND_OF_PROFILE:
        kind = KIND_OF_PROFILE[profile]
        return FaultPlan(profile, chosen, kind, {**own, kind: profile})
    if profile.endswith(".toml") or "/" in profile or profile in list_profiles():
        load_profile(profile)  # a missing or malformed file: one line, before anything starts
        return FaultPlan(profile, chosen, None, dict.fromkeys(KINDS, profile))
    known = sorted({"default", *list_profiles()})
    raise UsageError(f"unknown profile {profile!r}; known: {', '.join(known)} (or a .toml path)")
