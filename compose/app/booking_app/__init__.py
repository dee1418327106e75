"""booking-app: the reference booking service SimCity attacks, and its deliberately broken mutants.

`BOOKING_STRATEGY=atomic` (default) honours shared/CONTRACT.md section 1 under any concurrency,
retry, reordering and crash; every other strategy in booking_app.strategies is a realistic bug.
"""

from booking_app.config import Settings
from booking_app.strategies import MUTANTS, STRATEGIES

__all__ = ["MUTANTS", "STRATEGIES", "Settings"]
