"""``python -m herschik.scenarios.cli``: the ``herschik`` command without its console script."""

import sys

from herschik.scenarios.cli.main import main

sys.exit(main())
