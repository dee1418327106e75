"""What SC-1 must find in each strategy of the reference app: the violations that are the RIGHT
catch for its bug. The end-to-end tests and the detection benchmark both read this table."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from harness.checker import ViolationName as V

EXPECTED_CATCH: Mapping[str, frozenset[V]] = MappingProxyType({
    # Two requests both pass the check before either acts: two confirmed bookings.
    "racy": frozenset({V.DOUBLE_BOOKING}),
    # The winner changes: a replayed loser takes the slot, against what both clients were told.
    "flip_on_retry": frozenset({V.WINNER_FLIP, V.REJECTED_BUT_CONFIRMED, V.CONFLICTING_ANSWERS, V.DOUBLE_BOOKING}),
    # A replay books again: a second row for one intent, or a second confirmed booking.
    "no_idempotency": frozenset({V.DUPLICATE_INTENT, V.DOUBLE_BOOKING, V.CONFLICTING_ANSWERS}),
    # The slot is claimed in one transaction and the booking written in another.
    "split_tx": frozenset({V.BOOKED_WITHOUT_BOOKING}),
    # An acknowledged booking is not (yet, or ever) in the database.
    "ack_before_commit": frozenset({V.ACK_NOT_HONOURED, V.BOOKING_LOST_AFTER_CRASH, V.BOOKING_LOST}),
    # A lock per process: requests decided at once on two processes do not see each other. Two
    # intents both confirm, or duplicate deliveries of one intent get both 201 and 409.
    "in_memory_lock": frozenset({V.DOUBLE_BOOKING, V.CONFLICTING_ANSWERS, V.REJECTED_BUT_CONFIRMED}),
})

MUTANTS: tuple[str, ...] = tuple(EXPECTED_CATCH)
