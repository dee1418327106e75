"""How often SimCity asks a restarted or starting service whether it is ready.

Every 20 ms. A probe costs the harness about 0.8 ms of CPU, and a crash under an app-db fault
takes ~100 of them, so backing off looks attractive; measured (4 runs each of SC-1 500 iterations,
45 crashes), growing the pause to 50 ms after the first 0.3 s saved 9% of the harness's CPU but
added 7% to kill-to-healthy (median 32.7 s vs 30.5 s), and the wall is what a user waits for.
"""

from __future__ import annotations

PROBE_PAUSE_S = 0.02
