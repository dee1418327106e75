"""Bytes a client sends before the upstream connection exists are passed on, in order.

On Python before 3.11.4 (Debian bookworm's 3.11.2, inside the offline images) pause_reading() in
connection_made does not stop the first read, so a client that speaks first (PostgreSQL, HTTP) had
its opening bytes dropped. This interpreter does not show the race, so the test drives the
protocol's callbacks directly, with a stand-in link that records what it is fed (a double, said
so: the failure cannot be produced for real on this Python).
"""

from __future__ import annotations

from toxics.server.link import Side


class RecordingLink:
    def __init__(self) -> None:
        self.data = b""
        self.eof = False

    def feed(self, data: memoryview) -> None:
        self.data += bytes(data)

    def feed_eof(self) -> None:
        self.eof = True


def test_bytes_and_eof_read_before_the_link_exists_are_handed_over() -> None:
    side = Side(conn=None)  # type: ignore[arg-type] - the connection is not needed for reads
    for chunk in (b"startup-", b"packet"):
        buffer = side.get_buffer(-1)
        buffer[: len(chunk)] = chunk
        side.buffer_updated(len(chunk))
    side.eof_received()
    link = RecordingLink()
    side.reads_into = link  # type: ignore[assignment]
    side.hand_over_early()
    assert link.data == b"startup-packet" and link.eof
    assert side.early == []
