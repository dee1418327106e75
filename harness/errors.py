"""One exception tree for SimCity. Each kind maps to one exit code of the command line."""

from __future__ import annotations


class SimCityError(Exception):
    """Root of every error SimCity raises on purpose."""

    exit_code = 3


class UsageError(SimCityError):
    """Bad input from the user: a flag, a profile file, a report dir. Exit 2."""

    exit_code = 2


class InfrastructureError(SimCityError):
    """The stack, the proxy or REST could not be used. Never a PASS, never a product FAIL. Exit 3."""

    exit_code = 3


class StackStartError(InfrastructureError):
    """A service of the stack did not start or never became healthy."""


class ProxyUnreachableError(InfrastructureError):
    """The Toxiproxy API did not answer."""


class RestUnreachableError(InfrastructureError):
    """The REST layer (PostgREST or simcity-rest) did not answer with the database truth."""


class InconclusiveError(SimCityError):
    """A run that reached no verdict on the app (INCONCLUSIVE), raised where a verdict was
    demanded (the pytest plugin's `assert_passed`). Never a PASS, never a product FAIL. Exit 3."""

    exit_code = 3


class ScheduleError(UsageError):
    """A schedule that cannot be built or replayed: unknown profile, bad action text, bad hash."""


class HistoryFormatError(UsageError):
    """A `history.jsonl` given back to SimCity (to re-check or replay) that cannot be read."""


class MalformedSnapshotError(InfrastructureError):
    """The REST layer answered a snapshot whose shape is not the contract's (section 2)."""


class StopSignal(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP asked SimCity to stop. A KeyboardInterrupt, so that every path
    that cleans up after Ctrl-C (heal the faults, stop the stacks, save the run so far) cleans up
    after all three; the exit code is 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum
