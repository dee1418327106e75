"""One vocabulary of faults (harness.faults): what `--profile` and `--mix` mean for a run, which
hops each kind applies to, and how a one-kind profile reshapes the action mix."""

from __future__ import annotations

from collections import Counter

import pytest

from harness.errors import ScheduleError, UsageError
from harness.faults import FAULT_ACTIONS, KIND_OF_PROFILE, KINDS, MIXES, plan_for_profile
from harness.generator import MIXES as ACTION_MIXES
from harness.generator import Step
from harness.history import Action, Hop
from harness.nemesis import load_sources
from harness.runner import RunConfig, plan_schedule
from toxics.profiles import PROFILE_DIR, list_profiles

OWN = {action: kind.profile for action, kind in KINDS.items()}


def fault_steps(profile: str, iterations: int = 500, seed: str = "faults-1") -> Counter[Action]:
    schedule, _ = plan_schedule(RunConfig(seed=seed, iterations=iterations, profile=profile))
    return Counter(s.action for s in schedule.steps if s.action in FAULT_ACTIONS)


# --- plan_for_profile ----------------------------------------------------------------------------


def test_default_draws_every_kind_each_from_its_own_profile_in_the_standard_mix() -> None:
    plan = plan_for_profile("default")
    assert plan.profile == "default" and plan.mix == "standard" and plan.only is None
    assert dict(plan.sources) == OWN
    assert set(fault_steps("default")) == set(FAULT_ACTIONS)


def test_every_kind_has_a_shipped_profile_of_its_own() -> None:
    shipped = set(list_profiles())
    assert {kind.profile for kind in KINDS.values()} <= shipped
    # Each loads, and serves the kind from the file named after it.
    for action, profile in load_sources().items():
        assert profile.path == PROFILE_DIR / f"{OWN[action]}.toml", action


def test_calm_is_the_quiet_control_run() -> None:
    plan = plan_for_profile("calm")
    assert plan.mix == "quiet" and plan.only is None
    schedule, _ = plan_schedule(RunConfig(seed="calm-1", iterations=500, profile="calm"))
    assert all(s.hop is None and s.action is not Action.RESTART_SIMCITY for s in schedule.steps)


def test_storm_is_chaotic_and_serves_every_kind() -> None:
    plan = plan_for_profile("storm")
    assert plan.mix == "chaotic" and plan.only is None
    assert dict(plan.sources) == dict.fromkeys(KINDS, "storm")
    assert {p.name for p in load_sources(plan.sources).values()} == {"storm"}
    assert set(fault_steps("storm")) == set(FAULT_ACTIONS)


@pytest.mark.parametrize(("profile", "kind"), [
    ("latency", Action.LATENCY), ("jitter", Action.JITTER), ("drops", Action.DROPS),
    ("resets", Action.DROPS), ("timeouts", Action.TIMEOUTS), ("partition", Action.PARTITION),
    ("cut", Action.CUT), ("stall", Action.STALL),
])
def test_a_kinds_profile_draws_that_kind_only(profile: str, kind: Action) -> None:
    plan = plan_for_profile(profile)
    assert plan.only is kind and plan.mix == "standard"
    assert plan.sources[kind] == profile
    # The other kinds keep their own profile (a schedule given by hand may still name them).
    assert {a: p for a, p in plan.sources.items() if a is not kind} == {a: p for a, p in OWN.items() if a is not kind}
    drawn = fault_steps(profile)
    assert set(drawn) == {kind}, drawn


def test_resets_serves_the_drops_kind_from_resets_toml() -> None:
    assert KIND_OF_PROFILE["resets"] is Action.DROPS
    sources = load_sources(plan_for_profile("resets").sources)
    assert sources[Action.DROPS].name == "resets"
    assert {f.effect.type for f in sources[Action.DROPS].faults} == {"reset_peer"}  # type: ignore[union-attr]


