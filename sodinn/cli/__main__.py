"""``python -m sodinn.cli``: the ``sodinn`` command."""

import sys

from sodinn.cli.main import main

sys.exit(main())
