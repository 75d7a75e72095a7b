"""``python -m clientstate``: see :mod:`clientstate.cli`."""

import sys

from clientstate.cli import main

sys.exit(main())