def test_a_toml_path_serves_every_kind_from_that_file(tmp_path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('description = "mine"\n[[toxics]]\nhop = "app-db"\ntype = "latency"\nattributes = { latency = 7 }\n')
    plan = plan_for_profile(str(path))
    assert plan.mix == "standard" and plan.only is None
    assert dict(plan.sources) == dict.fromkeys(KINDS, str(path))
    assert {p.name for p in load_sources(plan.sources).values()} == {"mine"}
    # A path to a shipped file is a path: every kind from it, the standard mix (not storm's chaotic).
    shipped = plan_for_profile(str(PROFILE_DIR / "storm.toml"))
    assert shipped.mix == "standard" and shipped.only is None


def test_an_unknown_profile_is_one_line_listing_the_known_ones() -> None:
    with pytest.raises(UsageError) as raised:
        plan_for_profile("hurricane")
    message = str(raised.value)
    assert "\n" not in message
    assert "'hurricane'" in message
    for name in ("default", *list_profiles()):
        assert name in message, name
    assert raised.value.exit_code == 2


def test_plan_schedule_refuses_an_unknown_profile_before_anything_starts() -> None:
    with pytest.raises(UsageError, match="unknown profile 'hurricane'"):
        plan_schedule(RunConfig(profile="hurricane"))


@pytest.mark.parametrize(("profile", "mix"), [("calm", "chaotic"), ("storm", "quiet"), ("default", "quiet"),
                                              ("latency", "chaotic")])
def test_mix_overrides_what_the_profile_implies(profile: str, mix: str) -> None:
    plan = plan_for_profile(profile, mix)
    assert plan.mix == mix
    assert plan.only is plan_for_profile(profile).only


def test_calm_with_the_chaotic_mix_draws_faults() -> None:
    schedule, _ = plan_schedule(RunConfig(seed="calm-chaos", iterations=300, profile="calm", mix="chaotic"))
    assert any(s.action in FAULT_ACTIONS for s in schedule.steps)
    assert any(s.action is Action.RESTART_SIMCITY for s in schedule.steps)


def test_a_bad_mix_is_a_usage_error_listing_the_mixes() -> None:
    with pytest.raises(UsageError) as raised:
        plan_for_profile("default", "hurricane")
    assert "'hurricane'" in str(raised.value)
    for mix in MIXES:
        assert mix in str(raised.value)
    with pytest.raises(UsageError):
        plan_schedule(RunConfig(mix="storm"))  # a profile's name is not a mix


def test_the_fault_mixes_are_the_generators_mixes() -> None:
    assert set(MIXES) == set(ACTION_MIXES)


# --- hops and the steps that name them -------------------------------------------------------------


def test_cut_is_client_app_only_and_stall_app_db_only() -> None:
    assert KINDS[Action.CUT].hops == (Hop.CLIENT_APP,)
    assert KINDS[Action.STALL].hops == (Hop.APP_DB,)
    for action in FAULT_ACTIONS - {Action.CUT, Action.STALL}:
        assert set(KINDS[action].hops) == set(Hop), action


@pytest.mark.parametrize("text", ["cut(app-db)", "stall(client-app)", "cut(app-db+10ms)"])
def test_a_kind_on_a_hop_it_does_not_apply_to_is_rejected(text: str) -> None:
    with pytest.raises(ScheduleError, match="only, not"):
        Step.parse(text)


def test_the_hops_a_kind_applies_to_are_accepted() -> None:
    assert Step.parse("cut(client-app)") == Step(Action.CUT, hop=Hop.CLIENT_APP)
    assert Step.parse("stall(app-db)") == Step(Action.STALL, hop=Hop.APP_DB)
    with pytest.raises(ScheduleError):
        Step(Action.STALL, hop=Hop.CLIENT_APP)


def test_generated_cuts_and_stalls_stay_on_their_hop() -> None:
    for profile in ("default", "storm"):
        schedule, _ = plan_schedule(RunConfig(seed="hops", iterations=2000, profile=profile))
        hops = {(s.action, s.hop) for s in schedule.steps if s.action in (Action.CUT, Action.STALL)}
        assert hops == {(Action.CUT, Hop.CLIENT_APP), (Action.STALL, Hop.APP_DB)}, profile


def test_only_stall_lifts_itself_and_only_live_connection_faults_are_aimable() -> None:
    assert {a for a, k in KINDS.items() if k.lasts_s is not None} == {Action.STALL}
    assert KINDS[Action.STALL].lasts_s == pytest.approx(2.5)
    assert {a for a, k in KINDS.items() if k.aimable} == {Action.DROPS, Action.TIMEOUTS, Action.PARTITION,
                                                        Action.CUT}


# --- ActionMix.only ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mix_name", ["standard", "chaotic"])
@pytest.mark.parametrize("kind", sorted(FAULT_ACTIONS, key=lambda a: a.value))
def test_only_keeps_the_total_fault_weight_on_the_one_kind(mix_name: str, kind: Action) -> None:
    mix = ACTION_MIXES[mix_name]
    total = sum(mix.weight(a) for a in FAULT_ACTIONS)
    assert total > 0
    narrowed = mix.only(kind)
    assert narrowed.weight(kind) == total
    assert all(narrowed.weight(a) == 0 for a in FAULT_ACTIONS - {kind})
    # Demand, crashes and heals are untouched.
    assert {a: w for a, w in narrowed.weights.items() if a not in FAULT_ACTIONS} == \
        {a: w for a, w in mix.weights.items() if a not in FAULT_ACTIONS}
    assert narrowed.name == f"{mix_name}+{kind.value}"


def test_only_on_a_mix_without_faults_adds_none() -> None:
    quiet = ACTION_MIXES["quiet"]
    assert all(quiet.only(kind).weight(a) == 0 for kind in FAULT_ACTIONS for a in FAULT_ACTIONS)

