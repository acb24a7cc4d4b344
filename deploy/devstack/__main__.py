"""``python3 -m deploy.devstack up|down|check``: see the package's docstring."""

import sys

from . import main

sys.exit(main())
