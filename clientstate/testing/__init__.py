"""clientstate.testing: tools for testing applications that use clientstate.

* :class:`FrozenClock` — a clock that moves only when told to.
* :func:`fixed_keyring`, :func:`fixed_key` — fixed keys for tests.
"""

from clientstate.testing.clock import FrozenClock
from clientstate.testing.keys import fixed_key, fixed_keyring

__all__ = ["FrozenClock", "fixed_key", "fixed_keyring"]
