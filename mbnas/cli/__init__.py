"""The ``mbnas`` command line (:mod:`.commands`), and what only commands print:
layer tables (:mod:`.report`) and ``mbnas show`` (:mod:`.show`).  Nothing imports it."""

from mbnas.cli.commands import main

__all__ = ["main"]
