"""A proxy's toxics: the shared envelope (name, stream, toxicity) and the per-stream chains.

Chains are replaced, never mutated, so a link can walk a snapshot while the API changes them; every
change is pushed to the open links of that stream, which apply it to data already in flight.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from toxics import catalog
from toxics.server import errors
from toxics.server.jsonio import fields, float32, go_number, typed
from toxics.server.toxics import REGISTRY, Toxic

if TYPE_CHECKING:
    from toxics.server.link import Link

STREAMS = ("upstream", "downstream")  # upstream's order: GET lists upstream toxics first


@dataclass(eq=False)
class ToxicEntry:
    """One toxic of a proxy: the envelope plus its behaviour's parameters."""

    name: str
    type: str
    stream: str  # as given (upstream accepts any case); `direction` is the normalised one
    direction: str
    toxicity: float
    toxic: Toxic
    attributes: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": go_number(self.toxicity),
        }


def _toxicity(value: Any) -> float:
    try:
        return float32(catalog.check_toxicity(value))
    except catalog.InvalidToxicError as exc:
        raise errors.BAD_REQUEST_BODY.wrap(str(exc)) from None


def _attributes(kind: catalog.ToxicType, given: Any, base: dict[str, int] | None) -> dict[str, int]:
    if given is not None and not isinstance(given, dict):
        raise errors.BAD_REQUEST_BODY.wrap(f"attributes must be an object, got {given!r}")
    # Go leaves a field alone when its JSON value is null.
    present = {key: value for key, value in (given or {}).items() if value is not None}
    try:
        return kind.parse_attributes(present, strict=False, base=base)
    except catalog.InvalidToxicError as exc:
        raise errors.BAD_REQUEST_BODY.wrap(str(exc)) from None


class ToxicCollection:
    def __init__(self) -> None:
        self._chains: dict[str, tuple[ToxicEntry, ...]] = {s: () for s in STREAMS}
        self._links: set[Link] = set()

    def chain(self, direction: str) -> tuple[ToxicEntry, ...]:
        return self._chains[direction]

    def entries(self) -> list[ToxicEntry]:
        return [entry for stream in STREAMS for entry in self._chains[stream]]

    def find(self, name: str) -> ToxicEntry | None:
        return next((e for e in self.entries() if e.name == name), None)

    def get(self, name: str) -> ToxicEntry:
        entry = self.find(name)
        if entry is None:
            raise errors.TOXIC_NOT_FOUND
        return entry

    def attach(self, link: "Link") -> None:
        self._links.add(link)

    def detach(self, link: "Link") -> None:
        self._links.discard(link)

    def _links_of(self, direction: str) -> Iterable["Link"]:
        return [link for link in self._links if link.direction == direction]

    def add(self, body: Any) -> ToxicEntry:
        """Create from an API body. Checks in upstream's order: stream, type, duplicate, then the rest."""
        given = fields(body, "toxics.ToxicWrapper")
        name = typed(given, "name", str, "ToxicWrapper") or ""
        type_name = typed(given, "type", str, "ToxicWrapper") or ""
        stream = typed(given, "stream", str, "ToxicWrapper")
        stream = "downstream" if stream is None else stream
        raw_toxicity = typed(given, "toxicity", float, "ToxicWrapper")
        direction = stream.lower()
        if direction not in STREAMS:
            raise errors.INVALID_STREAM
        name = name or f"{type_name}_{stream}"
        if type_name not in REGISTRY:
            raise errors.INVALID_TOXIC_TYPE
        if self.find(name) is not None:
            raise errors.TOXIC_ALREADY_EXISTS
        toxicity = 1.0 if raw_toxicity is None else _toxicity(raw_toxicity)
        attributes = _attributes(catalog.toxic_type(type_name), given.get("attributes"), None)
        entry = ToxicEntry(name, type_name, stream, direction, toxicity,
                           REGISTRY[type_name].from_attributes(attributes), attributes)
        self._chains[direction] = (*self._chains[direction], entry)
        for link in self._links_of(direction):
            link.toxic_added(entry)
        return entry

    def update(self, name: str, body: Any) -> ToxicEntry:
        """Merge `attributes` and `toxicity` into the toxic; its name, type and stream stay."""
        entry = self.get(name)
        given = fields(body, "toxics.ToxicWrapper")
        raw_toxicity = typed(given, "toxicity", float, "ToxicWrapper")
        toxicity = entry.toxicity if raw_toxicity is None else _toxicity(raw_toxicity)
        attributes = _attributes(catalog.toxic_type(entry.type), given.get("attributes"), entry.attributes)
        entry.toxicity = toxicity
        entry.attributes = attributes
        entry.toxic = REGISTRY[entry.type].from_attributes(attributes)
        for link in self._links_of(entry.direction):
            link.toxic_updated(entry)
        return entry

    def remove(self, name: str) -> None:
        entry = self.get(name)
        chain = self._chains[entry.direction]
        position = chain.index(entry)
        self._chains[entry.direction] = chain[:position] + chain[position + 1:]
        for link in self._links_of(entry.direction):
            link.toxic_removed(entry, position)

    def reset(self) -> None:
        for entry in self.entries():
            self.remove(entry.name)
