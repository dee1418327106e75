"""The toxic types of Toxiproxy 2.12.0: their attributes, units and defaults, in one place.

Both the proxy stand-in (to parse API bodies) and the fault profiles (to validate TOML) read this
registry, so a toxic's shape is written down exactly once. Behaviour lives in `toxics.server`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

STREAMS = ("upstream", "downstream")
DEFAULT_STREAM = "downstream"


class InvalidToxicError(ValueError):
    """A toxic description that Toxiproxy would reject, or that would crash or mislead it."""


@dataclass(frozen=True)
class Attribute:
    """One integer attribute of a toxic (Toxiproxy stores them all as int64)."""

    name: str
    unit: str
    doc: str
    minimum: int = 0
    default: int = 0


@dataclass(frozen=True)
class ToxicType:
    name: str
    doc: str
    attributes: tuple[Attribute, ...] = field(default_factory=tuple)

    def defaults(self) -> dict[str, int]:
        return {a.name: a.default for a in self.attributes}

    def attribute(self, name: str) -> Attribute | None:
        return next((a for a in self.attributes if a.name == name), None)

    def parse_attributes(
        self, given: Mapping[str, Any] | None, *, strict: bool, base: Mapping[str, int] | None = None
    ) -> dict[str, int]:
        """`base` (the defaults, or a toxic's current attributes for an update) overlaid with `given`.

        Every value is checked for type and range. Upstream ignores unknown attributes; `strict=True`
        (profiles) reports them, since a typo in a fault config silently weakens the test.
        """
        values = dict(base) if base is not None else self.defaults()
        for key, value in (given or {}).items():
            spec = self.attribute(key)
            if spec is None:
                if strict:
                    raise InvalidToxicError(f"unknown attribute {key!r} for toxic type {self.name!r}")
                continue
            values[key] = _checked_int(self.name, spec, value)
        for spec in self.attributes:
            # Also catches defaults that are not usable, e.g. a slicer with no average_size.
            _checked_int(self.name, spec, values[spec.name])
        return values


def _checked_int(toxic: str, spec: Attribute, value: Any) -> int:
    # bool is an int in Python but not a JSON number: reject it like Go's decoder does.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidToxicError(f"{toxic}.{spec.name} must be an integer ({spec.unit}), got {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise InvalidToxicError(f"{toxic}.{spec.name} must be an integer ({spec.unit}), got {value!r}")
    number = int(value)
    if number < spec.minimum:
        raise InvalidToxicError(f"{toxic}.{spec.name} must be >= {spec.minimum} ({spec.unit}), got {number}")
    if number > 2**63 - 1:
        raise InvalidToxicError(f"{toxic}.{spec.name} is out of range, got {number}")
    return number


def _ms(name: str, doc: str) -> Attribute:
    return Attribute(name, "ms", doc)


REGISTRY: dict[str, ToxicType] = {
    t.name: t
    for t in (
        ToxicType("latency", "delays each chunk by latency +/- jitter",
                  (_ms("latency", "added delay"), _ms("jitter", "random +/- spread"))),
        ToxicType("bandwidth", "limits throughput; 0 stalls the stream",
                  (Attribute("rate", "KB/s", "1,000 bytes per second units"),)),
        ToxicType("slow_close", "delays the close of the connection", (_ms("delay", "delay before closing"),)),
        ToxicType("timeout", "drops data; closes after `timeout` ms without data (0 = never)",
                  (_ms("timeout", "idle time before closing"),)),
        ToxicType("reset_peer", "closes with a TCP RST after `timeout` ms",
                  (_ms("timeout", "delay before the reset"),)),
        ToxicType("slicer", "cuts data into small packets with delays", (
            # average_size 0 sends the real server into an endless loop: require at least 1.
            Attribute("average_size", "bytes", "mean packet size", minimum=1),
            Attribute("size_variation", "bytes", "+/- spread of packet size"),
            Attribute("delay", "us", "delay between packets"),
        )),
        ToxicType("limit_data", "closes the connection after `bytes` bytes",
                  (Attribute("bytes", "bytes", "bytes let through before closing"),)),
        ToxicType("noop", "passes data through"),
    )
}


def toxic_type(name: object) -> ToxicType:
    """The registered type called `name`, or InvalidToxicError."""
    if not isinstance(name, str) or name not in REGISTRY:
        raise InvalidToxicError(f"invalid toxic type: {name!r}; known: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def check_stream(stream: object) -> str:
    if stream not in STREAMS:
        raise InvalidToxicError(f"stream must be 'upstream' or 'downstream', got {stream!r}")
    return str(stream)


def check_toxicity(toxicity: object) -> float:
    if isinstance(toxicity, bool) or not isinstance(toxicity, (int, float)) or not 0.0 <= toxicity <= 1.0:
        raise InvalidToxicError(f"toxicity must be a number between 0 and 1, got {toxicity!r}")
    return float(toxicity)
