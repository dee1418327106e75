"""The seeded schedule of SC-1: WHAT to do next, never when (the runner decides timing).

Same seed + iterations + profile -> the same steps and the same schedule hash, so a failing run
is replayed from its seed alone; a schedule is also built from an explicit action list, for replay
and shrinking. Randomness comes only from a `random.Random` seeded from the seed string.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from types import MappingProxyType

from harness.errors import ScheduleError
from harness.history import FAULT_ACTIONS, Action, Hop, Process

SCHEDULE_ACTIONS = (
    Action.SEND_BOOK, Action.RETRY_BOOK, Action.RACE, Action.DUPLICATE, Action.REORDER,
    Action.RESTART_SIMCITY, Action.NO_OP,
    Action.LATENCY, Action.JITTER, Action.DROPS, Action.TIMEOUTS, Action.PARTITION, Action.HEAL,
)


class IntentRef(str, Enum):
    """intent_A belongs to C1, intent_B to C2 (the seed document's names)."""

    A = "A"
    B = "B"

    @property
    def process(self) -> Process:
        return Process.C1 if self is IntentRef.A else Process.C2


@dataclass(frozen=True)
class Step:
    """One action of a schedule; its text form (`send_book(A)`, `latency(app-db)`) is what replay
    commands and serialised schedules carry. A fault step names only its kind and hop: what it
    injects (toxics, magnitudes) is the fault profile's business (`toxics/profiles/<kind>.toml`),
    so magnitudes are written down in one place."""

    action: Action
    intent: IntentRef | None = None
    hop: Hop | None = None

    def __post_init__(self) -> None:
        if self.action not in SCHEDULE_ACTIONS:
            raise ScheduleError(f"{self.action.value} is not a schedule action")
        if self.action.takes_intent != (self.intent is not None):
            raise ScheduleError(f"{self.action.value}: an intent (A or B) is required exactly for bookings "
                                "(race() takes none: it sends both)")
        wants_hop = self.action.is_fault or self.action is Action.HEAL
        if wants_hop != (self.hop is not None):
            raise ScheduleError(f"{self.action.value}: a hop is required exactly for faults and heal")

    def __str__(self) -> str:
        target = self.intent or self.hop
        return f"{self.action.value}({target.value if target else ''})"

    @classmethod
    def parse(cls, text: str) -> "Step":
        match = _STEP_RE.fullmatch(text.strip())
        if match is None:
            raise ScheduleError(f"cannot read step {text!r}; expected e.g. 'send_book(A)' or 'heal(app-db)'")
        try:
            action = Action(match["name"])
        except ValueError:
            raise ScheduleError(f"unknown action {match['name']!r} in {text!r}") from None
        arg = match["arg"].strip()
        if not arg:
            return cls(action)
        if arg in IntentRef._value2member_map_:
            return cls(action, intent=IntentRef(arg))
        if arg in Hop._value2member_map_:
            return cls(action, hop=Hop(arg))
        raise ScheduleError(f"{text!r}: unknown argument {arg!r}; expected A, B, client-app or app-db")


_STEP_RE = re.compile(r"(?P<name>[a-z_]+)\((?P<arg>[^(),]*)\)")


@dataclass(frozen=True)
class Profile:
    """Relative weights of the schedule actions; a fault weight of 0 means it never appears."""

    name: str
    weights: Mapping[Action, int] = field(default_factory=dict)

    def weight(self, action: Action) -> int:
        return self.weights.get(action, 0)


# Most demand is concurrent: a race of both customers, duplicate delivery, a retry overtaking its
# send; single sends and retries stay, as real clients make them too.
_BASE = {Action.SEND_BOOK: 3, Action.RETRY_BOOK: 4, Action.RACE: 7, Action.DUPLICATE: 2, Action.REORDER: 2,
         Action.NO_OP: 3}
PROFILES: Mapping[str, Profile] = MappingProxyType({
    # No faults and no crashes: the control run, which any correct app passes trivially.
    "calm": Profile("calm", dict(_BASE)),
    # In 50 steps: a few crashes, a handful of faults, heals soon after.
    "default": Profile("default", {
        **_BASE, Action.RESTART_SIMCITY: 2, Action.LATENCY: 2, Action.JITTER: 1, Action.DROPS: 1,
        Action.TIMEOUTS: 1, Action.PARTITION: 1, Action.HEAL: 4,
    }),
    "storm": Profile("storm", {
        **_BASE, Action.RESTART_SIMCITY: 4, Action.LATENCY: 4, Action.JITTER: 3, Action.DROPS: 4,
        Action.TIMEOUTS: 3, Action.PARTITION: 3, Action.HEAL: 5,
    }),
})


def profile_named(name: str) -> Profile:
    if name not in PROFILES:
        raise ScheduleError(f"unknown profile {name!r}; known: {', '.join(PROFILES)}")
    return PROFILES[name]


@dataclass(frozen=True)
class Schedule:
    steps: tuple[Step, ...]
    seed: str | None = None
    profile: str | None = None

    @classmethod
    def generate(cls, seed: str, iterations: int, profile: str | Profile = "default") -> "Schedule":
        prof = profile_named(profile) if isinstance(profile, str) else profile
        if not seed:
            raise ScheduleError("the seed must be a non-empty string, e.g. 'sc1-1'")
        if iterations < 0:
            raise ScheduleError(f"iterations must be >= 0, got {iterations}")
        rng = random.Random(_seed_int(seed, prof.name))
        state = _State()
        steps = []
        for _ in range(iterations):
            step = _draw(rng, prof, state)
            state.apply(step)
            steps.append(step)
        return cls(tuple(steps), seed, prof.name)

    @classmethod
    def from_actions(cls, actions: Iterable[Step | str], *, seed: str | None = None,
                     profile: str | None = None) -> "Schedule":
        return cls(tuple(a if isinstance(a, Step) else Step.parse(a) for a in actions), seed, profile)

    @property
    def hash(self) -> str:
        """Short sha256 of the canonical action list: equal steps, equal hash, however built."""
        canonical = json.dumps([str(s) for s in self.steps], separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def __len__(self) -> int:
        return len(self.steps)

    def to_json(self) -> dict[str, object]:
        return {"seed": self.seed, "profile": self.profile, "hash": self.hash,
                "steps": [str(s) for s in self.steps]}

    @classmethod
    def from_json(cls, obj: object) -> "Schedule":
        if not isinstance(obj, dict) or not isinstance(obj.get("steps"), list):
            raise ScheduleError("a schedule is an object with a 'steps' list")
        schedule = cls.from_actions(obj["steps"], seed=obj.get("seed"), profile=obj.get("profile"))
        if obj.get("hash") not in (None, schedule.hash):
            raise ScheduleError(f"schedule hash mismatch: file says {obj['hash']}, steps give {schedule.hash}")
        return schedule


def _seed_int(seed: str, profile: str) -> int:
    # A stable digest, not hash(): Python salts str hashes per process.
    digest = hashlib.sha256(f"simcity-sc1\0{seed}\0{profile}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


class _State:
    """What the drawn steps so far imply: which intents were sent, which faults are active."""

    def __init__(self) -> None:
        self.sent: set[IntentRef] = set()
        # The previous step's intent when that step can open a pair (see PAIR_PROBABILITY).
        self.last_booking: IntentRef | None = None
        self._after_booking = False
        self.active: dict[Hop, set[Action]] = {hop: set() for hop in Hop}

    def apply(self, step: Step) -> None:
        # Two bookings in a row are a pair already: only a booking after anything else opens one.
        is_single = step.action in (Action.SEND_BOOK, Action.RETRY_BOOK)
        self.last_booking = step.intent if is_single and not self._after_booking else None
        self._after_booking = step.action.is_demand
        if step.action is Action.RACE:
            self.sent.update(IntentRef)
        elif step.intent is not None:
            self.sent.add(step.intent)
        if step.hop is not None:
            if step.action is Action.HEAL:
                self.active[step.hop].clear()
            else:
                self.active[step.hop].add(step.action)

    def targets(self, action: Action) -> list[IntentRef | Hop | None]:
        """What `action` can apply to now: intents for bookings, hops for faults, None otherwise."""
        if action is Action.SEND_BOOK:
            if len(self.sent) == 1:
                # SC-1 is about concurrent demand: once one customer is in, a send is the other's.
                return [i for i in IntentRef if i not in self.sent]
            return list(IntentRef)
        if action is Action.RETRY_BOOK:
            # A retry reuses an intent id already sent; before that it would just be a send.
            return [i for i in IntentRef if i in self.sent]
        if action in (Action.DUPLICATE, Action.REORDER):
            return list(IntentRef)
        if action is Action.HEAL:
            return [h for h in Hop if self.active[h]]
        if action in FAULT_ACTIONS:
            # One toxic of a kind per hop: Toxiproxy refuses a second one with the same name.
            return [h for h in Hop if action not in self.active[h]]
        return [None]


# While only one customer has sent, the other's first send is this much likelier; while neither
# has, a race is: the race for a free slot happens when both intents are in flight together, and a
# schedule should contain that race while the slot is still free.
CONTENTION_BOOST = 10
# After one customer's booking step, the other customer's comes right behind it this often: both
# keep trying at once, so the race is re-run whenever faults or crashes spoiled the previous one.
PAIR_PROBABILITY = 0.8


def _draw(rng: random.Random, profile: Profile, state: _State) -> Step:
    options = [(a, t) for a in SCHEDULE_ACTIONS if profile.weight(a) > 0 and (t := state.targets(a))]
    if not options:
        return Step(Action.NO_OP)
    if state.last_booking is not None and rng.random() < PAIR_PROBABILITY:
        other = IntentRef.B if state.last_booking is IntentRef.A else IntentRef.A
        return Step(Action.RETRY_BOOK if other in state.sent else Action.SEND_BOOK, intent=other)
    boosted = {0: Action.RACE, 1: Action.SEND_BOOK}.get(len(state.sent))
    weights = [profile.weight(a) * (CONTENTION_BOOST if a is boosted else 1) for a, _ in options]
    action, targets = rng.choices(options, weights=weights)[0]
    target = rng.choice(targets)
    if isinstance(target, IntentRef):
        return Step(action, intent=target)
    return Step(action, hop=target)
