"""``python -m promptpress.service.cli``: the same as the ``promptpress`` command."""

import sys

from . import main

sys.exit(main())
