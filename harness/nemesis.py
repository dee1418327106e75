"""The nemesis: faults on the two hops through Toxiproxy, and real crashes of the app.

A fault step names only a kind and a hop (`latency(app-db)`); what it injects comes from the fault
profile serving that kind (harness.faults: each kind's own file in `toxics/profiles/`, or the one
`--profile` names), so magnitudes are written down in one place. A profile's
`[[packet_loss]]` also drops real IP packets on the hop where the stack can (`Stack.packet_loss`:
the Compose stack); the history's params then carry `packet_loss.probability_pct`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from harness.contract import CrashCheck, crash_check
from harness.faults import KINDS
from harness.history import Action, Hop
from harness.stacks.base import Stack, boot_id_in
from toxics import FaultProfile, Partition, ToxiproxyController, load_profile
from toxics.control import Effect

def load_sources(sources: Mapping[Action, str] | None = None) -> dict[Action, FaultProfile]:
    """The fault profile behind each fault kind (default: each kind's own), loaded and validated
    once before a run."""
    names = {**{action: kind.profile for action, kind in KINDS.items()}, **(sources or {})}
    return {kind: load_profile(name) for kind, name in names.items()}


# An app-db latency this long keeps a fresh app's health probe (1 s) from answering 200.
CUT_OFF_LATENCY_MS = 500


class Nemesis:
    """Applies and heals faults per hop and crashes the app; remembers what is active so a heal
    (or the end of the run, whatever happened) leaves no fault behind."""

    def __init__(self, stack: Stack, sources: Mapping[Action, FaultProfile]) -> None:
        self.stack = stack
        self.sources = sources
        url = stack.endpoints.proxy_api_url
        self.controller = ToxiproxyController(url) if url else None
        self._active: dict[Hop, list[Effect]] = {}
        # What each injection still in place put on its hop: a transient fault lifts exactly its
        # own (a later fault of the same kind, or one a heal already removed, is not touched).
        self._injections: dict[int, tuple[Hop, tuple[Effect, ...]]] = {}
        self._next_injection = 0
        self._lossy: set[Hop] = set()  # hops where the stack applied real packet loss
        self.crashes = 0
        self.restart_seconds: list[float] = []
        # The app's boot id as last seen (CONTRACT.md section 4): read while the network is clean
        # (`note_boot_id`) and after each crash, so a crash need not ask /health first, whose
        # answer waits on a database ping through whatever app-db fault is on at that moment.
        self._boot_id: str | None = None
        self._boot_id_known = False

    def note_boot_id(self) -> None:
        self._boot_id, self._boot_id_known = self.stack.boot_id(), True

    def faultable(self, hop: Hop) -> bool:
        return self.controller is not None and hop.value in self.stack.endpoints.proxy_names

    def effects_for(self, kind: Action, hop: Hop) -> tuple[Effect, ...]:
        if kind is Action.PARTITION:
            return (Partition(),)
        profile = self.sources[kind]
        # A profile may describe a kind on one hop only; the same shape then serves the other.
        effects = profile.effects(hop.value) or next((profile.effects(h) for h in profile.hops), ())
        # Prefix names with the kind: latency and jitter both add a latency toxic to one stream.
        return tuple(e if isinstance(e, Partition) else replace(e, name=f"{kind.value}_{e.name}") for e in effects)

    def inject(self, kind: Action, hop: Hop) -> tuple[tuple[tuple[str, int], ...], int | None]:
        """Start the fault; returns its parameters for the history (`skipped` when nothing could
        be injected: an unfaultable hop, or a profile with nothing for it) and a token that
        `lift` takes (None when nothing was injected)."""
        if not self.faultable(hop):
            return (("skipped", 1),), None
        assert self.controller is not None
        proxy = self.stack.endpoints.proxy_names[hop.value]
        params: list[tuple[str, int]] = []
        effects = self.effects_for(kind, hop)
        for effect in effects:
            self.controller.apply(proxy, effect)
            self._active.setdefault(hop, []).append(effect)
            if isinstance(effect, Partition):
                params.append(("partition", 1))
            else:
                params += [(f"{effect.type}.{k}", int(v)) for k, v in effect.attributes.items()]
                params.append((f"{effect.type}.toxicity_pct", round(effect.toxicity * 100)))
        probability = self.sources[kind].loss(hop.value) if kind in self.sources else None
        if probability is not None and self.stack.packet_loss(hop.value, probability):
            self._lossy.add(hop)
            params.append(("packet_loss.probability_pct", round(probability * 100)))
        if not params:
            return (("skipped", 1),), None
        token = self._next_injection
        self._next_injection += 1
        self._injections[token] = (hop, effects)
        return tuple(params), token

    def lift(self, token: int) -> None:
        """Lift what one injection put on its hop, leaving the hop's other faults in place; a
        no-op once a heal removed it."""
        if token not in self._injections or self.controller is None:
            return
        hop, effects = self._injections.pop(token)
        proxy = self.stack.endpoints.proxy_names[hop.value]
        active = self._active.get(hop, [])
        for effect in effects:
            if effect in active:
                active.remove(effect)
            if isinstance(effect, Partition) and any(isinstance(e, Partition) for e in active):
                continue  # another fault still holds the hop partitioned
            self.controller.revert(proxy, effect)

    def heal(self, hop: Hop | None = None) -> None:
        """Lift every fault of one hop, or of all hops."""
        hops = [hop] if hop is not None else list(Hop)
        try:
            if self.controller is not None:
                for each in hops:
                    if each.value in self.stack.endpoints.proxy_names:
                        self.controller.heal(self.stack.endpoints.proxy_names[each.value])
                    self._active.pop(each, None)
                    self._injections = {t: i for t, i in self._injections.items() if i[0] is not each}
        finally:
            self._lift_loss(hops)

    def heal_all(self) -> None:
        """Everything healed: the settle phase and teardown call this whatever happened."""
        try:
            if self.controller is not None:
                self.controller.heal()
            self._active.clear()
            self._injections.clear()
        finally:
            self._lift_loss(list(Hop))

    def _lift_loss(self, hops: list[Hop]) -> None:
        # Asked of the stack every time (a no-op where nothing is applied), so a loss left by an
        # earlier run on a reused stack is lifted too.
        for hop in hops:
            self.stack.packet_loss(hop.value, None)
            self._lossy.discard(hop)

    def database_cut_off(self) -> bool:
        """A fault on app-db that keeps /health from answering 200 until it is healed. Real packet
        loss counts: stacked with latency on app-db, a fresh app's first database connection may
        not fit in its 1 s health probe for as long as the loss lasts."""
        return Hop.APP_DB in self._lossy or any(
            isinstance(e, Partition) or e.type == "timeout"
            or (e.type == "latency" and e.attributes.get("latency", 0) >= CUT_OFF_LATENCY_MS)
            for e in self._active.get(Hop.APP_DB, ()))

    def crash(self) -> tuple[float, CrashCheck]:
        """Kill the app for real and wait until it is healthy again; seconds kill-to-healthy, and
        whether the app's boot id says it really started again (CONTRACT.md section 4). While its
        database is cut off, the app cannot be healthy: wait until it serves, or listens on a stack
        that watches its crashes, instead (the settle phase waits for health once everything is
        healed)."""
        # A stack that watches its crashes needs no boot id to prove one, so it never asks /health
        # just for the id: that answer waits on the app's database, through the fault of the moment.
        watched = self.stack.watches_crashes
        if not self._boot_id_known and not watched:
            self.note_boot_id()
        before = self._boot_id
        took = self.stack.restart_app(wait_healthy=not self.database_cut_off())
        answer = self.stack.restart_answer
        # The answer that ended the wait names the new start; asked again only if it named none.
        self._boot_id = boot_id_in(answer) if answer is not None else None
        if self._boot_id is None and not watched:
            self.note_boot_id()
        check = crash_check(before, self._boot_id)
        if watched and check is CrashCheck.UNVERIFIED:
            check = CrashCheck.WATCHED
        if check is not CrashCheck.NOT_RESTARTED:
            self.crashes += 1
        self.restart_seconds.append(took)
        return took, check

    def close(self) -> None:
        if self.controller is not None:
            self.controller.close()
