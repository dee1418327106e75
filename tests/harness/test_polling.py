"""The pause between readiness probes: fast while a restart is usually done, then slower, never
slower than SLOW_PAUSE_S (an app that became healthy is noticed within that)."""

from harness.polling import FAST_PAUSE_S, FAST_PROBES, SLOW_PAUSE_S, probe_pause


def test_probes_come_every_20_ms_while_a_clean_restart_would_finish() -> None:
    assert [probe_pause(n) for n in range(1, FAST_PROBES + 1)] == [FAST_PAUSE_S] * FAST_PROBES


def test_the_pause_then_grows_without_going_back_and_stays_capped() -> None:
    pauses = [probe_pause(n) for n in range(1, 200)]
    assert pauses == sorted(pauses)
    assert pauses[FAST_PROBES] > FAST_PAUSE_S
    assert max(pauses) == SLOW_PAUSE_S
    # Over a 3 s wait: far fewer probes than at 20 ms (150), so far less harness CPU.
    waited, probes = 0.0, 0
    while waited < 3.0:
        probes += 1
        waited += probe_pause(probes)
    assert probes < 80
