"""Short names for the UUIDs of a run, so a page reads `b1 confirmed (C1)` instead of a wall of
ids: intents are named after their customer process (C1, C2; `C1@2` on slot 2 of a run with
`--slots`), bookings b1, b2, ... in the order they first appear, slots s1, s2, ... The full id
stays one hover away (`<abbr title=...>`)."""

from __future__ import annotations

import html
import re

from harness.contract import answered_booking_id
from harness.history import History

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# "C1's intent <uuid>": the phrase names the intent already, so the id folds into it.
_OWNED_INTENT_RE = re.compile(rf"((?:C1|C2)'s intent) ({_UUID})")
_UUID_RE = re.compile(_UUID)
_OP_RE = re.compile(r"\bops? (\d+)(?:-(\d+))?")


class Names:
    """The short name of every id a history carries."""

    def __init__(self, history: History) -> None:
        self.short: dict[str, str] = {}
        several = len(history.fixtures) > 1
        for n, fixture in enumerate(history.fixtures, 1):
            at = f"@{n}" if several else ""
            self.short[fixture.slot_id] = f"s{n}"
            self.short.setdefault(fixture.vendor_id, f"vendor {n}")
            for intent in fixture.intents:
                self.short[intent.intent_id] = f"{intent.process.value}{at}"
                self.short[intent.customer_id] = f"customer {intent.process.value}{at}"
        bookings = 0
        for op in history.ops:
            ids = [b.id for snap in op.snapshots for b in snap.bookings]
            answered = answered_booking_id(op.details.body)
            for booking_id in ([answered] if answered else []) + ids:
                if booking_id not in self.short:
                    bookings += 1
                    self.short[booking_id] = f"b{bookings}"

    def name(self, any_id: str) -> str:
        """The short name, or the id's first 8 characters for one this run never issued."""
        return self.short.get(any_id) or f"{any_id[:8]}…"

    def abbr(self, any_id: str) -> str:
        """HTML: the short name, the full id on hover."""
        return f'<abbr class="id" title="{html.escape(any_id)}">{html.escape(self.name(any_id))}</abbr>'

    def plain(self, text: str) -> str:
        """A message with every id shortened, as plain text (for a tooltip)."""
        return _UUID_RE.sub(lambda m: self.name(m[0]), _OWNED_INTENT_RE.sub(lambda m: m[1], text))

    def markup(self, text: str) -> str:
        """HTML of a plain message: escaped, every id shortened (full on hover), every `op N` and
        `ops N-M` a link to that operation's row."""
        escaped = html.escape(text)
        escaped = _OWNED_INTENT_RE.sub(
            lambda m: f'<abbr class="id" title="{m[2]}">{m[1]}</abbr>', escaped)
        escaped = _UUID_RE.sub(lambda m: self.abbr(m[0]), escaped)
        return _OP_RE.sub(_op_links, escaped)


def _op_links(match: re.Match[str]) -> str:
    first, last = match[1], match[2]
    if last is None:
        return f'op <a href="#op-{first}">{first}</a>'
    return f'ops <a href="#op-{first}">{first}</a>-<a href="#op-{last}">{last}</a>'


def ids_named(text: str) -> set[str]:
    """The UUIDs a message names."""
    return set(_UUID_RE.findall(text))


def ops_named(text: str) -> set[int]:
    """The op indexes a message names (`op 12`, `ops 30-31`)."""
    found: set[int] = set()
    for match in _OP_RE.finditer(text):
        found.add(int(match[1]))
        if match[2]:
            found.add(int(match[2]))
    return found
