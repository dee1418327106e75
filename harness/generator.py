"""The seeded schedule of SC-1: WHAT to do next, never when (the runner decides timing).

Same seed + iterations + action mix + slots -> the same steps and the same schedule hash, so a
failing run is replayed from its seed alone; a schedule is also built from an explicit action
list, for replay and shrinking. Randomness comes only from a `random.Random` seeded from the seed.

Step text: `send_book(A)`, `race()`, `duplicate(B)`, `reorder(A)` (demand; `@K` after it names
slot K of a run with `--slots`, slot 1 when absent), `latency(app-db)`, `heal(client-app)`,
`restart_simcity()`, `no_op()`; an aimed crash or fault carries its delay after the burst before
it: `restart_simcity(+40ms)`, `cut(client-app+120ms)`.
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
from harness.faults import FAULT_ACTIONS, KINDS
from harness.history import Action, Hop, Process

SCHEDULE_ACTIONS = (
    Action.SEND_BOOK, Action.RETRY_BOOK, Action.RACE, Action.DUPLICATE, Action.REORDER,
    Action.RESTART_SIMCITY, Action.NO_OP, *sorted(FAULT_ACTIONS, key=list(Action).index), Action.HEAL,
)
# The aimable actions, timed against the burst before them: a crash, and faults that act on live
# connections. An aim is how long after that burst's release they strike.
AIMABLE = frozenset({Action.RESTART_SIMCITY, *(a for a, kind in KINDS.items() if kind.aimable)})
MAX_AIM_MS = 1000


class IntentRef(str, Enum):
    """intent_A belongs to C1, intent_B to C2 (the seed document's names)."""

    A = "A"
    B = "B"

    @property
    def process(self) -> Process:
        return Process.C1 if self is IntentRef.A else Process.C2


@dataclass(frozen=True)
class Step:
    """One action of a schedule; its text form (`send_book(A)@2`, `cut(client-app+40ms)`) is what
    replay commands and serialised schedules carry. A fault step names only its kind and hop: what
    it injects is the fault profile's business, so magnitudes are written down in one place."""

    action: Action
    intent: IntentRef | None = None
    hop: Hop | None = None
    slot: int = 1  # which independent slot a demand step books (1 = the seed's one slot)
    aim_ms: int | None = None  # an aimed step strikes this long after the burst before it

    def __post_init__(self) -> None:
        if self.action not in SCHEDULE_ACTIONS:
            raise ScheduleError(f"{self.action.value} is not a schedule action")
        if self.action.takes_intent != (self.intent is not None):
            raise ScheduleError(f"{self.action.value}: an intent (A or B) is required exactly for bookings "
                                "(race() takes none: it sends both)")
        wants_hop = self.action in FAULT_ACTIONS or self.action is Action.HEAL
        if wants_hop != (self.hop is not None):
            raise ScheduleError(f"{self.action.value}: a hop is required exactly for faults and heal")
        if self.hop is not None and self.action in KINDS and self.hop not in KINDS[self.action].hops:
            raise ScheduleError(f"{self.action.value} applies to {', '.join(h.value for h in KINDS[self.action].hops)} "
                                f"only, not {self.hop.value}")
        if self.slot < 1 or (self.slot != 1 and not self.action.is_demand):
            raise ScheduleError(f"{self}: only a demand step names a slot (@1, @2, ...)")
        if self.aim_ms is not None and (self.action not in AIMABLE or not 0 <= self.aim_ms <= MAX_AIM_MS):
            raise ScheduleError(f"{self.action.value}: an aim (+N ms, 0..{MAX_AIM_MS}) is for "
                                f"{', '.join(sorted(a.value for a in AIMABLE))} only")

    def __str__(self) -> str:
        target = (self.intent or self.hop)
        text = target.value if target else ""
        if self.aim_ms is not None:
            text += f"+{self.aim_ms}ms"
        slot = f"@{self.slot}" if self.slot != 1 else ""
        return f"{self.action.value}({text}){slot}"

    @classmethod
    def parse(cls, text: str) -> "Step":
        match = _STEP_RE.fullmatch(text.strip())
        if match is None:
            raise ScheduleError(f"cannot read step {text!r}; expected e.g. 'send_book(A)', 'race()@2' "
                                "or 'restart_simcity(+40ms)'")
        try:
            action = Action(match["name"])
        except ValueError:
            raise ScheduleError(f"unknown action {match['name']!r} in {text!r}") from None
        arg = match["arg"].strip()
        aim = int(match["aim"]) if match["aim"] is not None else None
        slot = int(match["slot"]) if match["slot"] is not None else 1
        if not arg:
            return cls(action, slot=slot, aim_ms=aim)
        if arg in IntentRef._value2member_map_:
            return cls(action, intent=IntentRef(arg), slot=slot, aim_ms=aim)
        if arg in Hop._value2member_map_:
            return cls(action, hop=Hop(arg), slot=slot, aim_ms=aim)
        raise ScheduleError(f"{text!r}: unknown argument {arg!r}; expected A, B, client-app or app-db")


_STEP_RE = re.compile(r"(?P<name>[a-z_]+)\(\s*(?P<arg>[^()+,@]*?)\s*(?:\+(?P<aim>\d{1,4})ms)?\s*\)(?:@(?P<slot>\d{1,3}))?")


@dataclass(frozen=True)
class ActionMix:
    """Relative weights of the schedule actions (not a fault profile: which toxics a fault step
    injects is `--profile`'s business); a weight of 0 means the action never appears."""

    name: str
    weights: Mapping[Action, int] = field(default_factory=dict)

    def weight(self, action: Action) -> int:
        return self.weights.get(action, 0)

    def only(self, kind: Action) -> "ActionMix":
        """This mix with `kind` as its only fault kind, drawn as often as all faults together."""
        faults = sum(self.weight(a) for a in FAULT_ACTIONS)
        kept = {a: w for a, w in self.weights.items() if a not in FAULT_ACTIONS}
        return ActionMix(f"{self.name}+{kind.value}", {**kept, kind: faults} if faults else kept)


# Most demand is concurrent: a race of both customers, duplicate delivery, a retry overtaking its
# send; single sends and retries stay, as real clients make them too.
_DEMAND = {Action.SEND_BOOK: 3, Action.RETRY_BOOK: 4, Action.RACE: 7, Action.DUPLICATE: 2, Action.REORDER: 2,
           Action.NO_OP: 3}


def _with_faults(name: str, crashes: int, heals: int) -> ActionMix:
    faults = {action: kind.weights[name] for action, kind in KINDS.items() if name in kind.weights}
    return ActionMix(name, {**_DEMAND, Action.RESTART_SIMCITY: crashes, Action.HEAL: heals, **faults})


MIXES: Mapping[str, ActionMix] = MappingProxyType({
    # No faults and no crashes: the control run, which any correct app passes trivially.
    "quiet": ActionMix("quiet", dict(_DEMAND)),
    # In 50 steps: a few crashes, a handful of faults, heals soon after.
    "standard": _with_faults("standard", crashes=2, heals=4),
    # Everything, often.
    "chaotic": _with_faults("chaotic", crashes=4, heals=5),
})


def mix_named(name: str) -> ActionMix:
    if name not in MIXES:
        raise ScheduleError(f"unknown action mix {name!r}; known: {', '.join(MIXES)}")
    return MIXES[name]


@dataclass(frozen=True)
class Schedule:
    steps: tuple[Step, ...]
    seed: str | None = None
    mix: str | None = None  # the action mix it was drawn from, if it was drawn

    @classmethod
    def generate(cls, seed: str, iterations: int, mix: str | ActionMix = "standard", *, slots: int = 1) -> "Schedule":
        chosen = mix_named(mix) if isinstance(mix, str) else mix
        if not seed:
            raise ScheduleError("the seed must be a non-empty string, e.g. 'sc1-1'")
        if iterations < 0:
            raise ScheduleError(f"iterations must be >= 0, got {iterations}")
        if slots < 1:
            raise ScheduleError(f"slots must be >= 1, got {slots}")
        # One slot keeps the seed's digest as it was; more slots draw another schedule.
        rng = random.Random(_seed_int(seed, chosen.name if slots == 1 else f"{chosen.name}\0{slots}"))
        state = _State(slots)
        steps = []
        for _ in range(iterations):
            step = _draw(rng, chosen, state)
            state.apply(step)
            steps.append(step)
        return cls(tuple(steps), seed, chosen.name)

    @classmethod
    def from_actions(cls, actions: Iterable[Step | str], *, seed: str | None = None,
                     mix: str | None = None) -> "Schedule":
        return cls(tuple(a if isinstance(a, Step) else Step.parse(a) for a in actions), seed, mix)

    @property
    def hash(self) -> str:
        """Short sha256 of the canonical action list: equal steps, equal hash, however built."""
        canonical = json.dumps([str(s) for s in self.steps], separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    @property
    def slots(self) -> int:
        """The slots its demand steps name: a run needs at least this many."""
        return max((s.slot for s in self.steps), default=1)

    def __len__(self) -> int:
        return len(self.steps)

    def to_json(self) -> dict[str, object]:
        return {"seed": self.seed, "mix": self.mix, "hash": self.hash,
                "steps": [str(s) for s in self.steps]}

    @classmethod
    def from_json(cls, obj: object) -> "Schedule":
        if not isinstance(obj, dict) or not isinstance(obj.get("steps"), list):
            raise ScheduleError("a schedule is an object with a 'steps' list")
        # Files written before the action mix had its own name call it "profile".
        schedule = cls.from_actions(obj["steps"], seed=obj.get("seed"), mix=obj.get("mix", obj.get("profile")))
        if obj.get("hash") not in (None, schedule.hash):
            raise ScheduleError(f"schedule hash mismatch: file says {obj['hash']}, steps give {schedule.hash}")
        return schedule


def _seed_int(seed: str, profile: str) -> int:
    # A stable digest, not hash(): Python salts str hashes per process.
    digest = hashlib.sha256(f"simcity-sc1\0{seed}\0{profile}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


class _State:
    """What the drawn steps so far imply: which intents were sent on each slot, which faults are
    active, whether the previous step released a burst."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.sent: list[set[IntentRef]] = [set() for _ in range(slots)]  # per slot, slot 1 first
        # The previous step's (slot, intent) when that step can open a pair (see PAIR_PROBABILITY).
        self.last_booking: tuple[int, IntentRef] | None = None
        self.after_demand = False
        self.active: dict[Hop, set[Action]] = {hop: set() for hop in Hop}
        # Slots whose race has not yet run clean (no fault losing requests active when it left,
        # no strike aimed at it): a race spoiled by a fault is run again on its slot.
        self.fresh: set[int] = set(range(1, slots + 1))
        self._clean_race: int | None = None  # the slot of a clean race just released

    def losing_requests(self) -> bool:
        """A fault that loses requests is active (latency and stalls only slow them)."""
        return any(KINDS[a].aimable for faults in self.active.values() for a in faults)

    def apply(self, step: Step) -> None:
        if self._clean_race is not None and step.aim_ms is None:
            self.fresh.discard(self._clean_race)
        self._clean_race = step.slot if step.action is Action.RACE and not self.losing_requests() else None
        # Two bookings in a row are a pair already: only a booking after anything else opens one.
        is_single = step.action in (Action.SEND_BOOK, Action.RETRY_BOOK)
        opens_pair = is_single and not self.after_demand and step.intent is not None
        self.last_booking = (step.slot, step.intent) if opens_pair and step.intent else None
        self.after_demand = step.action.is_demand
        sent = self.sent[step.slot - 1]
        if step.action is Action.RACE:
            sent.update(IntentRef)
        elif step.intent is not None:
            sent.add(step.intent)
        if step.hop is not None:
            if step.action is Action.HEAL:
                self.active[step.hop].clear()
            else:
                self.active[step.hop].add(step.action)

    def targets(self, action: Action, slot: int) -> list[IntentRef | Hop | None]:
        """What `action` can apply to now: intents for bookings, hops for faults, None otherwise."""
        sent = self.sent[slot - 1]
        if action is Action.SEND_BOOK:
            if len(sent) == 1:
                # SC-1 is about concurrent demand: once one customer is in, a send is the other's.
                return [i for i in IntentRef if i not in sent]
            return list(IntentRef)
        if action is Action.RETRY_BOOK:
            # A retry reuses an intent id already sent; before that it would just be a send.
            return [i for i in IntentRef if i in sent]
        if action in (Action.DUPLICATE, Action.REORDER):
            return list(IntentRef)
        if action is Action.HEAL:
            return [h for h in Hop if self.active[h]]
        if action in FAULT_ACTIONS:
            # One toxic of a kind per hop: Toxiproxy refuses a second one with the same name.
            return [h for h in KINDS[action].hops if action not in self.active[h]]
        return [None]


# While a slot's race has not run clean, a race there is this much likelier; once it has, while
# only one customer has sent, the other's first send is: the race for a free slot happens when
# both intents are in flight together, and a schedule should contain that race unspoiled.
CONTENTION_BOOST = 10
# After one customer's booking step, the other customer's comes right behind it this often: both
# keep trying at once, so the race is re-run whenever faults or crashes spoiled the previous one.
PAIR_PROBABILITY = 0.8
# Right after a burst, crashes and live-connection faults are this much likelier, and they are
# aimed: they strike 0 to AIM_SPAN_MS after the burst's release, log-uniformly, so that the first
# milliseconds (a request before its first write, between its commit and its answer) are covered
# as densely as the slow tail.
AIM_BOOST = 3
AIM_SPAN_MS = 300


# A demand step goes to a slot whose race has not run clean yet this often (while there is one).
FRESH_PREFERENCE = 0.7


def _demand_slot(rng: random.Random, state: _State) -> int:
    if state.slots == 1:
        return 1
    if state.fresh and rng.random() < FRESH_PREFERENCE:
        return rng.choice(sorted(state.fresh))
    return rng.randint(1, state.slots)


def _draw(rng: random.Random, mix: ActionMix, state: _State) -> Step:
    if state.last_booking is not None and rng.random() < PAIR_PROBABILITY:
        slot, booked = state.last_booking
        other = IntentRef.B if booked is IntentRef.A else IntentRef.A
        action = Action.RETRY_BOOK if other in state.sent[slot - 1] else Action.SEND_BOOK
        return Step(action, intent=other, slot=slot)
    slot = _demand_slot(rng, state)
    options = [(a, t) for a in SCHEDULE_ACTIONS if mix.weight(a) > 0 and (t := state.targets(a, slot))]
    if not options:
        return Step(Action.NO_OP)
    boosted = Action.RACE if slot in state.fresh else {1: Action.SEND_BOOK}.get(len(state.sent[slot - 1]))

    def weight(action: Action) -> int:
        boost = CONTENTION_BOOST if action is boosted else 1
        return mix.weight(action) * boost * (AIM_BOOST if state.after_demand and action in AIMABLE else 1)

    action, targets = rng.choices(options, weights=[weight(a) for a, _ in options])[0]
    target = rng.choice(targets)
    aim = None
    if state.after_demand and action in AIMABLE:
        aim = round((AIM_SPAN_MS + 1) ** rng.random()) - 1
    if isinstance(target, IntentRef):
        return Step(action, intent=target, slot=slot)
    if action is Action.RACE:
        return Step(action, slot=slot)
    return Step(action, hop=target, aim_ms=aim)
