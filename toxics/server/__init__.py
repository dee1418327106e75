"""simcity-toxiproxy: a stand-in for the Toxiproxy 2.12.0 server (HTTP API, proxies, toxics).

Run it as `simcity-toxiproxy` or `python -m toxics.server` with toxiproxy-server's flags, or from
Python with `toxiproxy_process(port)`. Modules: `api` (HTTP), `collection` and `proxy` (proxies),
`link` (the data path of one connection), `toxic_collection` (the shared toxic envelope and the
per-stream chains), `toxics/` (one behaviour per toxic type of `toxics.catalog`).

Deliberate differences from upstream, each a place where upstream crashes, hangs or takes garbage:
- 400 for negative durations, sizes or rates, a toxicity outside 0..1, a slicer `average_size` of
  0 (all via `toxics.catalog`), non-integral attribute values, and request bodies over 8 MiB.
- A slicer with `size_variation` 0 cuts exact `average_size` pieces (upstream panics on chunks
  larger than `average_size`).
- Toxicity: adding or updating a toxic redraws every toxic of that stream on each open connection
  (upstream redraws the changed toxic and the one before it in the chain).
- Removing a `timeout` toxic closes the connections it was active on; upstream also closes those
  where its toxicity draw had made it a no-op.
- One task walks a chunk through a link's whole chain (upstream: a goroutine per toxic), so two
  delaying toxics in a row overlap a little differently; each toxic's own timing is the same.
- No `/metrics` endpoint and no 25 s handler timeout (handlers here never block); logs are plain
  text, not zerolog JSON.
"""

from __future__ import annotations

from toxics.server.api import VERSION
from toxics.server.spawn import toxiproxy_process

__all__ = ["VERSION", "toxiproxy_process"]
