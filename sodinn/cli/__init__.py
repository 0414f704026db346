"""The ``sodinn`` command line: argument parsing and commands only.

Every command reads its settings from a configuration file's tables and from flags (flags win), checks
them before any work, runs the step of :mod:`sodinn.pipeline` that makes its products, and prints a
summary. User errors (bad files, bad values, a bad configuration) end with a one-line message on
stderr and exit status 2, no traceback; ``--verbose`` shows the traceback of unexpected errors.

Import rule: ``sodinn.cli`` may import every other part of sodinn; nothing imports it.
"""

from sodinn.cli.main import main

__all__ = ["main"]
