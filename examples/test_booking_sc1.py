"""SC-1 as a test of your own, with SimCity's pytest plugin: the stack starts once per module."""


def test_booking_never_double_books(simcity_sc1):
    outcome = simcity_sc1(seed="sc1-1", iterations=50, slots=4)
    outcome.assert_passed()  # a FAIL fails the test with the forensic snapshot
