"""Fault profiles: every shipped one loads, and each kind of mistake is one precise line."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import UsageError
from toxics import Fault, Partition, ProfileError, Toxic, list_profiles, load_profile
from toxics.catalog import REGISTRY
from toxics.control import FaultConfigError

SHIPPED = ("calm", "cut", "drops", "jitter", "latency", "partition", "resets", "stall", "storm", "timeouts")


def test_the_ten_profiles_are_shipped() -> None:
    assert list_profiles() == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_profile_loads_and_only_uses_known_hops(name: str) -> None:
    profile = load_profile(name)
    assert profile.name == name and profile.description
    assert set(profile.hops) <= {"client-app", "app-db"}
    assert profile.faults or name == "calm"
    for fault in profile.faults:
        # Loading checks and normalises: every attribute of the type is present.
        if isinstance(fault.effect, Toxic):
            assert set(fault.effect.attributes) == {a.name for a in REGISTRY[fault.effect.type].attributes}


def test_drops_lose_connections_mid_stream_on_a_share_of_them_only() -> None:
    effects = [f.effect for f in load_profile("drops").faults]
    assert effects and all(isinstance(e, Toxic) and e.type in {"reset_peer", "timeout", "limit_data"}
                           and e.toxicity < 1 for e in effects)


def test_partition_profile_cuts_app_db_and_effects_group_by_hop() -> None:
    assert load_profile("partition").faults == (Fault("app-db", Partition()),)
    storm = load_profile("storm")
    assert storm.hops == ("client-app", "app-db")
    assert storm.effects("app-db")[-1] == Partition()
    assert len(storm.effects("client-app")) + len(storm.effects("app-db")) == len(storm.faults)


def test_defaults_come_from_the_catalog_and_a_path_works_as_well_as_a_name(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('[[toxics]]\nhop = "app-db"\ntype = "slicer"\nattributes = { average_size = 10 }\n')
    for ref in (path, str(path)):
        profile = load_profile(ref)
        assert profile.name == "mine" and profile.path == path
        assert profile.faults == (
            Fault("app-db", Toxic("slicer", {"average_size": 10, "size_variation": 0, "delay": 0})),
        )


LATENCY = '[[toxics]]\nhop = "client-app"\ntype = "latency"\nattributes = { latency = 10 }\n'


@pytest.mark.parametrize(
    ("body", "key", "reason"),
    [
        (LATENCY * 2 + '[[toxics]]\nhop = "app-db"\ntype = "latency"\nattributes = { latncy = 5 }\n',
         "toxics[2].attributes.latncy", "unknown attribute 'latncy' for toxic type 'latency'"),
        ('[[toxics]]\nhop = "app-db"\ntype = "latenccy"\n', "toxics[0].type", "invalid toxic type: 'latenccy'"),
        ('[[toxics]]\nhop = "app-db"\n', "toxics[0].type", "missing; one of latency, bandwidth"),
        ('[[toxics]]\nhop = "app-cache"\ntype = "noop"\n', "toxics[0].hop", "unknown hop 'app-cache'"),
        ('[[toxics]]\ntype = "noop"\n', "toxics[0].hop", "missing; one of client-app, app-db"),
        ('[[toxics]]\nhop = "app-db"\ntype = "noop"\nstream = "sideways"\n', "toxics[0].stream",
         "stream must be 'upstream' or 'downstream', got 'sideways'"),
        ('[[toxics]]\nhop = "app-db"\ntype = "noop"\ntoxicity = 1.5\n', "toxics[0].toxicity",
         "toxicity must be a number between 0 and 1, got 1.5"),
        ('[[toxics]]\nhop = "app-db"\ntype = "noop"\ntoxicity = -0.1\n', "toxics[0].toxicity", "got -0.1"),
        ('[[toxics]]\nhop = "app-db"\ntype = "noop"\ntoxicity = "half"\n', "toxics[0].toxicity", "got 'half'"),
        ('[[toxics]]\nhop = "app-db"\ntype = "latency"\nattributes = { latency = -5 }\n',
         "toxics[0].attributes.latency", "latency.latency must be >= 0 (ms), got -5"),
        ('[[toxics]]\nhop = "app-db"\ntype = "latency"\nattributes = { jitter = 2.5 }\n',
         "toxics[0].attributes.jitter", "must be an integer (ms), got 2.5"),
        ('[[toxics]]\nhop = "app-db"\ntype = "latency"\nattributes = { latency = "1s" }\n',
         "toxics[0].attributes.latency", "must be an integer (ms), got '1s'"),
        ('[[toxics]]\nhop = "app-db"\ntype = "slicer"\n', "toxics[0].attributes",
         "slicer.average_size must be >= 1 (bytes), got 0"),
        ('[[toxics]]\nhop = "app-db"\ntype = "latency"\nattributes = 100\n', "toxics[0].attributes",
         "must be a table, got 100"),
        ('[[toxics]]\nhop = "app-db"\ntype = "noop"\ntoxicty = 0.5\n', "toxics[0].toxicty",
         "unknown key 'toxicty'; expected one of hop, type, stream, toxicity, name, attributes"),
        ('[[toxics]]\nhop = "app-db"\ntype = "noop"\nname = 7\n', "toxics[0].name", "got 7"),
        (LATENCY * 2, "toxics[1].name",
         "duplicate toxic name 'latency_downstream' on hop 'client-app' (as toxics[0]); set a distinct name"),
        ('[[toxic]]\nhop = "app-db"\ntype = "noop"\n', "toxic",
         "unknown key 'toxic'; expected one of description, toxics, partitions"),
        ('toxics = 5\n', "toxics", "must be an array of tables ([[toxics]]), got 5"),
        ('toxics = [1]\n', "toxics[0]", "must be a table, got 1"),
        ('description = 3\n', "description", "must be a string, got 3"),
        ('[[partitions]]\nhop = "db"\n', "partitions[0].hop", "unknown hop 'db'"),
        ('[[partitions]]\nhop = "app-db"\n[[partitions]]\nhop = "app-db"\n', "partitions[1].hop",
         "hop 'app-db' is already partitioned by partitions[0]"),
        ('[[partitions]]\nhop = "app-db"\nfor_s = 3\n', "partitions[0].for_s", "unknown key 'for_s'"),
    ],
)
def test_a_bad_profile_is_one_line_naming_file_and_key(tmp_path: Path, body: str, key: str, reason: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}: ") and reason in message
    assert "\n" not in message
    assert isinstance(caught.value, UsageError) and caught.value.exit_code == 2


def test_the_example_error_reads_exactly_as_documented(tmp_path: Path) -> None:
    path = tmp_path / "storm.toml"
    path.write_text(LATENCY + '[[toxics]]\nhop = "app-db"\ntype = "noop"\n'
                    '[[toxics]]\nhop = "app-db"\ntype = "latency"\nattributes = { latncy = 5 }\n')
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert str(caught.value) == f"{path}: toxics[2].attributes.latncy: unknown attribute 'latncy' for toxic type 'latency'"


def test_a_file_under_the_working_directory_is_named_relative_to_it(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.toml").write_text("[[toxics]]\n")
    monkeypatch.chdir(tmp_path)
    for ref in (tmp_path / "sub" / "x.toml", "sub/x.toml"):
        with pytest.raises(ProfileError, match=r"^sub/x\.toml: toxics\[0\]\.hop: missing"):
            load_profile(ref)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("stormm", "unknown profile 'stormm'; known: calm, cut, drops, jitter, latency, partition, resets, stall, storm, timeouts"),
        ("nowhere/none.toml", "nowhere/none.toml: cannot read: No such file or directory"),
    ],
)
def test_an_unknown_profile_name_or_missing_file(ref: str, message: str) -> None:
    with pytest.raises(ProfileError) as caught:
        load_profile(ref)
    assert str(caught.value) == message


def test_invalid_toml_names_the_file_and_position(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('description = "unterminated\n')
    with pytest.raises(ProfileError, match=rf"^{path}: invalid TOML: .*line 1") as caught:
        load_profile(path)
    assert "\n" not in str(caught.value)


def test_toxic_checked_is_the_same_validation_for_code_as_for_files() -> None:
    toxic = Toxic("latency", {"latency": 5})
    assert toxic.name == "latency_downstream"
    assert toxic.checked() == Toxic("latency", {"latency": 5, "jitter": 0})
    assert hash(toxic) == hash(toxic.checked())  # usable in sets despite the attribute mapping
    with pytest.raises(TypeError):
        toxic.attributes["latency"] = 6  # type: ignore[index]
    with pytest.raises(FaultConfigError, match=r"^attributes\.rate: unknown attribute 'rate'"):
        Toxic("latency", {"rate": 1}).checked()


def test_drops_also_lose_real_packets_on_both_hops_where_the_stack_can() -> None:
    drops = load_profile("drops")
    assert dict(drops.packet_loss) == {"client-app": 0.2, "app-db": 0.1}
    assert drops.loss("client-app") == 0.2 and load_profile("latency").loss("client-app") is None


@pytest.mark.parametrize(
    ("body", "key", "reason"),
    [
        ('[[packet_loss]]\nhop = "app-db"\n', "packet_loss[0].probability", "missing"),
        ('[[packet_loss]]\nprobability = 0.1\n', "packet_loss[0].hop", "missing; one of client-app, app-db"),
        ('[[packet_loss]]\nhop = "app-db"\nprobability = 0\n', "packet_loss[0].probability", "0 < p <= 1, got 0"),
        ('[[packet_loss]]\nhop = "app-db"\nprobability = 1.5\n', "packet_loss[0].probability", "got 1.5"),
        ('[[packet_loss]]\nhop = "app-db"\nprobability = "20%"\n', "packet_loss[0].probability", "got '20%'"),
        ('[[packet_loss]]\nhop = "app-db"\nprobability = true\n', "packet_loss[0].probability", "got True"),
        ('[[packet_loss]]\nhop = "app-db"\nprobability = 0.1\nrate = 3\n', "packet_loss[0].rate",
         "unknown key 'rate'; expected one of hop, probability"),
        ('[[packet_loss]]\nhop = "app-db"\nprobability = 0.1\n[[packet_loss]]\nhop = "app-db"\nprobability = 0.2\n',
         "packet_loss[1].hop", "hop 'app-db' already has a packet loss"),
        ('packet_loss = 0.2\n', "packet_loss", "must be an array of tables ([[packet_loss]]), got 0.2"),
    ],
)
def test_a_bad_packet_loss_is_one_line_naming_file_and_key(tmp_path: Path, body: str, key: str, reason: str) -> None:
    path = tmp_path / "loss.toml"
    path.write_text(body)
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert str(caught.value).startswith(f"{path}: {key}: ") and reason in str(caught.value)


def test_a_packet_loss_of_one_is_allowed_and_an_integer_reads_as_a_share(tmp_path: Path) -> None:
    path = tmp_path / "all.toml"
    path.write_text('[[packet_loss]]\nhop = "client-app"\nprobability = 1\n')
    assert load_profile(path).packet_loss == (("client-app", 1.0),)
