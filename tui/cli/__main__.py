"""``python -m tui.cli``: the same as the ``fleetrun`` console script."""

import sys

from tui.cli import main

sys.exit(main())
