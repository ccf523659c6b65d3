"""Commands whose capability lands in a later issue: their shape is final, their body says so.

Each one exits 1 with a clear message instead of pretending to work. They move to their
own modules as they are implemented.
"""

from __future__ import annotations

from sync.cli import NotYetAvailable, cli


@cli.command()
def demo() -> None:
    """The whole job on a fresh machine, with the local simulators."""
    raise NotYetAvailable("arsync demo (it arrives with the sync engine)")
