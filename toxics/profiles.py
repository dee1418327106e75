"""Fault profiles: TOML files naming the toxics and partitions to put on each network hop.

A profile (`toxics/profiles/<name>.toml`, or any path) looks like::

    description = "what this profile does to the system"

    [[toxics]]                       # any number; applied in file order
    hop = "app-db"                   # one of HOPS
    type = "latency"                 # a type of toxics.catalog
    stream = "downstream"            # optional: downstream (server -> client, default) or upstream
    toxicity = 1.0                   # optional: share of connections hit, 0..1 (default 1)
    name = "db_latency"              # optional: default <type>_<stream>; unique per hop
    attributes = { latency = 200 }   # optional: the catalog's names and units; defaults fill the rest

    [[partitions]]                   # any number: the hop's proxy is disabled
    hop = "app-db"

    [[packet_loss]]                  # optional, at most one per hop: real IP packet loss
    hop = "client-app"               # where the stack can (Compose: iptables in the app's netns);
    probability = 0.2                # share of packets dropped, 0 < p <= 1; ignored elsewhere

Everything is checked on load. A mistake is one line naming the file and the key, e.g.
`toxics/profiles/storm.toml: toxics[2].attributes.latncy: unknown attribute 'latncy' for toxic
type 'latency'` (indices count from 0). The harness applies `FaultProfile.effects(hop)` one hop at
a time, e.g. with `ToxiproxyController.injected`, which heals the hop afterwards.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.stacks.base import HOPS
from toxics.catalog import DEFAULT_STREAM, REGISTRY
from toxics.control import Effect, FaultConfigError, Partition, Toxic

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"

_TOP_KEYS = ("description", "toxics", "partitions", "packet_loss")
_TOXIC_KEYS = ("hop", "type", "stream", "toxicity", "name", "attributes")
_PARTITION_KEYS = ("hop",)
_LOSS_KEYS = ("hop", "probability")


class ProfileError(FaultConfigError):
    """A fault profile that cannot be loaded; the message is one line: `file: key: reason`."""


@dataclass(frozen=True)
class Fault:
    """One fault of a profile: a toxic or a partition, on one hop."""

    hop: str
    effect: Effect

    def describe(self) -> str:
        if isinstance(self.effect, Partition):
            return f"{self.hop}: partition"
        toxic = self.effect
        attributes = " ".join(f"{k}={v}" for k, v in toxic.attributes.items())
        return f"{self.hop}: {toxic.type} {toxic.stream} toxicity={toxic.toxicity:g} {attributes}".rstrip()


@dataclass(frozen=True)
class FaultProfile:
    name: str
    description: str
    path: Path
    faults: tuple[Fault, ...]
    # (hop, probability): IP packets dropped on the hop by stacks that reach the kernel.
    packet_loss: tuple[tuple[str, float], ...] = ()

    @property
    def hops(self) -> tuple[str, ...]:
        """The hops this profile touches, in the order they first appear."""
        return tuple(dict.fromkeys(f.hop for f in self.faults))

    def effects(self, hop: str) -> tuple[Effect, ...]:
        return tuple(f.effect for f in self.faults if f.hop == hop)

    def loss(self, hop: str) -> float | None:
        """The share of IP packets to drop on `hop`, or None when the profile drops none there."""
        return next((p for h, p in self.packet_loss if h == hop), None)


def list_profiles() -> tuple[str, ...]:
    """The names of the shipped profiles."""
    return tuple(sorted(p.stem for p in PROFILE_DIR.glob("*.toml")))


def load_profile(name_or_path: str | Path) -> FaultProfile:
    """A shipped profile by name (`storm`), or a profile file by path; ProfileError if invalid."""
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or text.endswith(".toml"):
        path = Path(name_or_path)
    elif (PROFILE_DIR / f"{text}.toml").is_file():
        path = PROFILE_DIR / f"{text}.toml"
    else:
        raise ProfileError(f"unknown profile {text!r}; known: {', '.join(list_profiles())}")
    try:
        stat = path.stat()
    except OSError:
        return _Loader(path).load()  # says why it cannot be read
    return _load_unchanged(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=128)
def _load_unchanged(path: Path, mtime_ns: int, size: int) -> FaultProfile:
    """A profile file parsed once while it stays the same file: every run loads all of its kinds'
    profiles (21 files, ~4 ms of CPU a run: most of a short run's set-up)."""
    return _Loader(path).load()


class _Loader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.shown = _shown(path)

    def error(self, key: str | None, reason: str) -> ProfileError:
        return ProfileError(f"{self.shown}: {key}: {reason}" if key else f"{self.shown}: {reason}")

    def load(self) -> FaultProfile:
        try:
            with self.path.open("rb") as f:
                data = tomllib.load(f)
        except OSError as exc:
            raise self.error(None, f"cannot read: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise self.error(None, f"invalid TOML: {exc}") from None
        self.known_keys(data, None, _TOP_KEYS)
        description = data.get("description", "")
        if not isinstance(description, str):
            raise self.error("description", f"must be a string, got {description!r}")
        toxics = [self.toxic(entry, key) for entry, key in self.tables(data, "toxics")]
        self.unique_names(toxics)
        partitions: dict[str, str] = {}  # hop -> key of its partition
        for entry, key in self.tables(data, "partitions"):
            self.known_keys(entry, key, _PARTITION_KEYS)
            hop = self.hop(entry, key)
            if hop in partitions:
                raise self.error(f"{key}.hop", f"hop {hop!r} is already partitioned by {partitions[hop]}")
            partitions[hop] = key
        faults = tuple(fault for fault, _ in toxics) + tuple(Fault(hop, Partition()) for hop in partitions)
        return FaultProfile(self.path.stem, description, self.path, faults, self.packet_loss(data))

    def packet_loss(self, data: Mapping[str, Any]) -> tuple[tuple[str, float], ...]:
        losses: dict[str, float] = {}
        for entry, key in self.tables(data, "packet_loss"):
            self.known_keys(entry, key, _LOSS_KEYS)
            hop = self.hop(entry, key)
            if hop in losses:
                raise self.error(f"{key}.hop", f"hop {hop!r} already has a packet loss")
            if "probability" not in entry:
                raise self.error(f"{key}.probability", "missing; the share of packets dropped, 0 < p <= 1")
            probability = entry["probability"]
            if isinstance(probability, bool) or not isinstance(probability, (int, float)) or not 0 < probability <= 1:
                raise self.error(f"{key}.probability", f"must be a number with 0 < p <= 1, got {probability!r}")
            losses[hop] = float(probability)
        return tuple(losses.items())

    def known_keys(self, table: Mapping[str, Any], where: str | None, allowed: tuple[str, ...]) -> None:
        for key in table:
            if key not in allowed:
                raise self.error(f"{where}.{key}" if where else key,
                                 f"unknown key {key!r}; expected one of {', '.join(allowed)}")

    def tables(self, data: Mapping[str, Any], array: str) -> list[tuple[Mapping[str, Any], str]]:
        entries = data.get(array, [])
        if not isinstance(entries, list):
            raise self.error(array, f"must be an array of tables ([[{array}]]), got {entries!r}")
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                raise self.error(f"{array}[{index}]", f"must be a table, got {entry!r}")
        return [(entry, f"{array}[{index}]") for index, entry in enumerate(entries)]

    def hop(self, entry: Mapping[str, Any], where: str) -> str:
        if "hop" not in entry:
            raise self.error(f"{where}.hop", f"missing; one of {', '.join(HOPS)}")
        hop = entry["hop"]
        if hop not in HOPS:
            raise self.error(f"{where}.hop", f"unknown hop {hop!r}; one of {', '.join(HOPS)}")
        return str(hop)

    def toxic(self, entry: Mapping[str, Any], where: str) -> tuple[Fault, str]:
        self.known_keys(entry, where, _TOXIC_KEYS)
        hop = self.hop(entry, where)
        if "type" not in entry:
            raise self.error(f"{where}.type", f"missing; one of {', '.join(REGISTRY)}")
        attributes = entry.get("attributes", {})
        if not isinstance(attributes, dict):
            raise self.error(f"{where}.attributes", f"must be a table, got {attributes!r}")
        toxic = Toxic(
            type=entry["type"], attributes=attributes, stream=entry.get("stream", DEFAULT_STREAM),
            toxicity=entry.get("toxicity", 1.0), name=entry.get("name", ""),
        )
        try:
            return Fault(hop, toxic.checked()), where
        except FaultConfigError as exc:
            raise self.error(f"{where}.{exc.key}", exc.reason) from None

    def unique_names(self, toxics: list[tuple[Fault, str]]) -> None:
        # Toxiproxy refuses a second toxic of the same name on a proxy (409) when it is applied.
        seen: dict[tuple[str, str], str] = {}
        for fault, where in toxics:
            assert isinstance(fault.effect, Toxic)
            name = (fault.hop, fault.effect.name)
            if name in seen:
                raise self.error(f"{where}.name", f"duplicate toxic name {fault.effect.name!r} on hop "
                                                  f"{fault.hop!r} (as {seen[name]}); set a distinct name")
            seen[name] = where


def _shown(path: Path) -> str:
    """The path as a user would type it: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
