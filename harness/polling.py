"""How often SimCity asks a restarted or starting service whether it is ready.

Every probe is an HTTP request that costs the harness about a millisecond of CPU. A clean restart
is over in well under 0.3 s, so the first probes come every 20 ms; an app that is still not
healthy after that is reconnecting through a fault and takes seconds, so the pause grows to
50 ms: twenty probes a second instead of fifty, for at most ~30 ms more to notice it.
"""

from __future__ import annotations

FAST_PAUSE_S = 0.02
FAST_PROBES = 15  # about 0.3 s of probing at FAST_PAUSE_S
SLOW_PAUSE_S = 0.05


def probe_pause(probes_so_far: int) -> float:
    """The pause after probe number `probes_so_far` (1 for the first) before the next one."""
    if probes_so_far <= FAST_PROBES:
        return FAST_PAUSE_S
    return min(SLOW_PAUSE_S, FAST_PAUSE_S * 1.25 ** (probes_so_far - FAST_PROBES))
