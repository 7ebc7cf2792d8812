"""The ``samplekit`` command line: ``cli`` (the click group) and ``main`` (the console script).

Commands, the core's included, are added through the ``samplekit_register_commands`` hook
(``samplekit.cli.core``); one module per command: ``listing``, ``sample``, ``likelihood``, ``train``
(``bench`` lives in ``samplekit.bench.command``).  Errors a user can cause print as one line.
"""

from samplekit.cli.app import cli, main

__all__ = ["cli", "main"]
